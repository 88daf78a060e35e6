/**
 * A script written for E2B, run unchanged against sandpool: only the environment says where.
 * Start sandpool (`npm run up`, or `npx sandpool serve --templates base=2,code-interpreter=1`),
 * then, with the three variables its start-up banner prints:
 *
 *   E2B_API_URL=http://127.0.0.1:5000/e2b E2B_SANDBOX_URL=http://127.0.0.1:5000/e2b/sandbox \
 *   E2B_API_KEY=any-value node --import tsx examples/e2b-script.ts
 *
 * It creates a code-interpreter sandbox, runs a command, writes and reads a file, runs code that
 * plots, opens a terminal, reaches a web server inside through `getHost`, and kills the sandbox.
 * The last line it prints is a JSON summary.
 */
import { request } from 'node:http';
import { lookup } from 'node:dns';
import { Sandbox } from '@e2b/code-interpreter';

/** GET over plain HTTP; `*.localhost` names are loopback (RFC 6761), as browsers resolve them. */
function get(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        headers,
        lookup: (hostname, options, callback) =>
          hostname === 'localhost' || hostname.endsWith('.localhost')
            ? callback(null, options.all ? [{ address: '127.0.0.1', family: 4 }] : '127.0.0.1', 4)
            : lookup(hostname, options, callback),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const sandbox = await Sandbox.create({ timeoutMs: 300_000, metadata: { example: 'e2b-script' } });
  console.log(`sandbox ${sandbox.sandboxId}`);
  try {
    const command = await sandbox.commands.run('echo "hello from $(whoami)"');
    console.log(`command: ${command.stdout.trim()} (exit ${command.exitCode})`);

    await sandbox.files.write('hello.txt', 'written through the E2B SDK\n');
    const read = await sandbox.files.read('hello.txt');
    console.log(`file: ${read.trim()}`);

    const plot = await sandbox.runCode(
      'import matplotlib.pyplot as plt\nplt.plot([1, 4, 2, 8])\nplt.title("from E2B code")\nplt.show()',
    );
    const png = plot.results.find((r) => r.png !== undefined)?.png ?? '';
    console.log(`plot: ${png.length} base64 characters of PNG`);

    let terminal = '';
    const decoder = new TextDecoder();
    const pty = await sandbox.pty.create({
      cols: 100,
      rows: 30,
      onData: (data) => void (terminal += decoder.decode(data)),
    });
    await sandbox.pty.resize(pty.pid, { cols: 120, rows: 40 });
    await sandbox.pty.sendInput(
      pty.pid,
      new TextEncoder().encode('stty size; echo pty-$((40 + 2))\nexit\n'),
    );
    await pty.wait();
    console.log(
      `terminal: ${/pty-42/.test(terminal) ? 'ran' : 'no answer'}, size ${/40 120/.test(terminal) ? '40x120' : '?'}`,
    );

    await sandbox.commands.run('python3 -m http.server 8000', { background: true });
    const url = `http://${sandbox.getHost(8000)}/hello.txt`;
    let page = { status: 0, body: '' };
    for (let attempt = 0; attempt < 50 && page.status !== 200; attempt++) {
      page = await get(url, { 'e2b-traffic-access-token': sandbox.trafficAccessToken ?? '' }).catch(
        () => ({ status: 0, body: '' }),
      );
      if (page.status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`web: ${url} -> ${page.status} ${page.body.trim()}`);

    console.log(
      JSON.stringify({
        command: command.stdout.trim(),
        file: read,
        png: png.length > 0,
        terminal: /pty-42/.test(terminal),
        terminalSize: /40 120/.test(terminal),
        web: page.status === 200 ? page.body : `status ${page.status}`,
      }),
    );
  } finally {
    await sandbox.kill();
  }
}

await main();
