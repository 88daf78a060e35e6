import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { SandpoolError } from '../errors/sandpool-error.js';
import type {
  BackgroundProcess,
  ProcessEvents,
  SandboxProcesses,
} from '../runtime/sandbox-processes.js';
import type { SessionManager } from '../sessions/session-manager.js';
import { ProcessService, type ProcessOutputEvent } from './process-service.js';

/** A sandbox whose processes this test drives by hand (the real agent is tested elsewhere). */
class ScriptedProcesses implements SandboxProcesses {
  readonly started: { pid: number; events: ProcessEvents; killed: boolean }[] = [];
  beforeAnswer?: (events: ProcessEvents) => void;
  private nextPid = 100;

  start(_spec: unknown, events: ProcessEvents): Promise<BackgroundProcess> {
    const entry = { pid: this.nextPid++, events, killed: false };
    this.started.push(entry);
    this.beforeAnswer?.(events);
    return Promise.resolve({
      pid: entry.pid,
      writeStdin: () => undefined,
      endStdin: () => undefined,
      signal: () => undefined,
      resize: () => undefined,
      kill: () => {
        entry.killed = true;
        events.onExit(137, 9);
      },
    });
  }

  watch(): never {
    throw new Error('not used');
  }
}

function setup(limits: Partial<ConstructorParameters<typeof ProcessService>[0]['limits']> = {}) {
  const runtime = new ScriptedProcesses();
  let active = true;
  const lost: string[] = [];
  const sessions = {
    get: (id: string) => {
      if (!active) throw new SandpoolError('session_not_found', `no ${id}`);
      return { id, env: {}, sandbox: { processes: runtime } };
    },
    markLost: async (id: string) => void lost.push(id),
  } as unknown as SessionManager;
  const service = new ProcessService({
    sessions,
    log: pino({ level: 'silent' }),
    limits: {
      maxPerSession: 3,
      bufferBytesPerProcess: 4096,
      bufferBytesPerWorker: 1 << 20,
      retainExitedMs: 60_000,
      ...limits,
    },
  });
  return { service, runtime, lost, end: () => (active = false) };
}

describe('ProcessService', () => {
  test('an exit that arrives with the start keeps its real code', async () => {
    const { service, runtime } = setup();
    runtime.beforeAnswer = (events) => {
      events.onOutput('stdout', Buffer.from('done\n'));
      events.onExit(3, undefined);
    };
    const started = await service.start('s', { command: 'echo done; exit 3' });
    const view = service.get('s', String(started.pid));
    assert.deepEqual([view.running, view.exit_code], [false, 3]);
    const events: ProcessOutputEvent[] = [];
    await service.follow('s', String(started.pid), (e) => void events.push(e));
    assert.deepEqual(
      events.map((e) => e.type),
      ['start', 'stdout', 'exit'],
    );
    service.close();
  });

  test('tags select the running process; duplicates are refused while it runs', async () => {
    const { service } = setup();
    const first = await service.start('s', { command: 'a', tag: 'web' });
    await assert.rejects(service.start('s', { command: 'b', tag: 'web' }), /already runs/);
    assert.equal(service.get('s', 'web').pid, first.pid);
    await service.kill('s', 'web');
    const second = await service.start('s', { command: 'b', tag: 'web' });
    assert.equal(service.get('s', 'web').pid, second.pid);
    assert.throws(
      () => service.get('s', 'nope'),
      (e: unknown) => e instanceof SandpoolError && e.code === 'process_not_found',
    );
    service.close();
  });

  test('the per-session limit counts running processes; exited ones make room', async () => {
    const { service } = setup();
    const pids = [];
    for (let i = 0; i < 3; i++) pids.push((await service.start('s', { command: 'x' })).pid);
    await assert.rejects(service.start('s', { command: 'y' }), /limit of 3 processes/);
    await service.kill('s', String(pids[0]));
    await service.start('s', { command: 'y' });
    assert.equal(service.list('s').length, 3);
    service.close();
  });

  test('a follower that aborts leaves no waiter; a lost sandbox ends followers with an error', async () => {
    const { service, runtime, lost, end } = setup();
    const started = await service.start('s', { command: 'x' });
    const controller = new AbortController();
    const following = service.follow('s', String(started.pid), () => undefined, controller.signal);
    controller.abort();
    await following;
    const events: ProcessOutputEvent[] = [];
    const second = service.follow('s', String(started.pid), (e) => void events.push(e));
    await new Promise((r) => setImmediate(r));
    end();
    runtime.started[0]?.events.onLost(new SandpoolError('session_lost', 'gone'));
    await second;
    assert.equal(events.at(-1)?.type, 'error');
    assert.deepEqual(lost, ['s']);
    assert.equal(service.bufferedBytes, 0, 'the output of a gone session is released');
    service.close();
  });

  test('stdin to a process started without it is refused', async () => {
    const { service } = setup();
    const started = await service.start('s', { command: 'x' });
    assert.throws(
      () => service.writeStdin('s', String(started.pid), Buffer.from('a'), false),
      /without stdin/,
    );
    service.close();
  });
});
