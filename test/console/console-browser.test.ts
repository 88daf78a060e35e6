import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { loadCoordinatorConfig } from '../../packages/server/src/config/coordinator-config.js';
import { Coordinator } from '../../packages/server/src/coordinator/coordinator.js';
import { codeInterpreterImage } from '../support/code-image.js';
import { containersOf } from '../support/docker.js';
import { call } from '../support/http.js';
import { TestRedis } from '../support/redis-server.js';
import { until } from '../support/until.js';
import { startWorker, type TestWorker } from '../support/worker-harness.js';

/**
 * Issue 15 in a real browser: Debian's Chromium, driven by Playwright, against a real worker
 * (with an API key: the console asks for it) and a coordinator in front of it (without one: the
 * console is then served to loopback only, and a page of another origin must not drive it).
 */

/*
 * The page's globals, as far as the functions these tests run inside it (page.evaluate) use them.
 * The test project compiles the server's sources too, whose Node types clash with the DOM's, so
 * it has no DOM library: these declarations are types only, and the functions run in Chromium.
 */
interface PageElement {
  textContent: string | null;
  children: Iterable<PageElement>;
  getAttribute(name: string): string | null;
  dispatchEvent(event: unknown): boolean;
}
interface PageImage {
  complete: boolean;
  naturalWidth: number;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(
    selector: string,
  ): Iterable<PageElement> & { length: number; [i: number]: PageElement | undefined };
  addEventListener(
    type: 'keydown',
    listener: (event: { timeStamp: number }) => void,
    capture: boolean,
  ): void;
  documentElement: { scrollWidth: number };
  activeElement: PageElement | null;
};
declare const window: { innerWidth: number };
declare class MutationObserver {
  constructor(callback: () => void);
  observe(target: PageElement, options: Record<string, boolean>): void;
}
declare class DataTransfer {
  items: { add(file: unknown): void };
}
declare class DragEvent {
  constructor(type: string, init: { dataTransfer: DataTransfer; bubbles: boolean });
}

const ARTIFACTS = new URL('../../test-artifacts/console/', import.meta.url).pathname;
const API_KEY = 'console-test-key';

/**
 * The machine's Chromium. This suite runs as root (CI and the dev machines do), and Chromium
 * refuses to start its setuid/namespace sandbox as root, hence --no-sandbox; the page under test
 * is our own console on loopback. Headless, no GPU on these machines.
 */
function launchChromium(): Promise<Browser> {
  const args = ['--disable-gpu', '--disable-dev-shm-usage'];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  return chromium.launch({
    executablePath: process.env.SANDPOOL_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args,
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

/** The terminal's visible text (xterm's DOM renderer draws rows as elements). */
const terminalText = (page: Page) =>
  page.evaluate(() =>
    [...(document.querySelector('.xterm-rows')?.children ?? [])]
      .map((row) => (row.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd())
      .join('\n'),
  );

async function waitForTerminal(page: Page, pattern: RegExp, what: string): Promise<string> {
  let text = '';
  try {
    await until(
      async () => {
        text = await terminalText(page);
        return pattern.test(text);
      },
      15_000,
      what,
    );
  } catch (error) {
    const notices = await page.locator('.notice').allTextContents();
    throw new Error(
      `${String(error)}; the terminal shows ${JSON.stringify(text)}; notices: ${notices.join(' | ')}`,
    );
  }
  return text;
}

describe('the operator console in Chromium', { timeout: 150_000 }, () => {
  let redis: TestRedis;
  let worker: TestWorker;
  let coordinator: Coordinator;
  let coordinatorUrl: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let sessionId = '';
  const figures: Record<string, number> = {};

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    redis = await TestRedis.start();
    const [image, launched] = await Promise.all([codeInterpreterImage(), launchChromium()]);
    browser = launched;
    worker = await startWorker({
      image,
      poolSize: 1,
      apiKey: API_KEY,
      redisUrl: redis.url,
      heartbeatIntervalMs: 500,
    });
    coordinator = await Coordinator.create({
      ...loadCoordinatorConfig({}, {}),
      port: 0,
      redisUrl: redis.url,
      workerApiKey: API_KEY,
      logLevel: process.env.SANDPOOL_TEST_LOG_LEVEL ?? 'silent',
    });
    coordinatorUrl = await coordinator.listen();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('dialog', (dialog) => void dialog.accept());
  });

  after(async () => {
    await browser?.close();
    await coordinator?.close();
    const workerId = worker?.workerId;
    await worker?.close();
    await redis?.stop();
    if (workerId !== undefined) assert.deepEqual(await containersOf(workerId), []);
    if (Object.keys(figures).length > 0) {
      console.log(`console figures: ${JSON.stringify(figures)}`);
    }
  });

  test('asks for the API key once, refuses a wrong one in words, then lists and creates', async () => {
    await page.goto(`${worker.url}/ui/`);
    await page.getByLabel('Key', { exact: true }).fill('not-the-key');
    await page.getByRole('button', { name: 'Open the console' }).click();
    await page.getByText('That key was refused').waitFor();
    await page.getByLabel('Key', { exact: true }).fill(API_KEY);
    await page.getByRole('button', { name: 'Open the console' }).click();
    await page.locator('#pools tbody tr').first().waitFor();
    // Kept for the tab: a reload does not ask again.
    await page.reload();
    await page.locator('#pools tbody th', { hasText: 'base' }).waitFor();
    await page.locator('#workers tbody td', { hasText: 'healthy' }).first().waitFor();
    // Keyboard first: Tab reaches the skip link, then the page's own controls.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');

    await page.getByLabel('Metadata').fill('owner=console-test');
    const clicked = Date.now();
    await page.getByRole('button', { name: 'Create session' }).click();
    const row = page.locator('#sessions tbody tr[data-session]');
    await row.first().waitFor();
    figures.createToListedMs = Date.now() - clicked;
    sessionId = (await row.first().getAttribute('data-session')) ?? '';
    assert.match(sessionId, /\S/);
    assert.match((await row.first().textContent()) ?? '', /owner=console-test/);
    await page.getByLabel('Filter').fill('nobody-has-this');
    await page.getByText('No session matches the filter.').waitFor();
    await page.getByLabel('Filter').fill('console-test');
    await row.first().waitFor();
    // Wait for a chart sample or two, so the screenshot shows them.
    await page.waitForFunction(
      () =>
        document.querySelectorAll('.chart canvas').length === 4 &&
        ![...document.querySelectorAll('.latest')].some((e) => e.textContent === 'collecting…'),
      undefined,
      { timeout: 10_000 },
    );
    // The create was a pool hit; the pool table counts it.
    await page.locator('#pools tbody tr', { hasText: 'base' }).locator('td').nth(3).waitFor();
    assert.equal(
      await page.locator('#pools tbody tr', { hasText: 'base' }).locator('td').nth(3).textContent(),
      '1',
    );
    await page.screenshot({ path: `${ARTIFACTS}overview.png`, fullPage: true });
  });

  test('the session page: terminal (whoami, echo, resize), files, code, execs, processes', async () => {
    await page.getByRole('link', { name: sessionId, exact: true }).click();
    await page.locator('#terminal .xterm-rows').waitFor();
    await waitForTerminal(page, /\$$/m, 'the shell prompt');
    await page.keyboard.type('whoami\n');
    await waitForTerminal(page, /^sandboxuser/m, 'whoami in the terminal');

    // A keystroke's echo, timed inside the page from the keydown event to the drawn character.
    await page.evaluate(() => {
      const state = { t0: 0, want: '', samples: [] as number[] };
      (window as unknown as { echo: typeof state }).echo = state;
      document.addEventListener('keydown', (event) => (state.t0 = event.timeStamp), true);
      const rows = document.querySelector('.xterm-rows');
      if (rows === null) throw new Error('no terminal');
      new MutationObserver(() => {
        if (state.want !== '' && (rows.textContent ?? '').includes(state.want)) {
          state.samples.push(performance.now() - state.t0);
          state.want = '';
        }
      }).observe(rows, { childList: true, subtree: true, characterData: true });
    });
    const letters = 'qwertyuiopasdfghjklz';
    for (let i = 0; i < letters.length; i++) {
      await page.evaluate(
        (want) => {
          (window as unknown as { echo: { want: string } }).echo.want = want;
        },
        `#${letters.slice(0, i + 1)}`,
      );
      await page.keyboard.type(i === 0 ? `#${letters[0]}` : (letters[i] ?? ''));
      await page.waitForFunction(
        (n) => (window as unknown as { echo: { samples: number[] } }).echo.samples.length === n,
        i + 1,
        { timeout: 5000 },
      );
    }
    const samples = await page.evaluate(
      () => (window as unknown as { echo: { samples: number[] } }).echo.samples,
    );
    figures.keystrokeEchoMedianMs = Math.round(median(samples) * 10) / 10;
    figures.keystrokeEchoMaxMs = Math.round(Math.max(...samples) * 10) / 10;
    await page.keyboard.press('Control+U');
    // The terminal is no keyboard trap: Escape then Tab moves on.
    await page.keyboard.press('Escape');
    await page.keyboard.press('Tab');
    assert.notEqual(
      await page.evaluate(() => document.activeElement?.getAttribute('aria-label')),
      'Terminal input',
    );
    await page.locator('#terminal').click();
    // The Escape went to the shell too (vim needs it): ^C drops what readline made of it.
    await page.keyboard.press('Control+C');
    await page.keyboard.type('clear\n');
    await waitForTerminal(page, /^sandboxuser@sandbox:~\$$/m, 'a clean prompt');

    // Resize the window: the terminal refits and the shell's tty follows.
    const sizeBefore = await page.locator('#terminal').getAttribute('data-size');
    await page.setViewportSize({ width: 700, height: 800 });
    await page.waitForFunction(
      (before) => document.querySelector('#terminal')?.getAttribute('data-size') !== before,
      sizeBefore,
    );
    const size = (await page.locator('#terminal').getAttribute('data-size')) ?? '';
    await page.keyboard.type('stty size\n');
    await waitForTerminal(page, new RegExp(`^${size}\\s*$`, 'm'), `stty size ${size}`);
    assert.notEqual(size, sizeBefore);
    await page.screenshot({ path: `${ARTIFACTS}session-700.png`, fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    // Files: upload by the file input and by a drop, list, download, delete.
    await page.setInputFiles('#files-upload', {
      name: 'hello.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('hello from the browser\n'),
    });
    await page.locator('#files tr[data-file="hello.txt"]').waitFor();
    await page.evaluate(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' }));
      document
        .querySelector('#files-drop')
        ?.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true }));
    });
    await page.locator('#files tr[data-file="dropped.txt"]').waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download hello.txt' }).click(),
    ]);
    assert.equal(await readFile((await download.path()) ?? '', 'utf8'), 'hello from the browser\n');
    await page.getByRole('button', { name: 'Delete dropped.txt' }).click();
    await page.locator('#files tr[data-file="dropped.txt"]').waitFor({ state: 'detached' });

    // A cell that plots: its PNG is shown.
    await page.getByRole('button', { name: 'Run cell' }).click();
    const image = page.locator('#code-output img');
    await image.waitFor({ timeout: 30_000 });
    assert.ok(
      await image.evaluate((img) => {
        const loaded = img as unknown as PageImage;
        return loaded.complete && loaded.naturalWidth > 100;
      }),
    );

    // An exec, listed with its exit code and duration.
    await page.getByLabel('Run a command').fill('echo from-exec; exit 3');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.locator('#execs tbody tr', { hasText: 'echo from-exec; exit 3' }).waitFor();
    assert.match(
      (await page.locator('#execs tbody tr').first().textContent()) ?? '',
      /exit 3\s*3\s*\d+ ms/,
    );

    await page.screenshot({ path: `${ARTIFACTS}session.png`, fullPage: true });

    // A background process: its page shows its output; kill it there.
    await page.getByLabel('Start in the background').fill('echo started-here; sleep 300');
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await page.getByRole('link', { name: /^process \d+$/ }).click();
    await page.locator('#process-output', { hasText: 'started-here' }).waitFor();
    await page.locator('#process-state', { hasText: 'running' }).waitFor();
    await page.getByRole('button', { name: 'Kill' }).click();
    await page.getByText('Killed (exit 137)').waitFor();
    await page.locator('#process-state', { hasText: 'exited 137' }).waitFor();
    await page.screenshot({ path: `${ARTIFACTS}process.png`, fullPage: true });
  });

  test('the session list through the coordinator, served to loopback without a key', async () => {
    const viaCoordinator = await browser.newPage({ viewport: { width: 360, height: 800 } });
    try {
      await viaCoordinator.goto(`${coordinatorUrl}/ui/`);
      await viaCoordinator.locator(`#sessions tr[data-session="${sessionId}"]`).waitFor();
      await viaCoordinator
        .locator('#workers tbody th', { hasText: worker.workerId })
        .waitFor({ timeout: 10_000 });
      // The coordinator's pool table sums its workers' heartbeats: the one hit so far.
      await viaCoordinator.waitForFunction(() => {
        const cells = document.querySelectorAll('#pools tbody tr td');
        return cells[3]?.textContent === '1';
      });
      // Create a session through the coordinator, then delete it from the list.
      viaCoordinator.on('dialog', (dialog) => void dialog.accept());
      const clicked = Date.now();
      await viaCoordinator.getByRole('button', { name: 'Create session' }).click();
      const fresh = viaCoordinator.locator(
        `#sessions tbody tr[data-session]:not([data-session="${sessionId}"])`,
      );
      await fresh.waitFor();
      figures.createToListedViaCoordinatorMs = Date.now() - clicked;
      const freshId = (await fresh.getAttribute('data-session')) ?? '';
      // Its charts: creates from its own metrics, the hit rate from its workers' heartbeats.
      await viaCoordinator.waitForFunction(() => {
        const latest = [...document.querySelectorAll('.latest')].map((e) => e.textContent);
        return /^\d/.test(latest[0] ?? '') && /^\d/.test(latest[3] ?? '');
      });
      await viaCoordinator.getByRole('button', { name: `Delete session ${freshId}` }).click();
      await viaCoordinator
        .locator(`#sessions tr[data-session="${freshId}"]`)
        .waitFor({ state: 'detached' });
      // Readable at 360 px: nothing wider than the window but the tables' own scroll boxes.
      const overflow = await viaCoordinator.evaluate(
        () => document.documentElement.scrollWidth - window.innerWidth,
      );
      assert.ok(overflow <= 0, `the page is ${overflow} px wider than a 360 px window`);
      await viaCoordinator.screenshot({ path: `${ARTIFACTS}coordinator-360.png`, fullPage: true });
      // The session's recent execs, relayed from its worker.
      const execs = await call<{ execs: { command: string; exit_code: number }[] }>(
        coordinatorUrl,
        'GET',
        `/v1/sessions/${sessionId}/execs`,
      );
      assert.deepEqual(
        execs.body.execs.map((e) => [e.command, e.exit_code]),
        [['echo from-exec; exit 3', 3]],
      );
      // The terminal through the coordinator's WebSocket bridge.
      await viaCoordinator.getByRole('link', { name: sessionId, exact: true }).click();
      await viaCoordinator.locator('#terminal .xterm-rows').waitFor();
      await waitForTerminal(viaCoordinator, /\$$/m, 'the prompt via the coordinator');
      await viaCoordinator.keyboard.type('echo via-$((40+2))\n');
      await waitForTerminal(viaCoordinator, /^via-42/m, 'output via the coordinator');
    } finally {
      await viaCoordinator.close();
    }
  });

  test('a page of another origin can neither create a session nor open a terminal', async () => {
    const before = await call<{ sessions: unknown[] }>(coordinatorUrl, 'GET', '/v1/sessions');
    const { pid } = (
      await call<{ pid: number }>(
        worker.url,
        'POST',
        `/v1/sessions/${sessionId}/processes`,
        { argv: ['bash', '-i'], pty: { cols: 80, rows: 24 } },
        { authorization: `Bearer ${API_KEY}` },
      )
    ).body;
    const evil: Server = createServer((_request, response) => {
      response.setHeader('content-type', 'text/html');
      response.end('<!doctype html><title>elsewhere</title>');
    });
    evil.listen(0, '127.0.0.1');
    await once(evil, 'listening');
    const address = evil.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const other = await browser.newPage();
    try {
      await other.goto(`http://127.0.0.1:${port}/`);
      const outcome = await other.evaluate(
        async ({ target, ptyPath }) => {
          // A "simple" cross-origin POST is sent without a preflight: only the server can stop it.
          const post = await fetch(`${target}/v1/sessions`, {
            method: 'POST',
            mode: 'no-cors',
            headers: { 'content-type': 'text/plain' },
            body: '{}',
          }).then(
            () => 'sent',
            () => 'failed',
          );
          const socket = await new Promise<string>((resolve) => {
            const ws = new WebSocket(`${target.replace('http', 'ws')}${ptyPath}`, ['sandpool.v1']);
            ws.onopen = () => resolve('open');
            ws.onclose = (event) => resolve(`closed ${event.code}`);
          });
          return { post, socket };
        },
        { target: coordinatorUrl, ptyPath: `/v1/sessions/${sessionId}/processes/${pid}/pty` },
      );
      assert.equal(outcome.socket, 'closed 1006');
      const afterwards = await call<{ sessions: unknown[] }>(coordinatorUrl, 'GET', '/v1/sessions');
      assert.equal(afterwards.body.sessions.length, before.body.sessions.length);
    } finally {
      await other.close();
      evil.close();
    }
  });

  test('the key as a WebSocket subprotocol is checked like the header, and never echoed', async () => {
    const { pid } = (
      await call<{ pid: number }>(
        worker.url,
        'POST',
        `/v1/sessions/${sessionId}/processes`,
        { argv: ['bash', '-i'], pty: { cols: 80, rows: 24 } },
        { authorization: `Bearer ${API_KEY}` },
      )
    ).body;
    const url = `${worker.url.replace('http', 'ws')}/v1/sessions/${sessionId}/processes/${pid}/pty`;
    const offer = (key: string) => [
      'sandpool.v1',
      `sandpool.bearer.${Buffer.from(key).toString('base64url')}`,
    ];
    const attempt = (protocols: string[]) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(url, protocols);
        ws.on('open', () => {
          resolve(`open ${ws.protocol}`);
          ws.close();
        });
        ws.on('unexpected-response', (request, response) => {
          resolve(`refused ${response.statusCode}`);
          request.destroy();
        });
        ws.on('error', (error) => resolve(`error ${error.message}`));
      });
    assert.equal(await attempt(offer('wrong')), 'refused 401');
    assert.equal(await attempt(['sandpool.v1']), 'refused 401');
    assert.equal(await attempt(offer(API_KEY)), 'open sandpool.v1');
  });

  test('deleting the session from its page takes it out of the list', async () => {
    await page.goto(`${worker.url}/ui/#/sessions/${encodeURIComponent(sessionId)}`);
    await page.locator('#delete-session').click();
    await page.locator('#sessions').waitFor();
    await page
      .locator(`#sessions tr[data-session="${sessionId}"]`)
      .waitFor({ state: 'detached', timeout: 10_000 });
    const gone = await call(worker.url, 'GET', `/v1/sessions/${sessionId}`, undefined, {
      authorization: `Bearer ${API_KEY}`,
    });
    assert.equal(gone.status, 404);
  });
});
