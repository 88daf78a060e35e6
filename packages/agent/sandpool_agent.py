#!/usr/bin/env python3
"""sandpool in-sandbox agent: the sandbox container's long-lived process.

It runs as the sandbox user (uid 1000) and serves the worker over its own stdin/stdout (the
container's attached stdio, so the sandbox needs no network). Frames in both directions are

    u32 BE length (of what follows) | u8 type | u32 BE request id | payload

Control payloads are UTF-8 JSON, output and file data are raw bytes. Each command runs in its own
session and process group; an exec ends when its process exited AND its stdout and stderr pipes
closed, so descendants that keep the pipes open keep it running until the worker kills the group.
Output is flow-controlled per request: at most WINDOW unacknowledged bytes are in flight.

The worker treats everything this process says as untrusted (code in the sandbox can signal,
ptrace or impersonate it), so this file favours simplicity over defending itself.
Standard library only: the image has python3 and nothing else to depend on.
"""

import errno
import json
import os
import secrets
import selectors
import signal
import stat
import struct
import subprocess
import sys

VERSION = 2
HEADER = struct.Struct(">IBI")
MAX_IN_FRAME = 8 * 1024 * 1024
CHUNK = 64 * 1024
WINDOW = 256 * 1024
MAX_LIST_ENTRIES = 100_000
LIST_PIECE_BYTES = 64 * 1024
COMMAND_OOM_SCORE_ADJ = "500"

# worker -> agent
T_HELLO, T_EXEC, T_STDIN, T_STDIN_END, T_CANCEL, T_ACK, T_PING = 1, 2, 3, 4, 5, 6, 7
T_WRITE_OPEN, T_WRITE_DATA, T_WRITE_END, T_READ, T_STAT, T_LIST, T_REMOVE = (
    0x10, 0x11, 0x12, 0x14, 0x15, 0x16, 0x17)
# agent -> worker
R_HELLO, R_STDOUT, R_STDERR, R_EXIT, R_OK, R_ERROR, R_DATA, R_PONG, R_END = (
    0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89)


def send(kind, rid, payload=b""):
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        payload = json.dumps(payload, separators=(",", ":")).encode()
    data = HEADER.pack(5 + len(payload), kind, rid) + bytes(payload)
    view = memoryview(data)
    while view:
        written = os.write(1, view)
        view = view[written:]


def error_payload(exc):
    code = errno.errorcode.get(getattr(exc, "errno", None) or 0, "EIO")
    return {"errno": code, "message": getattr(exc, "strerror", None) or str(exc)}


def file_type(mode):
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


EXEC_MARKER = "SANDPOOL_EXEC"
# An image may ask for a helper started at boot (the code-interpreter template's kernel bridge,
# so a pooled sandbox has its kernel warm before any session claims it): a JSON argv list.
PRESTART_ENV = "SANDPOOL_PRESTART"


def kill_marked(marker):
    """Kills every process whose environment carries this exec's marker: the ones that left its
    process group with setsid. A few passes, since they may fork while we look."""
    needle = ("\0%s=%s\0" % (EXEC_MARKER, marker)).encode()
    me = os.getpid()
    for _ in range(3):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in (1, me):
                continue
            try:
                with open("/proc/%s/environ" % entry, "rb") as f:
                    environ = b"\0" + f.read()
            except OSError:
                continue  # gone, or not ours to read
            if needle in environ:
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
        if not found:
            return


class Exec:
    """One command: its process, its pipes, and how much output awaits acknowledgement."""

    def __init__(self, rid, proc, stdin_wanted, marker):
        self.rid = rid
        self.proc = proc
        self.marker = marker
        # fd -> (frame type, file object); closing goes through the file object, which owns the fd.
        self.pipes = {
            proc.stdout.fileno(): (R_STDOUT, proc.stdout),
            proc.stderr.fileno(): (R_STDERR, proc.stderr),
        }
        self.stdin_buffer = bytearray()
        self.stdin_open = stdin_wanted
        self.stdin_ending = False
        self.unacked = 0
        self.paused = False
        self.killed = False


class Reader:
    """A file streamed to the worker in chunks, within the same window as command output."""

    def __init__(self, rid, fd):
        self.rid = rid
        self.fd = fd
        self.unacked = 0
        self.size = 0


class Agent:
    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.execs = {}
        self.readers = {}
        self.writers = {}
        self.inbox = bytearray()
        self.running = True
        self.base_env = dict(os.environ)
        self.prestarted = self.prestart(self.base_env.pop(PRESTART_ENV, None))
        wake_r, wake_w = os.pipe()
        for fd in (wake_r, wake_w):
            os.set_blocking(fd, False)
        # SIGCHLD wakes select() through this pipe, so exits are noticed without polling.
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.wake_r = wake_r
        os.set_blocking(0, False)
        self.selector.register(0, selectors.EVENT_READ, ("in", None))
        self.selector.register(wake_r, selectors.EVENT_READ, ("wake", None))

    def prestart(self, spec):
        """Starts the image's boot helper, detached from the protocol stream; None without one."""
        if not spec:
            return None
        try:
            argv = json.loads(spec)
            return subprocess.Popen(
                argv, env=self.base_env, cwd=self.base_env.get("HOME") or "/",
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True)
        except (ValueError, TypeError, OSError) as exc:
            sys.stderr.write("sandpool-agent: prestart failed: %r\n" % (exc,))
            return None

    # --- main loop ------------------------------------------------------------------------------

    def run(self):
        while self.running:
            ready_readers = [r for r in self.readers.values() if r.unacked < WINDOW]
            timeout = 0 if ready_readers else None
            for key, _ in self.selector.select(timeout):
                kind, owner = key.data
                if kind == "in":
                    self.read_input()
                elif kind == "wake":
                    try:
                        while os.read(self.wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                elif kind == "out":
                    self.read_output(owner, key.fd)
                elif kind == "stdin":
                    self.write_stdin(owner)
            for reader in ready_readers:
                if reader.rid in self.readers:
                    self.pump_reader(reader)
            self.reap()
        for ex in list(self.execs.values()):
            self.kill_group(ex)

    def read_input(self):
        try:
            data = os.read(0, 1024 * 1024)
        except BlockingIOError:
            return
        if not data:
            self.running = False  # the worker is gone: nobody will ever read our answers
            return
        self.inbox += data
        while len(self.inbox) >= 4:
            (length,) = struct.unpack_from(">I", self.inbox)
            if length < 5 or length > MAX_IN_FRAME:
                sys.stderr.write("sandpool-agent: bad frame length %d\n" % length)
                self.running = False
                return
            if len(self.inbox) < 4 + length:
                break
            _, kind, rid = HEADER.unpack_from(self.inbox)
            payload = bytes(self.inbox[9:4 + length])
            del self.inbox[:4 + length]
            try:
                self.handle(kind, rid, payload)
            except Exception as exc:  # one bad request must not take the agent down
                send(R_ERROR, rid, {"errno": "EPROTO", "message": repr(exc)})

    def handle(self, kind, rid, payload):
        if kind == T_PING:
            send(R_PONG, rid)
        elif kind == T_HELLO:
            send(R_HELLO, rid, {"version": VERSION, "pid": os.getpid(), "window": WINDOW})
        elif kind == T_EXEC:
            self.start_exec(rid, json.loads(payload))
        elif kind == T_STDIN:
            ex = self.execs.get(rid)
            if ex and ex.stdin_open:
                ex.stdin_buffer += payload
                self.watch_stdin(ex)
        elif kind == T_STDIN_END:
            ex = self.execs.get(rid)
            if ex and ex.stdin_open:
                ex.stdin_ending = True
                self.watch_stdin(ex)
        elif kind == T_ACK:
            (count,) = struct.unpack(">I", payload)
            self.ack(rid, count)
        elif kind == T_CANCEL:
            self.cancel(rid)
        elif kind == T_WRITE_OPEN:
            self.write_open(rid, json.loads(payload)["path"])
        elif kind == T_WRITE_DATA:
            self.write_data(rid, payload)
        elif kind == T_WRITE_END:
            self.write_end(rid)
        elif kind == T_READ:
            self.read_open(rid, json.loads(payload)["path"])
        elif kind == T_STAT:
            self.stat(rid, json.loads(payload)["path"])
        elif kind == T_LIST:
            req = json.loads(payload)
            self.list(rid, req["path"], min(int(req.get("limit") or 10_000), MAX_LIST_ENTRIES))
        elif kind == T_REMOVE:
            self.remove(rid, json.loads(payload)["path"])
        else:
            send(R_ERROR, rid, {"errno": "EPROTO", "message": "unknown frame type %d" % kind})

    # --- processes ------------------------------------------------------------------------------

    def start_exec(self, rid, req):
        argv = req["argv"]
        env = dict(self.base_env)
        env.update(req.get("env") or {})
        # Inherited by every descendant, also those that leave the process group (setsid), so a
        # timeout can find and kill them too.
        marker = secrets.token_hex(8)
        env[EXEC_MARKER] = marker
        stdin_wanted = bool(req.get("stdin"))
        try:
            proc = subprocess.Popen(
                argv,
                cwd=req.get("cwd") or None,
                env=env,
                stdin=subprocess.PIPE if stdin_wanted else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # own session and process group: one killpg ends it all
                close_fds=True,
            )
        except OSError as exc:
            # As a shell would say it: 127 for a missing program, 126 for one that cannot run.
            missing = exc.errno in (errno.ENOENT, errno.ENOTDIR)
            what = argv[0] if not req.get("cwd") or os.path.isdir(req["cwd"]) else req["cwd"]
            send(R_STDERR, rid, ("sandpool-agent: %s: %s\n" % (what, exc.strerror)).encode())
            send(R_EXIT, rid, {"code": 127 if missing else 126, "signal": None})
            return
        try:
            # When the sandbox runs out of memory, the kernel should kill the command, not the agent
            # (which would lose the session). Raising a score needs no privilege; the race with a
            # command that fills the memory within microseconds of its start is accepted.
            with open("/proc/%d/oom_score_adj" % proc.pid, "w") as adj:
                adj.write(COMMAND_OOM_SCORE_ADJ)
        except OSError:
            pass
        ex = Exec(rid, proc, stdin_wanted, marker)
        self.execs[rid] = ex
        for fd in ex.pipes:
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ, ("out", ex))
        if stdin_wanted:
            os.set_blocking(proc.stdin.fileno(), False)

    def watch_stdin(self, ex):
        fd = ex.proc.stdin.fileno()
        try:
            self.selector.register(fd, selectors.EVENT_WRITE, ("stdin", ex))
        except KeyError:
            pass  # already watched

    def write_stdin(self, ex):
        fd = ex.proc.stdin.fileno()
        try:
            while ex.stdin_buffer:
                written = os.write(fd, ex.stdin_buffer[:CHUNK])
                del ex.stdin_buffer[:written]
        except BlockingIOError:
            return
        except OSError:
            ex.stdin_buffer.clear()  # the process stopped reading (EPIPE): drop its input
            ex.stdin_ending = True
        self.selector.unregister(fd)
        if ex.stdin_ending:
            self.close_stdin(ex)

    def close_stdin(self, ex):
        if ex.stdin_open:
            ex.stdin_open = False
            try:
                ex.proc.stdin.close()
            except OSError:
                pass

    def read_output(self, ex, fd):
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close_pipe(ex, fd)
            return
        send(ex.pipes[fd][0], ex.rid, data)
        ex.unacked += len(data)
        if ex.unacked >= WINDOW and not ex.paused:
            ex.paused = True
            for pipe in ex.pipes:
                self.selector.unregister(pipe)

    def close_pipe(self, ex, fd):
        if not ex.paused:
            self.selector.unregister(fd)
        _, pipe = ex.pipes.pop(fd)
        pipe.close()

    def ack(self, rid, count):
        ex = self.execs.get(rid)
        if ex is not None:
            ex.unacked = max(0, ex.unacked - count)
            if ex.paused and ex.unacked < WINDOW:
                ex.paused = False
                for pipe in ex.pipes:
                    self.selector.register(pipe, selectors.EVENT_READ, ("out", ex))
            return
        reader = self.readers.get(rid)
        if reader is not None:
            reader.unacked = max(0, reader.unacked - count)

    def kill_group(self, ex):
        try:
            os.killpg(ex.proc.pid, signal.SIGKILL)
        except OSError:
            pass  # the group is already empty
        kill_marked(ex.marker)

    def cancel(self, rid):
        ex = self.execs.get(rid)
        if ex is not None:
            ex.killed = True
            self.kill_group(ex)
            return
        reader = self.readers.pop(rid, None)
        if reader is not None:
            os.close(reader.fd)
        writer = self.writers.pop(rid, None)
        if writer is not None:
            self.discard_writer(writer)

    def reap(self):
        # waitpid(-1): as the container's pid 1 the agent also inherits every orphan, and reaps
        # it here; its own commands' statuses are recorded on their Popen objects.
        by_pid = {ex.proc.pid: ex for ex in self.execs.values()}
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            ex = by_pid.get(pid)
            if ex is not None and ex.proc.returncode is None:
                ex.proc.returncode = os.waitstatus_to_exitcode(status)
        if self.prestarted is not None and self.prestarted.poll() is not None:
            self.prestarted = None  # exited (and reaped): it restarts on demand
        for ex in list(self.execs.values()):
            code = ex.proc.returncode
            if code is None:
                continue
            if ex.pipes and not ex.killed:
                continue  # pipe semantics: descendants holding stdout/stderr keep the exec running
            if ex.pipes:
                # Killed, and something that left the group still holds the pipes: stop waiting.
                self.kill_group(ex)
                for fd in list(ex.pipes):
                    self.close_pipe(ex, fd)
            if ex.stdin_open:
                try:
                    self.selector.unregister(ex.proc.stdin.fileno())
                except KeyError:
                    pass
                self.close_stdin(ex)
            del self.execs[ex.rid]
            sig = -code if code < 0 else None
            send(R_EXIT, ex.rid, {"code": 128 + sig if sig else code, "signal": sig})

    # --- files ----------------------------------------------------------------------------------

    def write_open(self, rid, path):
        partial = "%s.sandpool-partial-%s" % (path, secrets.token_hex(6))
        try:
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            send(R_ERROR, rid, error_payload(exc))
            return
        self.writers[rid] = [fd, partial, path, 0]

    def write_data(self, rid, data):
        writer = self.writers.get(rid)
        if writer is None:
            return  # it failed already and said so
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(writer[0], view):]
            writer[3] += len(data)
        except OSError as exc:
            del self.writers[rid]
            self.discard_writer(writer)
            send(R_ERROR, rid, error_payload(exc))

    def write_end(self, rid):
        writer = self.writers.pop(rid, None)
        if writer is None:
            return
        fd, partial, path, size = writer
        try:
            os.close(fd)
            # Renamed only once every byte arrived, so a failed upload leaves no half-written file.
            os.replace(partial, path)
        except OSError as exc:
            self.discard_writer([-1, partial, path, size])
            send(R_ERROR, rid, error_payload(exc))
            return
        send(R_OK, rid, {"size": size})

    def discard_writer(self, writer):
        if writer[0] >= 0:
            try:
                os.close(writer[0])
            except OSError:
                pass
        try:
            os.unlink(writer[1])
        except OSError:
            pass

    def read_open(self, rid, path):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.close(fd)
                raise IsADirectoryError(errno.EISDIR, "Is a directory")
        except OSError as exc:
            send(R_ERROR, rid, error_payload(exc))
            return
        self.readers[rid] = Reader(rid, fd)

    def pump_reader(self, reader):
        try:
            data = os.read(reader.fd, CHUNK)
        except BlockingIOError:
            return  # a fifo with no writer yet; try again next round
        except OSError as exc:
            del self.readers[reader.rid]
            os.close(reader.fd)
            send(R_ERROR, reader.rid, error_payload(exc))
            return
        if not data:
            del self.readers[reader.rid]
            os.close(reader.fd)
            send(R_END, reader.rid, {"size": reader.size})
            return
        reader.size += len(data)
        reader.unacked += len(data)
        send(R_DATA, reader.rid, data)

    def stat(self, rid, path):
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            send(R_OK, rid, {"exists": False})
            return
        except OSError as exc:
            send(R_ERROR, rid, error_payload(exc))
            return
        send(R_OK, rid, {"exists": True, "type": file_type(info.st_mode), "size": info.st_size})

    def list(self, rid, path, limit):
        """Entries go in pieces of about LIST_PIECE_BYTES (data frames), then ok {count, more}:
        a large directory never makes a frame over the worker's limit. One entry past `limit`
        is enough to answer `more`."""
        piece, piece_bytes, count = [], 0, 0
        try:
            if not stat.S_ISDIR(os.stat(path).st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory")
            with os.scandir(path) as it:
                for entry in it:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # removed while we listed
                    if count >= limit:
                        self.send_list_piece(rid, piece)
                        send(R_OK, rid, {"count": count, "more": True})
                        return
                    item = [entry.name, file_type(info.st_mode), info.st_size,
                            "%o" % stat.S_IMODE(info.st_mode), info.st_mtime]
                    piece.append(item)
                    count += 1
                    piece_bytes += len(entry.name) * 4 + 64  # a bound on its JSON size
                    if piece_bytes >= LIST_PIECE_BYTES:
                        self.send_list_piece(rid, piece)
                        piece, piece_bytes = [], 0
        except NotADirectoryError as exc:
            # A missing parent and a file as the path differ: only the latter is ENOTDIR here.
            code = exc if os.path.exists(path) else FileNotFoundError(errno.ENOENT, "No such file")
            send(R_ERROR, rid, error_payload(code))
            return
        except OSError as exc:
            send(R_ERROR, rid, error_payload(exc))
            return
        self.send_list_piece(rid, piece)
        send(R_OK, rid, {"count": count, "more": False})

    def send_list_piece(self, rid, piece):
        if piece:
            send(R_DATA, rid, json.dumps(piece, separators=(",", ":")).encode())

    def remove(self, rid, path):
        try:
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode):
                import shutil  # only needed here; keeps the idle agent small

                shutil.rmtree(path)
            else:
                os.unlink(path)
        except NotADirectoryError:
            send(R_ERROR, rid, {"errno": "ENOENT", "message": "No such file or directory"})
            return
        except OSError as exc:
            send(R_ERROR, rid, error_payload(exc))
            return
        send(R_OK, rid, {})


def make_undumpable():
    """PR_SET_DUMPABLE 0: code running as the same uid can no longer open /proc/<agent>/fd/*
    (the agent's channel to the worker), read its memory or ptrace it; only a process with
    CAP_SYS_PTRACE could, and the sandbox has none. Commands the agent starts are dumpable
    again (execve resets it) and never inherit its descriptors (close_fds)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")
    except (OSError, AttributeError) as exc:
        sys.stderr.write("sandpool-agent: cannot make itself non-dumpable: %s\n" % exc)


def main():
    make_undumpable()
    # The worker is our only reader; a broken stdout means it is gone.
    try:
        Agent().run()
    except BrokenPipeError:
        pass


if __name__ == "__main__":
    main()
