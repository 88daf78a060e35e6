import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BenchWorker } from './bench-worker.js';
import { timedPool } from './stats.js';

const run = promisify(execFile);
const WARM_PER_TEMPLATE = 2;
const ROUNDS = 5;

/** A template to measure and the image it runs. */
export interface BenchTemplate {
  name: string;
  image: string;
}

/** What the phase measured: per template, warm creates; and the templates left out. */
export interface TemplateBenchResult {
  measured: string[];
  skipped: { name: string; image: string; reason: string }[];
}

/**
 * One worker pooling every template whose image is built, `name=2` each: the create latency from
 * each template's own warm pool (concurrency 1), so templates can be compared with each other.
 */
export async function templatePools(
  port: number,
  workerId: string,
  templates: readonly BenchTemplate[],
  record: (name: string, samples: number[]) => void,
  step: (text: string) => void,
): Promise<TemplateBenchResult> {
  const built: BenchTemplate[] = [];
  const skipped: TemplateBenchResult['skipped'] = [];
  for (const template of templates) {
    const exists = await run('docker', ['image', 'inspect', template.image]).then(
      () => true,
      () => false,
    );
    if (exists) built.push(template);
    else skipped.push({ ...template, reason: 'image not built (sandpool template build)' });
  }
  for (const s of skipped) step(`  skipping template ${s.name}: ${s.image} is not built`);
  if (built.length === 0) return { measured: [], skipped };

  const spec = built.map((t) => `${t.name}=${WARM_PER_TEMPLATE}@${t.image}`).join(',');
  step(`worker with one pool per template (${spec})`);
  const worker = await BenchWorker.start({
    port,
    workerId,
    poolSize: WARM_PER_TEMPLATE * built.length,
    maxSessions: 40,
    templates: spec,
  });
  try {
    for (const template of built) {
      const samples: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const sessions: string[] = [];
        const timed = await timedPool(WARM_PER_TEMPLATE, 1, async () => {
          sessions.push(await worker.createSession('/v1/sessions', { template: template.name }));
        });
        samples.push(...timed.samples);
        await timedPool(sessions.length, 2, (i) => worker.deleteSession(sessions[i] ?? ''));
        await worker.waitForPool();
      }
      record(`session create, warm pool of template ${template.name}, concurrency 1`, samples);
    }
  } finally {
    await worker.stop();
  }
  return { measured: built.map((t) => t.name), skipped };
}
