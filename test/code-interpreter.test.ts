import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startWorker, type TestWorker } from './support/worker-harness.js';
import { call, createSession } from './support/http.js';
import { codeInterpreterImage, pngSize } from './support/code-image.js';
import { containersOf } from './support/docker.js';

// The code interpreter through the public HTTP API, against the real IPython kernel in the real
// code-interpreter image. These tests check behaviour; `npm run bench` measures speed.

interface Result {
  text?: string;
  html?: string;
  markdown?: string;
  png?: string;
  is_main_result: boolean;
  truncated?: boolean;
}
interface Execution {
  results: Result[];
  stdout: string;
  stderr: string;
  error?: {
    name: string;
    value: string;
    traceback: string;
    timed_out?: boolean;
    context_restarted?: boolean;
  };
  execution_count: number | null;
  duration_ms: number;
  context_id: string;
  language: string;
  truncated: boolean;
}

async function runCode(url: string, session: string, body: Record<string, unknown>) {
  const answer = await call<Execution>(url, 'POST', `/v1/sessions/${session}/code`, body);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

const mainText = (execution: Execution) => execution.results.find((r) => r.is_main_result)?.text;

describe('code interpreter (real IPython kernel)', () => {
  let worker: TestWorker;
  let session: string;

  before(async () => {
    worker = await startWorker({ image: await codeInterpreterImage(), poolSize: 1 });
    session = await createSession(worker.url, { env: { SESSION_FLAVOUR: 'mint' } });
  });

  after(async () => {
    await worker?.close();
    assert.deepEqual(await containersOf(worker.workerId), []);
  });

  test('variables persist between cells; the last expression is the main result', async () => {
    const first = await runCode(worker.url, session, { code: 'x = 1' });
    assert.deepEqual(first.results, []);
    assert.equal(first.error, undefined);
    assert.equal(first.language, 'python');
    const second = await runCode(worker.url, session, { code: 'x + 1' });
    assert.equal(mainText(second), '2');
    assert.equal(second.context_id, first.context_id, 'the default context both times');
    assert.equal(second.execution_count, (first.execution_count ?? 0) + 1);
  });

  test('cells reach the bridge over the agent’s tunnel (its Unix socket is not needed)', async () => {
    const own = await createSession(worker.url);
    await runCode(worker.url, own, { code: 'y = 20' });
    // Without the socket, the socat path could not reach the running bridge (its lock keeps a
    // second one from starting): cells that still run went through the tunnel to its port.
    const removed = await call<{ exit_code: number }>(
      worker.url,
      'POST',
      `/v1/sessions/${own}/exec`,
      {
        command: 'rm /tmp/.sandpool/kernel.sock',
      },
    );
    assert.equal(removed.body.exit_code, 0);
    assert.equal(mainText(await runCode(worker.url, own, { code: 'y + 1' })), '21');
    await call(worker.url, 'DELETE', `/v1/sessions/${own}`);
  });

  test('a client that hangs up mid-cell gets the cell interrupted; the next cell runs at once', async () => {
    const own = await createSession(worker.url);
    await runCode(worker.url, own, { code: 'kept = 5' });
    const hangUp = new AbortController();
    const abandoned = fetch(`${worker.url}/v1/sessions/${own}/code`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        code: 'import time\nwhile True: time.sleep(0.05)',
        timeout_ms: 120_000,
      }),
      signal: hangUp.signal,
    });
    setTimeout(() => hangUp.abort(), 1000);
    await assert.rejects(abandoned);
    const started = Date.now();
    assert.equal(mainText(await runCode(worker.url, own, { code: 'kept + 1' })), '6');
    assert.ok(Date.now() - started < 10_000, 'the next cell did not wait for the abandoned one');
    await call(worker.url, 'DELETE', `/v1/sessions/${own}`);
  });

  test('print, display() and _repr_*_ objects come back as Jupyter shows them', async () => {
    const execution = await runCode(worker.url, session, {
      code: [
        'from IPython.display import display, Markdown',
        'print("to stdout")',
        'import sys; print("to stderr", file=sys.stderr)',
        'display(Markdown("**bold**"))',
        'class Money:',
        '    def _repr_html_(self): return "<b>5 EUR</b>"',
        '    def __repr__(self): return "5 EUR"',
        'Money()',
      ].join('\n'),
    });
    assert.equal(execution.stdout, 'to stdout\n');
    assert.equal(execution.stderr, 'to stderr\n');
    assert.equal(execution.results.length, 2);
    assert.equal(execution.results[0].markdown, '**bold**');
    assert.equal(execution.results[0].is_main_result, false);
    assert.deepEqual(
      [execution.results[1].html, execution.results[1].text, execution.results[1].is_main_result],
      ['<b>5 EUR</b>', '5 EUR', true],
    );
  });

  test('a matplotlib figure left open comes back as a PNG that decodes', async () => {
    const execution = await runCode(worker.url, session, {
      code: 'import matplotlib.pyplot as plt\nplt.plot([1, 4, 9, 16])\nplt.title("squares")',
      timeout_ms: 120_000,
    });
    assert.equal(execution.error, undefined, JSON.stringify(execution.error));
    const figure = execution.results.find((r) => r.png !== undefined);
    assert.ok(figure?.png, JSON.stringify(execution.results.map((r) => Object.keys(r))));
    const { width, height } = pngSize(figure.png);
    assert.ok(width > 100 && height > 100, `${width}x${height}`);
  });

  test('a pandas DataFrame comes back as HTML and text', async () => {
    const execution = await runCode(worker.url, session, {
      code: 'import pandas as pd\ndf = pd.DataFrame({"city": ["Oslo", "Lima"], "t": [4, 19]})\ndf',
      timeout_ms: 120_000,
    });
    const table = execution.results.find((r) => r.is_main_result);
    assert.match(table?.html ?? '', /<table[\s\S]*Oslo[\s\S]*Lima/);
    assert.match(table?.text ?? '', /city\s+t/);
  });

  test('an error answers name, value and a plain traceback', async () => {
    const execution = await runCode(worker.url, session, { code: '1 / 0' });
    assert.equal(execution.error?.name, 'ZeroDivisionError');
    assert.equal(execution.error?.value, 'division by zero');
    assert.match(execution.error?.traceback ?? '', /ZeroDivisionError/);
    assert.doesNotMatch(
      execution.error?.traceback ?? '',
      new RegExp(String.fromCharCode(27) + '\\['),
      'no ANSI colours',
    );
  });

  test('an infinite loop is interrupted at its timeout and the variables survive', async () => {
    await runCode(worker.url, session, { code: 'kept = 41' });
    const looped = await runCode(worker.url, session, {
      code: 'while True:\n    pass',
      timeout_ms: 1500,
    });
    assert.equal(looped.error?.name, 'TimeoutError');
    assert.equal(looped.error?.timed_out, true);
    assert.notEqual(looped.error?.context_restarted, true);
    assert.equal(mainText(await runCode(worker.url, session, { code: 'kept + 1' })), '42');
  });

  test('a cell that ignores the interrupt gets its context restarted, and says so', async () => {
    await runCode(worker.url, session, { code: 'doomed = 1' });
    const stuck = await runCode(worker.url, session, {
      code: 'import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass',
      timeout_ms: 1000,
    });
    assert.equal(stuck.error?.name, 'TimeoutError');
    assert.equal(stuck.error?.timed_out, true);
    assert.equal(stuck.error?.context_restarted, true);
    const after = await runCode(worker.url, session, { code: '"doomed" in globals()' });
    assert.equal(mainText(after), 'False', 'a fresh kernel');
  });

  test('a kernel that dies answers a clear error; the next cell gets a fresh context', async () => {
    await runCode(worker.url, session, { code: 'lost = 1' });
    const died = await runCode(worker.url, session, { code: 'import os\nos._exit(1)' });
    assert.equal(died.error?.name, 'KernelDied');
    assert.match(died.error?.value ?? '', /died/);
    assert.equal(died.error?.context_restarted, true);
    const next = await runCode(worker.url, session, { code: '"lost" in globals(), 6 * 7' });
    assert.equal(mainText(next), '(False, 42)');
    const view = await call(worker.url, 'GET', `/v1/sessions/${session}`);
    assert.equal(view.status, 200, 'the session lives');
  });

  test('the session env is in the kernel; a cell env holds for that cell only', async () => {
    const flavour = await runCode(worker.url, session, {
      code: 'import os\nos.environ.get("SESSION_FLAVOUR"), os.environ.get("ONLY_NOW")',
      env: { ONLY_NOW: 'yes' },
    });
    assert.equal(mainText(flavour), "('mint', 'yes')");
    const later = await runCode(worker.url, session, { code: 'os.environ.get("ONLY_NOW")' });
    assert.equal(mainText(later), undefined, 'None is no result');
  });

  test('NDJSON streams each output as it happens, then end', async () => {
    const started = performance.now();
    const response = await fetch(`${worker.url}/v1/sessions/${session}/code`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({
        code: 'import time\nprint("first", flush=True)\ntime.sleep(1.5)\nprint("second")\n7',
      }),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/x-ndjson');
    const events: { type: string; data?: string; text?: string; at: number }[] = [];
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const event = JSON.parse(buffered.slice(0, newline)) as {
          type: string;
          data?: string;
          text?: string;
        };
        events.push({ ...event, at: performance.now() - started });
        buffered = buffered.slice(newline + 1);
      }
    }
    assert.deepEqual(
      events.map((e) => e.type),
      ['stdout', 'stdout', 'result', 'end'],
    );
    assert.equal(events[0].data, 'first\n');
    assert.equal(events[2].text, '7');
    assert.ok(events[3].at - events[0].at > 1000, 'the first line came before the cell ended');
  });

  test('contexts: create, isolate, list, restart, delete', async () => {
    const created = await call<{ context_id: string; language: string; cwd: string }>(
      worker.url,
      'POST',
      `/v1/sessions/${session}/contexts`,
      { language: 'python', cwd: '/tmp' },
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual([created.body.language, created.body.cwd], ['python', '/tmp']);
    const cid = created.body.context_id;
    await runCode(worker.url, session, {
      code: 'only_here = "yes"',
      context_id: cid,
      timeout_ms: 120_000,
    });
    const cwd = await runCode(worker.url, session, {
      code: 'import os; os.getcwd()',
      context_id: cid,
    });
    assert.equal(mainText(cwd), "'/tmp'");
    const elsewhere = await runCode(worker.url, session, { code: '"only_here" in globals()' });
    assert.equal(mainText(elsewhere), 'False', 'the default context does not see it');

    const listed = await call<{ contexts: { context_id: string }[] }>(
      worker.url,
      'GET',
      `/v1/sessions/${session}/contexts`,
    );
    assert.ok(listed.body.contexts.some((c) => c.context_id === cid));

    const restarted = await call(
      worker.url,
      'POST',
      `/v1/sessions/${session}/contexts/${cid}/restart`,
    );
    assert.equal(restarted.status, 200);
    const gone = await runCode(worker.url, session, {
      code: '"only_here" in globals()',
      context_id: cid,
    });
    assert.equal(mainText(gone), 'False');

    assert.equal(
      (await call(worker.url, 'DELETE', `/v1/sessions/${session}/contexts/${cid}`)).status,
      204,
    );
    const unknown = await call<{ error: { code: string } }>(
      worker.url,
      'POST',
      `/v1/sessions/${session}/code`,
      { code: '1', context_id: cid },
    );
    assert.deepEqual([unknown.status, unknown.body.error.code], [404, 'context_not_found']);
  });

  test('bash contexts keep variables and report a failing status', async () => {
    const set = await runCode(worker.url, session, {
      language: 'bash',
      code: 'GREETING=hello\ncd /tmp\necho "$GREETING from $(pwd)"',
    });
    assert.equal(set.language, 'bash');
    assert.equal(set.stdout, 'hello from /tmp\n');
    const again = await runCode(worker.url, session, {
      language: 'bash',
      code: 'echo "$GREETING again"; false',
    });
    assert.equal(again.stdout, 'hello again\n');
    assert.equal(again.error?.name, 'ExitError');
  });

  test('output caps: stdout is cut at the exec cap and a huge result is truncated', async () => {
    const loud = await runCode(worker.url, session, { code: 'print("y" * (3 * 1024 * 1024))' });
    assert.equal(loud.truncated, true);
    assert.ok(loud.stdout.length <= 1024 * 1024, `${loud.stdout.length}`);
    const huge = await runCode(worker.url, session, { code: '"z" * (6 * 1024 * 1024)' });
    assert.equal(huge.truncated, true);
    const text = mainText(huge) ?? '';
    assert.ok(text.length <= 4 * 1024 * 1024 && text.length > 0, `${text.length}`);
  });

  test('a hostile bridge cannot flood the worker: lines and output are bounded', async () => {
    // Code in the sandbox can replace the bridge with anything; the worker must stay bounded.
    const hostile = await createSession(worker.url);
    const fake = (answer: string) =>
      [
        'import os, socket',
        'path = "/tmp/.sandpool/kernel.sock"',
        'os.makedirs(os.path.dirname(path), exist_ok=True)',
        'if os.path.exists(path): os.unlink(path)',
        's = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(8)',
        'while True:',
        '    c, _ = s.accept()',
        '    while c.recv(65536): pass',
        `    ${answer}`,
        '    c.close()',
      ].join('\n');
    const start = async (answer: string) => {
      const started = await call<{ exit_code: number; stderr: string }>(
        worker.url,
        'POST',
        `/v1/sessions/${hostile}/exec`,
        {
          argv: [
            'sh',
            '-c',
            "pkill -f '^python3 -I -B /opt/sandpool/sandpool_kernel_bridge'; pkill -f '^python3 /tmp/fake_bridge'; " +
              'printf "%s" "$0" > /tmp/fake_bridge.py; (python3 /tmp/fake_bridge.py </dev/null >/dev/null 2>&1 &); sleep 1',
            fake(answer),
          ],
        },
      );
      assert.equal(started.body.exit_code, 0, started.body.stderr);
    };

    await start('c.sendall(b"x" * (20 * 1024 * 1024))'); // one endless line
    const endless = await runCode(worker.url, hostile, { code: '1' });
    assert.equal(endless.error?.name, 'KernelDied');
    assert.match(endless.error?.value ?? '', /line over/);

    await start(
      'c.sendall(b"".join(b\'{"type":"stdout","data":"%s"}\\n\' % (b"y" * 60000) for _ in range(60)) + b\'{"type":"end","context_id":"ctx_fake","execution_count":1}\\n\')',
    );
    const flood = await runCode(worker.url, hostile, { code: '1' });
    assert.equal(flood.truncated, true);
    assert.equal(flood.stdout.length, 1024 * 1024);
    assert.equal(flood.context_id, 'ctx_fake');

    // No bridge at all (it died): the worker starts one, and the cell runs in a fresh kernel.
    const killed = await call<{ exit_code: number }>(
      worker.url,
      'POST',
      `/v1/sessions/${hostile}/exec`,
      {
        command: "pkill -f '^python3 /tmp/fake_bridge'; rm -f /tmp/.sandpool/kernel.sock",
      },
    );
    assert.equal(killed.body.exit_code, 0);
    const revived = await runCode(worker.url, hostile, { code: '6 * 7', timeout_ms: 120_000 });
    assert.equal(mainText(revived), '42');
    assert.equal((await call(worker.url, 'DELETE', `/v1/sessions/${hostile}`)).status, 204);
  });

  test('fuzzed bodies never get a 5xx from the code routes', async () => {
    const routes: [string, string][] = [
      ['POST', `/v1/sessions/${session}/code`],
      // Not POST .../contexts: each valid body would start another kernel of ~100 MiB.
      ['POST', `/v1/sessions/${session}/contexts/ctx_${'0'.repeat(16)}/restart`],
      ['DELETE', `/v1/sessions/${session}/contexts/ctx_${'1'.repeat(16)}`],
    ];
    const body = fc.oneof(
      fc.json(),
      fc
        .record(
          {
            code: fc.oneof(fc.string(), fc.anything()),
            language: fc.oneof(fc.constantFrom('python', 'bash'), fc.anything()),
            context_id: fc.oneof(fc.string(), fc.anything()),
            timeout_ms: fc.oneof(fc.integer({ min: 1, max: 2000 }), fc.anything()),
            env: fc.anything(),
            cwd: fc.anything(),
          },
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o)),
      fc.string(),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), body, async ([method, path], text) => {
        const response = await fetch(`${worker.url}${path}`, {
          method,
          headers: { 'content-type': 'application/json' },
          body: text,
        });
        const answer = await response.text();
        assert.ok(
          response.status < 500,
          `${method} ${path} ${text} -> ${response.status} ${answer}`,
        );
      }),
      { numRuns: 60 },
    );
    // Whatever the fuzz made, the default context still answers.
    assert.equal(mainText(await runCode(worker.url, session, { code: '2 + 2' })), '4');
  });

  test('requests are checked', async () => {
    const bad = await call<{ error: { code: string } }>(
      worker.url,
      'POST',
      `/v1/sessions/${session}/code`,
      {
        code: '1',
        language: 'cobol',
      },
    );
    assert.deepEqual([bad.status, bad.body.error.code], [400, 'invalid_request']);
    const noSession = await call<{ error: { code: string } }>(
      worker.url,
      'POST',
      '/v1/sessions/sb_nope/code',
      {
        code: '1',
      },
    );
    assert.deepEqual([noSession.status, noSession.body.error.code], [404, 'session_not_found']);
    const mismatch = await call<{ error: { code: string } }>(
      worker.url,
      'POST',
      `/v1/sessions/${session}/code`,
      {
        code: '1',
        language: 'bash',
        context_id: (await runCode(worker.url, session, { code: '1' })).context_id,
      },
    );
    assert.deepEqual([mismatch.status, mismatch.body.error.code], [400, 'invalid_request']);
  });
});

describe('code interpreter on an image without it', () => {
  test('answers 400 with what to do', async () => {
    const worker = await startWorker({ poolSize: 1 });
    try {
      const session = await createSession(worker.url);
      const answer = await call<{ error: { code: string; message: string } }>(
        worker.url,
        'POST',
        `/v1/sessions/${session}/code`,
        { code: '1 + 1' },
      );
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error.code, 'invalid_request');
      assert.match(answer.body.error.message, /code-interpreter/);
    } finally {
      await worker.close();
    }
  });
});
