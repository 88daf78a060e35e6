/**
 * A tour of @sandpool/client: open a sandbox, run code in it, move files, and let `await using`
 * close it. Start a worker first (`npx sandpool serve`), then:
 *
 *   node --import tsx examples/quickstart.ts
 *
 * SANDPOOL_URL (default http://127.0.0.1:5000) and SANDPOOL_API_KEY say where and how to connect.
 */
import { ConnectionError, Sandbox, SandboxError } from '@sandpool/client';

async function main(): Promise<void> {
  // Closed (its container destroyed) when this block ends, even if something below throws.
  await using sandbox = await Sandbox.create({
    ttlSeconds: 300,
    metadata: { example: 'quickstart' },
  });
  console.log(`session ${sandbox.sessionId} on worker ${sandbox.workerId}`);

  const who = await sandbox.exec('whoami');
  console.log(`commands run as: ${who.stdout.trim()}`);

  // Write a script, run it, read what it wrote.
  await sandbox.writeFile(
    'fib.py',
    [
      'a, b = 0, 1',
      'out = []',
      'for _ in range(10):',
      '    out.append(a)',
      '    a, b = b, a + b',
      'open("fib.txt", "w").write(" ".join(map(str, out)))',
      'print("wrote", len(out), "numbers")',
    ].join('\n'),
  );
  const run = await sandbox.exec(['python3', 'fib.py']);
  console.log(`python3 fib.py -> exit ${run.exitCode}: ${run.stdout.trim()}`);
  console.log(`fib.txt: ${await sandbox.readTextFile('fib.txt')}`);

  // Output as it arrives.
  process.stdout.write('streamed: ');
  for await (const event of sandbox.execStream('for i in 1 2 3; do echo $i; sleep 0.2; done')) {
    if (event.type === 'stdout') process.stdout.write(event.data.replace(/\n/g, ' '));
    if (event.type === 'exit') console.log(`(exit ${event.exitCode} in ${event.durationMs} ms)`);
  }

  // A timeout kills the command's whole process group; it is a result, not an exception.
  const slow = await sandbox.exec('sleep 30', { timeoutMs: 500 });
  console.log(`sleep 30 with a 500 ms limit: timedOut=${slow.timedOut}`);

  const results = await sandbox.execBatch(['python3 --version', 'false', 'echo never'], {
    stopOnError: true,
  });
  console.log(`batch: ${results.map((r) => r.exitCode).join(', ')} (stopped at the failure)`);

  const files = await sandbox.listFiles('.');
  console.log(`home: ${files.map((f) => `${f.name} (${f.size} B)`).join(', ')}`);
}

main().catch((error: unknown) => {
  if (error instanceof ConnectionError) {
    console.error(error.message);
  } else if (error instanceof SandboxError) {
    console.error(`${error.name} [${error.code}]: ${error.message}`);
  } else {
    console.error(error);
  }
  process.exitCode = 1;
});
