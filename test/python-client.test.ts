import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SandpoolClient } from '@sandpool/client';
import { containersOf } from './support/docker.js';
import { runProcess, type Run } from './support/run-process.js';
import { startWorker, type TestWorker } from './support/worker-harness.js';

/**
 * clients/python/sandpool_client.py with Debian's python3 against a real worker: the seed's
 * `--test`, and the calls a LangGraph user in Python makes.
 */

const CLIENT_DIR = new URL('../clients/python/', import.meta.url).pathname;
const CLIENT = `${CLIENT_DIR}sandpool_client.py`;
const PYTHON = process.env.SANDPOOL_TEST_PYTHON ?? '/usr/bin/python3';
const API_KEY = 'python-test-key';

function python(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runProcess(PYTHON, args, {
    cwd: CLIENT_DIR,
    // No __pycache__ left in the source tree.
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LANG: 'C',
      PYTHONDONTWRITEBYTECODE: '1',
      ...env,
    },
  });
}

/** Runs a Python snippet with the client importable and the worker in the environment. */
async function script(w: TestWorker, source: string): Promise<Run> {
  return python(['-c', source], { SANDPOOL_URL: w.url, SANDPOOL_API_KEY: API_KEY });
}

describe('Python client (standard library)', () => {
  let w: TestWorker;

  before(async () => {
    w = await startWorker({ poolSize: 1, maxSessions: 3, apiKey: API_KEY });
  });

  after(async () => {
    await w?.close();
    assert.deepEqual(await containersOf(w.workerId), [], 'containers left behind');
  });

  test('python3 sandpool_client.py --test passes and cleans up', async () => {
    const run = await python([CLIENT, '--test', '--url', w.url, '--api-key', API_KEY]);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /\[ok\] {3}whoami .*user sandboxuser, not root/);
    assert.match(run.stdout, /\[ok\] {3}streaming \(NDJSON\)/);
    assert.match(run.stdout, /All tests passed\./);
    assert.doesNotMatch(run.stdout, /FAIL/);
    const open = await new SandpoolClient({ url: w.url, apiKey: API_KEY }).listSessions();
    assert.deepEqual(open, []);
  });

  test('--test fails with a clear line when no server answers', async () => {
    const run = await python([CLIENT, '--test', '--url', 'http://127.0.0.1:9']);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /\[FAIL\] create a session - connection_failed: no answer from/);
  });

  test('the seed’s names: SandboxClient, upload_file, execute, BatchSandboxClient', async () => {
    const run = await script(
      w,
      `
import json, os, tempfile
from sandpool_client import SandboxClient, BatchSandboxClient, SandpoolError

local = os.path.join(tempfile.mkdtemp(), "local_script.py")
with open(local, "w") as f:
    f.write("print(sum(range(10)))")
with SandboxClient() as sandbox:
    sandbox.upload_file(local)
    result = sandbox.execute("python3 local_script.py")
    print("execute", result["stdout"].strip(), result["exit_code"])
    sandbox.write_file("data/bytes.bin", bytes(range(256)))
    print("read", len(sandbox.read_file("data/bytes.bin")))
    out = os.path.join(tempfile.mkdtemp(), "copy.bin")
    print("download", sandbox.download_file("data/bytes.bin", out)["size"], os.path.getsize(out))
    events = list(sandbox.execute_stream(["python3", "-c", "print(1); print(2)"]))
    stdout = "".join(e["data"] for e in events if e["type"] == "stdout")
    print("stream", repr(stdout), events[-1]["type"], events[-1]["exit_code"])
    try:
        sandbox.read_file("missing.txt")
    except SandpoolError as error:
        print("error", error.code, error.status)
    session_id = sandbox.session_id
try:
    SandboxClient(session_id=session_id)
except SandpoolError as error:
    print("closed", error.code)
results = BatchSandboxClient().execute_batch(["echo 'Step 1: Setup'", "python3 --version"])
print("batch", json.dumps([[r["command"], r["exit_code"]] for r in results]))
`,
    );
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.deepEqual(lines, [
      'execute 45 0',
      'read 256',
      'download 256 256',
      "stream '1\\n2\\n' exit 0",
      'error file_not_found 404',
      'closed session_not_found',
      `batch [["echo 'Step 1: Setup'", 0], ["python3 --version", 0]]`,
    ]);
  });

  test('python3 sandpool_client.py CMD runs one command and exits with its code', async () => {
    const flags = ['--url', w.url, '--api-key', API_KEY];
    const ok = await python([CLIENT, ...flags, '--', 'python3', '-c', 'print(6*7)']);
    assert.deepEqual([ok.code, ok.stdout], [0, '42\n']);
    const failed = await python([CLIENT, ...flags, '--', 'echo oops >&2; exit 3']);
    assert.deepEqual([failed.code, failed.stderr], [3, 'oops\n']);
  });

  test('a wrong API key is an unauthorized SandpoolError', async () => {
    const run = await python(
      ['-c', 'from sandpool_client import SandboxClient\nwith SandboxClient(): pass'],
      { SANDPOOL_URL: w.url, SANDPOOL_API_KEY: 'wrong' },
    );
    assert.equal(run.code, 1);
    assert.match(run.stderr, /SandpoolError: unauthorized: /);
  });
});
