import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { Sandbox as CodeSandbox } from '@e2b/code-interpreter';
import { FileNotFoundError, InvalidArgumentError, Sandbox } from 'e2b';
import { codeInterpreterImage, pngSize } from '../support/code-image.js';
import { startWorker, type TestWorker } from '../support/worker-harness.js';
import { useE2bServer } from './e2b-env.js';

// envd's HTTP file routes and the code interpreter's Jupyter routes on a real worker, driven by
// the published `e2b` and `@e2b/code-interpreter` SDKs, unmodified, set up by the environment.

const UPLOAD_LIMIT = 256 * 1024;

describe('E2B files and code interpreter on a worker', () => {
  let worker: TestWorker;
  let sandbox: Sandbox;

  before(async () => {
    const codeImage = await codeInterpreterImage();
    worker = await startWorker({
      templates: `base=1,code-interpreter=1@${codeImage}`,
      uploadLimitBytes: UPLOAD_LIMIT,
    });
    useE2bServer(worker.url, 'any-key-without-a-configured-one');
    sandbox = await Sandbox.create({ timeoutMs: 120_000 });
  });

  after(async () => {
    await sandbox?.kill().catch(() => undefined);
    await worker?.close();
  });

  test('write and read text, bytes, a stream; several files in one upload', async () => {
    const written = await sandbox.files.write('notes/hello.txt', 'héllo e2b');
    assert.equal(written.path, '/home/sandboxuser/notes/hello.txt');
    assert.equal(written.name, 'hello.txt');
    assert.equal(await sandbox.files.read('notes/hello.txt'), 'héllo e2b');

    const binary = new Uint8Array(70_000).map((_, i) => (i * 31) % 256);
    await sandbox.files.write('/tmp/blob.bin', binary.buffer);
    const back = await sandbox.files.read('/tmp/blob.bin', { format: 'bytes' });
    assert.deepEqual(Buffer.from(back), Buffer.from(binary));

    const stream = await sandbox.files.read('/tmp/blob.bin', { format: 'stream' });
    let streamed = 0;
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>)
      streamed += chunk.length;
    assert.equal(streamed, binary.length);

    const many = await sandbox.files.write([
      { path: 'many/a.txt', data: 'A' },
      { path: 'many/b.txt', data: new Blob(['B']) },
      { path: '/tmp/many-c.txt', data: 'C' },
    ]);
    assert.deepEqual(
      many.map((f) => f.path),
      ['/home/sandboxuser/many/a.txt', '/home/sandboxuser/many/b.txt', '/tmp/many-c.txt'],
    );
    assert.equal(await sandbox.files.read('many/b.txt'), 'B');

    // Octet-stream (gzip-compressed by the SDK) uploads.
    await sandbox.files.write('zipped.txt', 'z'.repeat(10_000), { gzip: true });
    assert.equal(await sandbox.files.read('zipped.txt'), 'z'.repeat(10_000));
    await sandbox.files.write('octet.txt', 'raw body', { useOctetStream: true });
    assert.equal(await sandbox.files.read('octet.txt'), 'raw body');
  });

  test('E2B’s absolute home paths (/home/user) work for files, commands and listings', async () => {
    const written = await sandbox.files.write('/home/user/e2b-home.txt', 'at home');
    assert.equal(written.path, '/home/sandboxuser/e2b-home.txt');
    assert.equal(await sandbox.files.read('/home/user/e2b-home.txt'), 'at home');
    const run = await sandbox.commands.run('cat /home/user/e2b-home.txt; echo; pwd -P', {
      cwd: '/home/user',
    });
    assert.equal(run.stdout, 'at home\n/home/sandboxuser\n');
    const listed = await sandbox.files.list('/home/user');
    assert.ok(listed.some((entry) => entry.name === 'e2b-home.txt'));
    assert.equal(await sandbox.files.exists('/home/user/e2b-home.txt'), true);
  });

  test('errors map to the SDK’s classes; uploads are capped and path-checked', async () => {
    await assert.rejects(sandbox.files.read('missing.txt'), FileNotFoundError);
    await assert.rejects(sandbox.files.write('/etc/passwd', 'x'), InvalidArgumentError);
    await assert.rejects(sandbox.files.read('/tmp'), InvalidArgumentError);
    await assert.rejects(
      sandbox.files.write('big.bin', new Uint8Array(UPLOAD_LIMIT + 1).buffer),
      /exceeds the limit/,
    );
    // A gzip bomb is counted after decompression.
    const bomb = gzipSync(Buffer.alloc(UPLOAD_LIMIT * 4));
    const response = await fetch(`${worker.url}/e2b/sandbox/files?path=bomb.bin`, {
      method: 'POST',
      body: bomb,
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Encoding': 'gzip',
        'E2b-Sandbox-Id': sandbox.sandboxId,
        'E2b-Sandbox-Port': '49983',
        'X-Access-Token': (sandbox as unknown as { envdAccessToken: string }).envdAccessToken,
      },
    });
    assert.equal(response.status, 413);
    assert.equal(((await response.json()) as { code: number }).code, 413);
  });

  test('runCode: state across cells, a matplotlib PNG, a DataFrame, errors, contexts', async () => {
    const code = await CodeSandbox.create({ timeoutMs: 120_000, envs: { GREETING: 'hola' } });
    try {
      const info = await code.getInfo();
      assert.equal(info.templateId, 'code-interpreter');

      // The sandbox's envVars reach its cells.
      assert.equal((await code.runCode('import os; os.environ["GREETING"]')).text, "'hola'");
      await code.runCode('x = 40');
      const answer = await code.runCode('print("out"); x + 2');
      assert.equal(answer.text, '42');
      assert.deepEqual(answer.logs.stdout, ['out\n']);
      assert.ok((answer.executionCount ?? 0) >= 2);

      const plot = await code.runCode(
        'import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()',
      );
      const png = plot.results.find((r) => r.png !== undefined)?.png;
      assert.ok(png, `no PNG in ${JSON.stringify(plot.results.map((r) => r.formats()))}`);
      assert.ok(pngSize(png).width > 100);

      const frame = await code.runCode(
        'import pandas as pd\npd.DataFrame({"a": [1, 2], "b": [3, 4]})',
      );
      assert.match(frame.results[0]?.html ?? '', /<table/);

      const failed = await code.runCode('1 / 0');
      assert.equal(failed.error?.name, 'ZeroDivisionError');

      const streamed: string[] = [];
      await code.runCode('print("a"); print("b")', { onStdout: (m) => void streamed.push(m.line) });
      assert.equal(streamed.join(''), 'a\nb\n');

      const context = await code.createCodeContext({ cwd: '/tmp' });
      await code.runCode('y = 7', { context });
      assert.equal((await code.runCode('y', { context })).text, '7');
      assert.equal((await code.runCode('import os; os.getcwd()', { context })).text, "'/tmp'");
      const contexts = await code.listCodeContexts();
      assert.ok(contexts.some((c) => c.id === context.id));
      await code.restartCodeContext(context);
      assert.equal((await code.runCode('y', { context })).error?.name, 'NameError');
      await code.removeCodeContext(context);
      assert.ok(!(await code.listCodeContexts()).some((c) => c.id === context.id));

      // The SDK hangs up when its timeoutMs passes: the cell is interrupted, not left running.
      await assert.rejects(
        code.runCode('import time\nwhile True: time.sleep(0.05)', { timeoutMs: 1500 }),
        /Execution timed out/,
      );
      const started = Date.now();
      assert.equal((await code.runCode('x')).text, '40');
      assert.ok(Date.now() - started < 10_000, 'the next cell waited for the abandoned one');

      const bash = await code.runCode('echo $((6 * 7))', { language: 'bash' });
      assert.deepEqual(bash.logs.stdout.join(''), '42\n');
      // A short request timeout: runCode leaves its request timer running when it throws.
      await assert.rejects(code.runCode('1', { language: 'r', requestTimeoutMs: 3000 }), /400/);
    } finally {
      await code.kill();
    }
  });
});
