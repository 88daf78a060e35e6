import type { Readable, Writable } from 'node:stream';
import { SandpoolError } from '../../errors/sandpool-error.js';
import type { FileEntry, FileStat, FileType } from '../sandbox-runtime.js';
import type { AgentConnection } from './agent-connection.js';
import { AgentOperationError, mapFileError, operationError } from './agent-errors.js';
import {
  AgentProtocolError,
  encodeAck,
  encodeFrame,
  parseJsonPayload,
  ReplyType,
  RequestType,
} from './agent-protocol.js';

/** File operations through the agent, as the sandbox user. Paths are checked by the caller. */

export async function agentWriteFile(
  connection: AgentConnection,
  path: string,
  content: Readable,
): Promise<number> {
  let failure: Error | undefined;
  let id = 0;
  const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
    id = connection.open({
      onFrame: (frame) => {
        connection.release(id);
        if (frame.type === ReplyType.ok) resolve(parseJsonPayload(frame.payload));
        else if (frame.type === ReplyType.error) reject(operationError(frame.payload));
        else throw new AgentProtocolError(`unexpected frame type ${frame.type} for a write`);
      },
      fail: reject,
    });
  }).catch((error: unknown) => {
    failure = error instanceof Error ? error : new Error(String(error));
    throw failure;
  });
  answer.catch(() => undefined); // observed below; avoids an unhandled rejection meanwhile
  const step = connection.limits.uploadChunkBytes;
  try {
    await connection.sendAwaited(encodeFrame(RequestType.writeOpen, id, { path }));
    for await (const piece of content as AsyncIterable<Buffer>) {
      if (failure !== undefined) break;
      const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
      for (let offset = 0; offset < chunk.length; offset += step) {
        await connection.sendAwaited(
          encodeFrame(RequestType.writeData, id, chunk.subarray(offset, offset + step)),
        );
      }
    }
  } catch (error) {
    // The source failed (client went away): the agent drops the partial file.
    connection.send(encodeFrame(RequestType.cancel, id));
    connection.release(id);
    // A write that failed because the agent went away is a lost session, not an upload error.
    connection.assertOpen();
    throw error;
  }
  if (failure === undefined) connection.send(encodeFrame(RequestType.writeEnd, id));
  try {
    const reply = await answer;
    return Number(reply.size);
  } catch (error) {
    throw mapFileError(error, path);
  }
}

export async function agentStatFile(
  connection: AgentConnection,
  path: string,
): Promise<FileStat | undefined> {
  const reply = await fileCall(connection, RequestType.stat, path);
  if (reply.exists !== true) return undefined;
  return { type: asFileType(reply.type), size: Number(reply.size) };
}

/**
 * Streams a file into `destination`, acknowledging each chunk once written there. When the
 * destination closes first (the client went away), the agent is told to stop and the request
 * ends at once: no pending request, no open descriptor in the sandbox, no timer is left behind.
 */
export async function agentReadFile(
  connection: AgentConnection,
  path: string,
  destination: Writable,
): Promise<void> {
  connection.assertOpen();
  const { windowBytes, maxFrameBytes } = connection.limits;
  await new Promise<void>((resolve, reject) => {
    let unacked = 0;
    let delivery: Promise<void> = Promise.resolve();
    let done = false;
    const settle = (error?: Error) => {
      if (done) return;
      done = true;
      connection.release(id);
      destination.off('close', abandoned);
      destination.off('error', abandoned);
      if (error === undefined) resolve();
      else reject(error);
    };
    const abandoned = () => {
      if (done) return;
      connection.send(encodeFrame(RequestType.cancel, id));
      settle(new Error(`the download of ${path} was abandoned by its reader`));
    };
    const id = connection.open({
      onFrame: (frame) => {
        if (frame.type === ReplyType.data) {
          unacked += frame.payload.length;
          if (unacked > windowBytes + maxFrameBytes) {
            throw new AgentProtocolError(`${unacked} unacknowledged file bytes, over the window`);
          }
          delivery = delivery.then(async () => {
            if (done) return;
            if (!destination.write(frame.payload)) await drained(destination);
            unacked -= frame.payload.length;
            if (!done) connection.send(encodeAck(id, frame.payload.length));
          });
        } else if (frame.type === ReplyType.end) {
          void delivery.then(() => settle());
        } else if (frame.type === ReplyType.error) {
          settle(mapFileError(operationError(frame.payload), path));
        } else {
          throw new AgentProtocolError(`unexpected frame type ${frame.type} for a read`);
        }
      },
      fail: settle,
    });
    destination.once('close', abandoned);
    destination.once('error', abandoned);
    if (destination.destroyed) {
      abandoned();
      return;
    }
    connection.send(encodeFrame(RequestType.read, id, { path }));
  });
}

/** Resolves once `destination` takes more, whatever ends it first (a closed one never drains). */
function drained(destination: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      destination.off('drain', done);
      destination.off('close', done);
      resolve();
    };
    destination.once('drain', done);
    destination.once('close', done);
  });
}

/**
 * A directory's entries, which the agent sends in pieces (so a large listing never makes a frame
 * over the limit). Past `maxListEntries` the answer is a clear error and the session lives.
 */
export async function agentListFiles(
  connection: AgentConnection,
  path: string,
): Promise<FileEntry[]> {
  const limit = connection.limits.maxListEntries;
  const raw: unknown[] = [];
  let reply: Record<string, unknown>;
  try {
    reply = await new Promise((resolve, reject) => {
      const id = connection.open({
        onFrame: (frame) => {
          if (frame.type === ReplyType.data) {
            const piece = parseJsonArray(frame.payload);
            raw.push(...piece);
            if (raw.length > limit) throw new AgentProtocolError('more list entries than asked');
            return;
          }
          connection.release(id);
          if (frame.type === ReplyType.ok) resolve(parseJsonPayload(frame.payload));
          else if (frame.type === ReplyType.error) reject(operationError(frame.payload));
          else throw new AgentProtocolError(`unexpected frame type ${frame.type} for a list`);
        },
        fail: reject,
      });
      connection.send(encodeFrame(RequestType.list, id, { path, limit }));
    });
  } catch (error) {
    if (error instanceof AgentOperationError && error.errno === 'ENOTDIR') {
      throw new SandpoolError(
        'invalid_path',
        `${path} is a file, not a directory; read it with GET /files?path=...`,
      );
    }
    throw mapFileError(error, path);
  }
  if (reply.more === true) throw tooManyEntries(path, limit);
  // An agent of version 1 answers with every entry in one frame.
  if (Array.isArray(reply.entries)) raw.push(...(reply.entries as unknown[]));
  if (raw.length > limit) throw tooManyEntries(path, limit);
  const entries: FileEntry[] = [];
  for (const item of raw) {
    if (!Array.isArray(item) || item.length !== 5)
      throw connection.protocolFailure('a malformed list entry');
    const [name, type, size, mode, mtime] = item as unknown[];
    entries.push({
      name: String(name),
      type: asFileType(type),
      size: Number(size),
      mode: String(mode),
      mtime: new Date(Number(mtime) * 1000).toISOString(),
    });
  }
  return entries.sort((a, b) => a.name.localeCompare(b.name));
}

export function tooManyEntries(path: string, limit: number): SandpoolError {
  return new SandpoolError(
    'payload_too_large',
    `${path} has more than ${limit} entries, more than one listing returns; list a subdirectory, or run \`ls\` or \`find\` through exec.`,
  );
}

export async function agentRemoveFile(connection: AgentConnection, path: string): Promise<void> {
  await fileCall(connection, RequestType.remove, path);
}

async function fileCall(
  connection: AgentConnection,
  type: number,
  path: string,
): Promise<Record<string, unknown>> {
  try {
    return await connection.call(type, { path }, ReplyType.ok);
  } catch (error) {
    throw mapFileError(error, path);
  }
}

function parseJsonArray(payload: Buffer): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new AgentProtocolError('a list piece that is not JSON');
  }
  if (!Array.isArray(value)) throw new AgentProtocolError('a list piece that is not an array');
  return value as unknown[];
}

function asFileType(value: unknown): FileType {
  return value === 'file' || value === 'directory' || value === 'symlink' ? value : 'other';
}
