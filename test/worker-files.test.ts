import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startWorker, type TestWorker } from './support/worker-harness.js';
import { call, createSession, exec } from './support/http.js';

describe('files move in and out as the sandbox user', () => {
  let w: TestWorker;
  let id: string;
  const files = (path: string) =>
    `${w.url}/v1/sessions/${id}/files?path=${encodeURIComponent(path)}`;

  before(async () => {
    w = await startWorker({ poolSize: 1, uploadLimitBytes: 8 * 1024 * 1024 });
    id = await createSession(w.url);
  });
  after(() => w.close());

  test('random binary data round-trips byte for byte, owned by uid 1000', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const put = await fetch(files('data/blob.bin'), { method: 'PUT', body: data });
    assert.equal(put.status, 201);
    assert.deepEqual(await put.json(), {
      path: '/home/sandboxuser/data/blob.bin',
      size: data.length,
    });
    const got = await fetch(files('data/blob.bin'));
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('content-type'), 'application/octet-stream');
    const back = Buffer.from(await got.arrayBuffer());
    assert.equal(
      createHash('sha256').update(back).digest('hex'),
      createHash('sha256').update(data).digest('hex'),
    );
    const owner = await exec(w.url, id, {
      command: 'stat -c %u:%g data/blob.bin; sha256sum data/blob.bin',
    });
    assert.match(owner.stdout, /^1000:1000\n/);
    assert.ok(owner.stdout.includes(createHash('sha256').update(data).digest('hex')));
  });

  test('uploads to /tmp work and a streamed body is accepted', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new TextEncoder().encode(`line ${i}\n`));
        controller.close();
      },
    });
    const put = await fetch(files('/tmp/streamed.txt'), { method: 'PUT', body, duplex: 'half' });
    assert.equal(put.status, 201);
    assert.equal(
      await (await fetch(files('/tmp/streamed.txt'))).text(),
      'line 0\nline 1\nline 2\nline 3\n',
    );
  });

  test('list shows names, types, sizes, modes and times', async () => {
    await fetch(files('listing/a.txt'), { method: 'PUT', body: 'hello' });
    await exec(w.url, id, { command: 'mkdir -p listing/sub && ln -s a.txt listing/link' });
    const listed = await call<{
      entries: { name: string; type: string; size: number; mode: string; mtime: string }[];
    }>(w.url, 'GET', `/v1/sessions/${id}/files/list?path=listing`);
    assert.equal(listed.status, 200);
    const byName = Object.fromEntries(listed.body.entries.map((e) => [e.name, e]));
    assert.equal(byName['a.txt']?.type, 'file');
    assert.equal(byName['a.txt']?.size, 5);
    assert.equal(byName['a.txt']?.mode, '644');
    assert.ok(Date.parse(byName['a.txt']?.mtime ?? '') > Date.now() - 60_000);
    assert.equal(byName.sub?.type, 'directory');
    assert.equal(byName.link?.type, 'symlink');
  });

  test('delete removes a file; missing files answer 404 file_not_found', async () => {
    await fetch(files('doomed.txt'), { method: 'PUT', body: 'x' });
    assert.equal((await fetch(files('doomed.txt'), { method: 'DELETE' })).status, 204);
    for (const [method, url] of [
      ['GET', files('doomed.txt')],
      ['DELETE', files('doomed.txt')],
      ['GET', `${w.url}/v1/sessions/${id}/files/list?path=nowhere`],
    ] as const) {
      const r = await fetch(url, { method });
      assert.equal(r.status, 404, `${method} ${url}`);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'file_not_found');
    }
  });

  test('paths that escape the writable roots answer 400 invalid_path and touch nothing', async () => {
    for (const path of ['../../etc/passwd', '/etc/passwd', '/tmp/../etc/x', 'a\0b', '']) {
      const r = await fetch(files(path), { method: 'PUT', body: 'owned' });
      assert.equal(r.status, 400, JSON.stringify(path));
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'invalid_path');
    }
    const passwd = await exec(w.url, id, { command: 'grep -c owned /etc/passwd || true' });
    assert.equal(passwd.stdout.trim(), '0');
  });

  test('uploads over the limit answer 413 and leave no partial file', async () => {
    const big = randomBytes(9 * 1024 * 1024);
    const declared = await fetch(files('big.bin'), { method: 'PUT', body: big });
    assert.equal(declared.status, 413);
    assert.equal(
      ((await declared.json()) as { error: { code: string } }).error.code,
      'payload_too_large',
    );
    // Without a length up front the limit is enforced while streaming.
    const chunks = [big.subarray(0, 4 * 1024 * 1024), big.subarray(4 * 1024 * 1024)];
    const streamed = await fetch(files('big.bin'), {
      method: 'PUT',
      body: new ReadableStream<Uint8Array>({
        start(c) {
          for (const chunk of chunks) c.enqueue(chunk);
          c.close();
        },
      }),
      duplex: 'half',
    });
    assert.equal(streamed.status, 413);
    const left = await exec(w.url, id, { command: 'ls -a ~ | grep -c big || true' });
    assert.equal(left.stdout.trim(), '0');
  });

  test('an upload into a full sandbox fails clearly and keeps the old file', async () => {
    await fetch(files('keep.txt'), { method: 'PUT', body: 'original' });
    await exec(w.url, id, {
      command: 'dd if=/dev/zero of=/home/sandboxuser/filler bs=1M count=400 2>/dev/null; true',
    });
    const r = await fetch(files('keep.txt'), { method: 'PUT', body: randomBytes(2 * 1024 * 1024) });
    assert.equal(r.status, 413);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /no space/i);
    assert.equal(await (await fetch(files('keep.txt'))).text(), 'original');
    await exec(w.url, id, { command: 'rm -f /home/sandboxuser/filler' });
  });

  test('a listing too large for one frame comes in pieces; past the limit, a clear error and the session lives', async () => {
    // 9,000 entries with 120-byte names: about 1.5 MB of listing, over the 1 MiB frame limit
    // that ended the whole session when the agent answered in one frame.
    const make = (dir: string, count: number) =>
      exec(w.url, id, {
        argv: [
          'python3',
          '-c',
          `import os\nos.makedirs("${dir}", exist_ok=True)\nfor i in range(${count}):\n    open("${dir}/%06d-" % i + "n" * 113, "w").close()`,
        ],
      });
    assert.equal((await make('/tmp/many', 9000)).exit_code, 0);
    const listed = await call<{ entries: { name: string }[] }>(
      w.url,
      'GET',
      `/v1/sessions/${id}/files/list?path=/tmp/many`,
    );
    assert.equal(listed.status, 200);
    assert.equal(listed.body.entries.length, 9000);
    assert.equal(listed.body.entries[0]?.name, `000000-${'n'.repeat(113)}`);

    assert.equal((await make('/tmp/many', 10_001)).exit_code, 0);
    const tooMany = await call<{ error: { code: string; message: string } }>(
      w.url,
      'GET',
      `/v1/sessions/${id}/files/list?path=/tmp/many`,
    );
    assert.equal(tooMany.status, 413);
    assert.equal(tooMany.body.error.code, 'payload_too_large');
    assert.match(tooMany.body.error.message, /more than 10000 entries.*subdirectory/);
    assert.equal(
      (await exec(w.url, id, { command: 'rm -rf /tmp/many; echo alive' })).stdout,
      'alive\n',
    );
  });

  test('a download is sent as read (chunked), so a file that shrinks meanwhile ends cleanly', async () => {
    await exec(w.url, id, { command: 'head -c 8000000 /dev/zero > shrinking.bin' });
    const response = await fetch(files('shrinking.bin'));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-length'), null, 'no length from an earlier stat');
    assert.equal(response.headers.get('transfer-encoding'), 'chunked');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let received = (await reader.read()).value?.length ?? 0;
    // Held back by the unread response, the agent is far from the end when the file shrinks.
    await exec(w.url, id, { command: 'truncate -s 1000 shrinking.bin' });
    for (;;) {
      const { value, done } = await reader.read(); // rejects on a cut response
      if (done) break;
      received += value.length;
    }
    assert.ok(received < 8_000_000, `received ${received} bytes`);
    assert.equal((await exec(w.url, id, { command: 'echo next' })).stdout, 'next\n');
  });
});
