import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Sandbox, SandpoolClient, TemplateNotFoundError } from '@sandpool/client';
import { loadCoordinatorConfig } from '../packages/server/src/config/coordinator-config.js';
import { Coordinator } from '../packages/server/src/coordinator/coordinator.js';
import { call, exec } from './support/http.js';
import { containersOf, docker } from './support/docker.js';
import { TestRedis } from './support/redis-server.js';
import { SandpoolProcess } from './support/sandpool-process.js';
import { runProcess } from './support/run-process.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';
import { until } from './support/until.js';

/**
 * Templates against the real engine: a worker pooling two templates at once (`base`, and `mini`
 * made of the foundation layer alone, which lacks git and node), a configured template whose image
 * is missing, and a coordinator placing sessions by template over two workers.
 */

const BASE_IMAGE = process.env.SANDPOOL_IMAGE ?? 'sandpool/sandbox:latest';
/** The foundation layer: every `sandpool template build` makes it, and it is a template too. */
const MINI_IMAGE = process.env.SANDPOOL_TEST_FOUNDATION_IMAGE ?? 'sandpool/foundation:latest';
const run = randomBytes(3).toString('hex');
const execFileAsync = promisify(execFile);
const CLI = new URL('../packages/server/src/cli/main.ts', import.meta.url).pathname;
const MISSING_IMAGE = `sandpool/template-ghost:missing-${run}`;

interface SessionView {
  session_id: string;
  worker_id: string;
  template: string;
}

interface TemplateView {
  name: string;
  image?: string;
  status?: string;
  pool_size: number;
  pool_target?: number;
  active_sessions: number;
  workers?: string[];
}

describe('a worker with several templates', () => {
  let w: TestWorker;

  before(async () => {
    w = await startWorker({
      templates: `base=1@${BASE_IMAGE},mini=1@${MINI_IMAGE},ghost=1@${MISSING_IMAGE}`,
    });
    // Both pools full before the figures are read.
    await until(async () => (await call(w.url, 'GET', '/health')).body.pool_size === 2, 30_000);
  });

  after(async () => {
    await w.close();
    assert.deepEqual(await containersOf(w.workerId), []);
  });

  test('GET /v1/templates lists each template with its pool, and the missing image', async () => {
    const listed = await call<{ templates: TemplateView[] }>(w.url, 'GET', '/v1/templates');
    assert.equal(listed.status, 200);
    const byName = new Map(listed.body.templates.map((t) => [t.name, t]));
    assert.deepEqual([...byName.keys()], ['base', 'mini', 'ghost']);
    assert.deepEqual(byName.get('base'), {
      name: 'base',
      image: BASE_IMAGE,
      status: 'ready',
      pool_size: 1,
      pool_target: 1,
      pool_starting: 0,
      pool_waiting: 0,
      pool_hits: 0,
      pool_misses: 0,
      active_sessions: 0,
    });
    assert.equal(byName.get('mini')?.status, 'ready');
    assert.equal(byName.get('mini')?.pool_size, 1);
    assert.equal(byName.get('ghost')?.status, 'image_missing');
    assert.equal(byName.get('ghost')?.pool_size, 0);
  });

  test('/health has a line per template and the metrics a template label', async () => {
    const health = await call<{ status: string; templates: TemplateView[] }>(
      w.url,
      'GET',
      '/health',
    );
    assert.equal(health.status, 200);
    assert.deepEqual(
      health.body.templates.map((t) => [t.name, t.status]),
      [
        ['base', 'ready'],
        ['mini', 'ready'],
        ['ghost', 'image_missing'],
      ],
    );
    const metrics = await (await fetch(`${w.url}/metrics`)).text();
    assert.match(metrics, /^sandpool_template_pool_size\{template="base"\} 1$/m);
    assert.match(metrics, /^sandpool_template_pool_size\{template="mini"\} 1$/m);
    assert.match(metrics, /^sandpool_template_image_missing\{template="ghost"\} 1$/m);
  });

  test('a session on each template runs that template’s image', async () => {
    const onBase = await call<SessionView>(w.url, 'POST', '/v1/sessions', {});
    const onMini = await call<SessionView>(w.url, 'POST', '/v1/sessions', { template: 'mini' });
    assert.equal(onBase.status, 201, JSON.stringify(onBase.body));
    assert.equal(onMini.status, 201, JSON.stringify(onMini.body));
    assert.equal(onBase.body.template, 'base');
    assert.equal(onMini.body.template, 'mini');

    // base has what a coding agent expects; the bare foundation does not.
    const tools = 'git --version && node --version && npm --version && sqlite3 --version';
    const baseTools = await exec(w.url, onBase.body.session_id, { command: tools });
    assert.equal(baseTools.exit_code, 0, baseTools.stderr);
    assert.match(baseTools.stdout, /^git version \d/m);
    assert.match(baseTools.stdout, /^v\d+\.\d+\.\d+$/m);
    const miniTools = await exec(w.url, onMini.body.session_id, { command: 'command -v git' });
    assert.notEqual(miniTools.exit_code, 0);
    // Both keep the foundation: the agent runs commands as sandboxuser.
    for (const id of [onBase.body.session_id, onMini.body.session_id]) {
      const who = await exec(w.url, id, { command: 'id -u' });
      assert.equal(who.stdout.trim(), '1000');
    }

    const read = await call<SessionView>(w.url, 'GET', `/v1/sessions/${onMini.body.session_id}`);
    assert.equal(read.body.template, 'mini');
    const containers = await docker(
      'ps',
      '--filter',
      `label=sandpool.worker=${w.workerId}`,
      '--filter',
      `label=sandpool.template=mini`,
      '--format',
      '{{.Image}}',
    );
    assert.ok(containers.split('\n').includes(MINI_IMAGE), containers);

    const listed = await call<{ templates: TemplateView[] }>(w.url, 'GET', '/v1/templates');
    assert.deepEqual(
      listed.body.templates.map((t) => [t.name, t.active_sessions]),
      [
        ['base', 1],
        ['mini', 1],
        ['ghost', 0],
      ],
    );
    for (const id of [onBase.body.session_id, onMini.body.session_id]) {
      assert.equal((await call(w.url, 'DELETE', `/v1/sessions/${id}`)).status, 204);
    }
  });

  test('pip, a venv, node and a C compiler work on base', async () => {
    const created = await call<SessionView>(w.url, 'POST', '/v1/sessions', {});
    const id = created.body.session_id;
    try {
      // The home is a noexec tmpfs: programs in it run through their interpreter, not directly.
      const venv = await exec(w.url, id, {
        command:
          'python3 -m pip --version && python3 -m venv --without-pip v && v/bin/python -c "import sys; print(sys.prefix)"',
      });
      assert.equal(venv.exit_code, 0, venv.stderr);
      assert.match(venv.stdout, /^pip \d/);
      assert.match(venv.stdout, /\/home\/sandboxuser\/v$/m);
      const node = await exec(w.url, id, { argv: ['node', '-e', 'console.log(6 * 7)'] });
      assert.equal(node.stdout, '42\n');
      const cc = await exec(w.url, id, {
        command: 'printf "int main(void){return 3;}" > m.c && gcc m.c -o m && test -s m',
      });
      assert.equal(cc.exit_code, 0, cc.stderr);
    } finally {
      await call(w.url, 'DELETE', `/v1/sessions/${id}`);
    }
  });

  test('sandpool exec --template runs in a session of that template', async () => {
    const cli = (...args: string[]) =>
      runProcess(process.execPath, ['--import', 'tsx', CLI, 'exec', '--url', w.url, ...args]);
    const onMini = await cli('--template', 'mini', '--', 'command -v git || echo no-git');
    assert.equal(onMini.code, 0, onMini.stderr);
    assert.equal(onMini.stdout, 'no-git\n');
    const onBase = await cli('--', 'git --version');
    assert.equal(onBase.code, 0, onBase.stderr);
    assert.match(onBase.stdout, /^git version/);
    const unknown = await cli('--template', 'nope', '--', 'true');
    assert.equal(unknown.code, 125);
    assert.match(unknown.stderr, /No template "nope"/);
  });

  test('an unknown template answers 404 template_not_found; a missing image says how to build it', async () => {
    const unknown = await call<{ error: { code: string; message: string } }>(
      w.url,
      'POST',
      '/v1/sessions',
      { template: 'nope' },
    );
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'template_not_found');
    assert.match(unknown.body.error.message, /serves base, mini/);

    const missing = await call<{ error: { code: string; message: string } }>(
      w.url,
      'POST',
      '/v1/sessions',
      { template: 'ghost' },
    );
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'template_not_found');
    assert.match(missing.body.error.message, /sandpool template build ghost/);

    const invalid = await call<{ error: { code: string } }>(w.url, 'POST', '/v1/sessions', {
      template: '../x',
    });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.error.code, 'invalid_request');
  });

  test('the SDK creates on a template and lists the templates', async () => {
    const client = new SandpoolClient({ url: w.url });
    const templates = await client.listTemplates();
    assert.deepEqual(
      templates.map((t) => [t.name, t.status]),
      [
        ['base', 'ready'],
        ['mini', 'ready'],
        ['ghost', 'image_missing'],
      ],
    );
    await using sandbox = await Sandbox.create({ url: w.url, template: 'mini' });
    assert.equal((await sandbox.info()).template, 'mini');
    await assert.rejects(
      Sandbox.create({ url: w.url, template: 'nope', createTimeoutMs: 0 }),
      TemplateNotFoundError,
    );
  });
});

describe('a worker none of whose template images is built', () => {
  test('starts, reports itself unhealthy saying what to build, and answers template_not_found', async () => {
    const w = await startWorker({ templates: `ghost=1@${MISSING_IMAGE}` });
    try {
      const health = await call<{ status: string; reason: string }>(w.url, 'GET', '/health');
      assert.equal(health.status, 503);
      assert.equal(health.body.status, 'unhealthy');
      assert.match(health.body.reason, /npx sandpool template build --all/);
      const created = await call<{ error: { code: string } }>(w.url, 'POST', '/v1/sessions', {
        template: 'ghost',
      });
      assert.equal(created.status, 404);
      assert.equal(created.body.error.code, 'template_not_found');
    } finally {
      await w.close();
    }
    assert.deepEqual(await containersOf(w.workerId), []);
  });
});

describe('a coordinator places sessions by template', () => {
  let redis: TestRedis;
  let baseWorker: TestWorker;
  let miniWorker: TestWorker;
  let coordinator: Coordinator;
  let url: string;

  before(async () => {
    redis = await TestRedis.start();
    const distributed = {
      redisUrl: redis.url,
      heartbeatIntervalMs: 300,
      heartbeatTtlMs: 2000,
    };
    [baseWorker, miniWorker] = await Promise.all([
      startWorker({ ...distributed, templates: `base=1@${BASE_IMAGE}` }),
      startWorker({ ...distributed, templates: `mini=1@${MINI_IMAGE}` }),
    ]);
    coordinator = await Coordinator.create({
      ...loadCoordinatorConfig({}, {}),
      port: 0,
      redisUrl: redis.url,
      logLevel: process.env.SANDPOOL_TEST_LOG_LEVEL ?? 'silent',
    });
    url = await coordinator.listen();
    await until(async () => {
      const listed = await call<{ templates: TemplateView[] }>(url, 'GET', '/v1/templates');
      return listed.body.templates.length === 2;
    }, 15_000);
  });

  after(async () => {
    await coordinator?.close();
    await Promise.all([baseWorker?.close(), miniWorker?.close()]);
    await redis?.stop();
    for (const w of [baseWorker, miniWorker]) {
      if (w) assert.deepEqual(await containersOf(w.workerId), []);
    }
  });

  test('each session lands on a worker that serves its template', async () => {
    for (let i = 0; i < 2; i++) {
      const mini = await call<SessionView>(url, 'POST', '/v1/sessions', { template: 'mini' });
      assert.equal(mini.status, 201, JSON.stringify(mini.body));
      assert.equal(mini.body.worker_id, miniWorker.workerId);
      assert.equal(mini.body.template, 'mini');
      const base = await call<SessionView>(url, 'POST', '/v1/sessions', {});
      assert.equal(base.status, 201, JSON.stringify(base.body));
      assert.equal(base.body.worker_id, baseWorker.workerId);
      assert.equal(base.body.template, 'base');

      const git = await exec(url, base.body.session_id, { command: 'git --version' });
      assert.equal(git.exit_code, 0);
      for (const id of [mini.body.session_id, base.body.session_id]) {
        assert.equal((await call(url, 'DELETE', `/v1/sessions/${id}`)).status, 204);
      }
    }
  });

  test('GET /v1/templates sums the workers; an unserved template is 404', async () => {
    const listed = await call<{ templates: TemplateView[] }>(url, 'GET', '/v1/templates');
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.templates.map((t) => [t.name, t.workers]),
      [
        ['base', [baseWorker.workerId]],
        ['mini', [miniWorker.workerId]],
      ],
    );
    const unknown = await call<{ error: { code: string; message: string } }>(
      url,
      'POST',
      '/v1/sessions',
      { template: 'code-interpreter-x' },
    );
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'template_not_found');
    assert.match(unknown.body.error.message, /serve base, mini/);
  });

  test('the session records its template in Redis for re-adoption', async () => {
    const mini = await call<SessionView>(url, 'POST', '/v1/sessions', { template: 'mini' });
    try {
      let record = '';
      await until(async () => {
        record = await redisCommand(
          redis.url,
          'HGET',
          `sandpool:worker-sessions:${miniWorker.workerId}`,
          mini.body.session_id,
        );
        return record !== '';
      }, 5000);
      assert.equal((JSON.parse(record) as { template: string }).template, 'mini');
    } finally {
      await call(url, 'DELETE', `/v1/sessions/${mini.body.session_id}`);
    }
  });
});

describe('sandpool serve with templates, as a process', () => {
  test('names a missing image with its build command; a worker killed and restarted re-adopts a session with its template', async () => {
    const redis = await TestRedis.start();
    const workerId = `tpl-${run}-proc`;
    const args = [
      'serve',
      '--port',
      '0',
      '--worker-id',
      workerId,
      '--templates',
      `mini=1@${MINI_IMAGE},ghost=1@${MISSING_IMAGE}`,
      '--redis',
      redis.url,
      '--heartbeat-interval-ms',
      '300',
      '--heartbeat-ttl-ms',
      '3000',
    ];
    let worker = await SandpoolProcess.start(args);
    try {
      assert.match(
        worker.log,
        /template ghost: image sandpool\/template-ghost:missing-\w+ is missing; build it with `npx sandpool template build ghost`/,
      );
      assert.match(worker.log, /template mini: pool ready/);
      const created = await call<SessionView>(worker.url, 'POST', '/v1/sessions', {
        template: 'mini',
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.session_id;
      await exec(worker.url, id, { command: 'echo kept > note' });
      // The record reaches Redis in the background.
      await until(
        async () =>
          (await redisCommand(redis.url, 'HGET', `sandpool:worker-sessions:${workerId}`, id)) !==
          '',
        5000,
      );

      await worker.stop('SIGKILL');
      worker = await SandpoolProcess.start(args);
      assert.match(worker.log, /re-adopted 1 live session/);
      const read = await call<SessionView>(worker.url, 'GET', `/v1/sessions/${id}`);
      assert.equal(read.status, 200, JSON.stringify(read.body));
      assert.equal(read.body.template, 'mini');
      const note = await exec(worker.url, id, { command: 'cat note' });
      assert.equal(note.stdout, 'kept\n');
      const listed = await call<{ templates: TemplateView[] }>(worker.url, 'GET', '/v1/templates');
      assert.equal(listed.body.templates.find((t) => t.name === 'mini')?.active_sessions, 1);
    } finally {
      await worker.stop();
      await redis.stop();
      assert.deepEqual(await containersOf(workerId), []);
    }
  });
});

/** One Redis command through redis-cli (an independent view of what the worker wrote). */
async function redisCommand(redisUrl: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('redis-cli', ['-p', new URL(redisUrl).port, ...args]);
  return stdout.trim();
}
