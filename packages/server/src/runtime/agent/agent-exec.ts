import { SandpoolError } from '../../errors/sandpool-error.js';
import type { ExecOutcome, ExecRequest, ExecSinks } from '../sandbox-runtime.js';
import type { AgentConnection } from './agent-connection.js';
import { operationError } from './agent-errors.js';
import {
  AgentProtocolError,
  encodeAck,
  encodeFrame,
  parseJsonPayload,
  ReplyType,
  RequestType,
} from './agent-protocol.js';

/**
 * One command through the agent: output delivered to the sinks and acknowledged only once
 * delivered (a slow reader holds the command back), a timeout or an abort kills its process
 * group, and a kill whose exit report never comes is given up after the grace time.
 */
export function agentExec(
  connection: AgentConnection,
  request: ExecRequest,
  sinks: ExecSinks,
): Promise<ExecOutcome> {
  connection.assertOpen();
  const started = performance.now();
  const { windowBytes, maxFrameBytes, killGraceMs } = connection.limits;
  return new Promise<ExecOutcome>((resolve, reject) => {
    let timedOut = false;
    let cancelled = false;
    let settled = false;
    let unacked = 0;
    let delivery: Promise<void> = Promise.resolve();
    let sinkError: Error | undefined;
    let graceTimer: NodeJS.Timeout | undefined;

    const cleanup = () => {
      settled = true;
      connection.release(id);
      clearTimeout(timer);
      clearTimeout(graceTimer);
      request.signal?.removeEventListener('abort', cancel);
    };
    const finish = (exitCode: number) => {
      if (settled) return;
      cleanup();
      if (sinkError !== undefined) reject(sinkError);
      else resolve({ exitCode, timedOut, durationMs: Math.round(performance.now() - started) });
    };
    const cancel = () => {
      if (cancelled || settled) return;
      cancelled = true;
      connection.send(encodeFrame(RequestType.cancel, id));
      // The agent reports the exit once the group is dead; if it never does, stop waiting.
      graceTimer = setTimeout(() => finish(137), killGraceMs);
    };

    const timer = setTimeout(() => {
      timedOut = true;
      cancel();
    }, request.timeoutMs);
    const id = connection.open({
      onFrame: (frame) => {
        if (frame.type === ReplyType.stdout || frame.type === ReplyType.stderr) {
          const size = frame.payload.length;
          unacked += size;
          if (unacked > windowBytes + maxFrameBytes) {
            throw new AgentProtocolError(`${unacked} unacknowledged output bytes, over the window`);
          }
          const stdout = frame.type === ReplyType.stdout;
          delivery = delivery.then(async () => {
            if (sinkError === undefined && !settled) {
              try {
                await (stdout ? sinks.onStdout(frame.payload) : sinks.onStderr(frame.payload));
              } catch (error) {
                sinkError = error instanceof Error ? error : new Error(String(error));
                cancel();
              }
            }
            unacked -= size;
            if (!settled) connection.send(encodeAck(id, size));
          });
        } else if (frame.type === ReplyType.exit) {
          const body = parseJsonPayload(frame.payload);
          const code =
            typeof body.code === 'number' && Number.isInteger(body.code) ? body.code : -1;
          void delivery.then(() => finish(code));
        } else if (frame.type === ReplyType.error) {
          const failure = operationError(frame.payload);
          if (settled) return;
          cleanup();
          reject(
            new SandpoolError(
              'runtime_unavailable',
              `The sandbox's agent could not run the command: ${failure.errno} ${failure.message}`,
            ),
          );
        } else {
          throw new AgentProtocolError(`unexpected frame type ${frame.type} for an exec`);
        }
      },
      fail: (error) => {
        if (settled) return;
        cleanup();
        reject(error);
      },
    });
    request.signal?.addEventListener('abort', cancel, { once: true });
    void sendExec(connection, id, request).then(
      () => {
        if (request.signal?.aborted) cancel();
      },
      () => undefined, // the connection is lost; the pending exec was failed with the reason
    );
  });
}

async function sendExec(connection: AgentConnection, id: number, request: ExecRequest) {
  await connection.sendAwaited(
    encodeFrame(RequestType.exec, id, {
      argv: request.argv,
      cwd: request.cwd,
      env: request.env ?? {},
      stdin: request.stdin !== undefined,
    }),
  );
  if (request.stdin === undefined) return;
  const stdin = Buffer.from(request.stdin);
  const step = connection.limits.uploadChunkBytes;
  for (let offset = 0; offset < stdin.length; offset += step) {
    await connection.sendAwaited(
      encodeFrame(RequestType.stdin, id, stdin.subarray(offset, offset + step)),
    );
  }
  await connection.sendAwaited(encodeFrame(RequestType.stdinEnd, id));
}
