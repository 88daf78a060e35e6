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
        self.background = Background(self.selector, self.base_env)
        self.tunnels = Tunnels(self.selector)

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
                elif kind == "ext":
                    owner()  # a process, PTY or watch of the section below
            for reader in ready_readers:
                if reader.rid in self.readers:
                    self.pump_reader(reader)
            self.reap()
            self.background.reap()
        for ex in list(self.execs.values()):
            self.kill_group(ex)
        self.background.close()

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
        elif 0x30 <= kind <= 0x3F:
            self.background.handle(kind, rid, payload)
        elif 0x40 <= kind <= 0x4F:
            self.tunnels.handle(kind, rid, payload)
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
        # it here; the statuses of its own children (execs, background processes and terminals,
        # the pre-started program) are recorded on their Popen objects, whose poll() would
        # otherwise find them gone and report 0.
        by_pid = {ex.proc.pid: ex.proc for ex in self.execs.values()}
        by_pid.update((p.proc.pid, p.proc) for p in self.background.procs.values())
        if self.prestarted is not None:
            by_pid[self.prestarted.pid] = self.prestarted
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            proc = by_pid.get(pid)
            if proc is not None and proc.returncode is None:
                proc.returncode = os.waitstatus_to_exitcode(status)
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

# --- background processes, PTYs and file watches (issue 12) ------------------------------------
#
# A process started here outlives the request that started it: its output streams to the worker
# (which keeps a bounded tail for any number of readers) within the same WINDOW as an exec's, and
# it takes stdin, signals and PTY resizes until it exits. A watch streams inotify events of a
# directory (tree). Request ids of these requests live as long as the process or the watch.

# worker -> agent
T_PROC_START, T_PROC_STDIN, T_PROC_STDIN_END, T_PROC_SIGNAL, T_PROC_RESIZE, T_PROC_ACK = (
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35)
T_PROC_KILL, T_WATCH_START, T_WATCH_STOP = 0x36, 0x38, 0x39
# agent -> worker
R_PROC_STARTED, R_PROC_STDOUT, R_PROC_STDERR, R_PROC_EXIT, R_BG_ERROR = (
    0xB0, 0xB1, 0xB2, 0xB3, 0xB4)
R_WATCH_READY, R_WATCH_EVENTS, R_WATCH_END = 0xB8, 0xB9, 0xBA

MAX_PROC_STDIN = 4 * 1024 * 1024  # queued stdin a process has not read yet
MAX_WATCH_DIRS = 4096  # directories one recursive watch follows
SIGNALS = {name: getattr(signal, name) for name in (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGCONT",
    "SIGSTOP", "SIGTSTP", "SIGWINCH")}

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x8, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED, IN_ONLYDIR, IN_ISDIR = 0x4000, 0x8000, 0x01000000, 0x40000000
WATCH_MASK = (IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
              | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
INOTIFY_EVENT = struct.Struct("iIII")


class BgProcess:
    """A background process on pipes or on a pseudo-terminal (then one fd carries both ways)."""

    def __init__(self, rid, proc, marker, outputs, stdin_fd, pty_fd):
        self.rid = rid
        self.proc = proc
        self.marker = marker
        self.outputs = outputs  # fd -> (frame type, closer)
        self.stdin_fd = stdin_fd
        self.pty_fd = pty_fd
        self.stdin_buffer = bytearray()
        self.stdin_ending = False
        self.unacked = 0
        self.killed = False
        self.exited = False


class Watch:
    def __init__(self, rid, fd, root, recursive):
        self.rid = rid
        self.fd = fd
        self.root = root
        self.recursive = recursive
        self.dirs = {}  # watch descriptor -> path relative to the root ("" for the root)
        self.unacked = 0


class Background:
    """The process table and watches, driven by the Agent's selector loop."""

    def __init__(self, selector, base_env):
        self.selector = selector
        self.base_env = base_env
        self.procs = {}
        self.watches = {}
        self.libc = None

    def handle(self, kind, rid, payload):
        if kind == T_PROC_START:
            self.start(rid, json.loads(payload))
            return
        if kind == T_WATCH_START:
            self.watch_start(rid, json.loads(payload))
            return
        if kind == T_WATCH_STOP:
            self.watch_close(rid)
            return
        if kind == T_PROC_ACK and rid in self.watches:
            w = self.watches[rid]
            w.unacked = max(0, w.unacked - struct.unpack(">I", payload)[0])
            self.update_watch(w)
            return
        p = self.procs.get(rid)
        if p is None:
            return  # it ended meanwhile
        if kind == T_PROC_STDIN:
            if p.stdin_fd is not None and not p.stdin_ending:
                if len(p.stdin_buffer) + len(payload) > MAX_PROC_STDIN:
                    send(R_BG_ERROR, rid, {"errno": "ENOBUFS",
                                           "message": "the process does not read its stdin"})
                    return
                p.stdin_buffer += payload
                self.update(p)
        elif kind == T_PROC_STDIN_END:
            if p.pty_fd is not None:
                p.stdin_buffer += b"\x04"  # a terminal's end of input is ^D
            elif p.stdin_fd is not None:
                p.stdin_ending = True
            self.update(p)
        elif kind == T_PROC_SIGNAL:
            name = json.loads(payload).get("signal")
            if name in SIGNALS:
                try:
                    os.killpg(p.proc.pid, SIGNALS[name])
                except OSError:
                    pass
        elif kind == T_PROC_RESIZE:
            if p.pty_fd is not None:
                size = json.loads(payload)
                set_winsize(p.pty_fd, size["cols"], size["rows"])
        elif kind == T_PROC_ACK:
            p.unacked = max(0, p.unacked - struct.unpack(">I", payload)[0])
            self.update(p)
        elif kind == T_PROC_KILL:
            p.killed = True
            kill_group_of(p.proc.pid, p.marker)

    # --- processes ----------------------------------------------------------------------------

    def start(self, rid, req):
        argv = req["argv"]
        env = dict(self.base_env)
        env.update(req.get("env") or {})
        marker = secrets.token_hex(8)
        env[EXEC_MARKER] = marker
        pty = req.get("pty")
        master = slave = None
        try:
            if pty:
                import fcntl
                import termios

                if "TERM" not in (req.get("env") or {}):
                    env["TERM"] = "xterm-256color"
                master, slave = os.openpty()
                set_winsize(master, pty["cols"], pty["rows"])

                def controlling_tty():
                    fcntl.ioctl(0, termios.TIOCSCTTY, 0)

                proc = subprocess.Popen(
                    argv, cwd=req.get("cwd") or None, env=env, stdin=slave, stdout=slave,
                    stderr=slave, start_new_session=True, close_fds=True,
                    preexec_fn=controlling_tty)
                os.close(slave)
                slave = None
            else:
                proc = subprocess.Popen(
                    argv, cwd=req.get("cwd") or None, env=env,
                    stdin=subprocess.PIPE if req.get("stdin") else subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    start_new_session=True, close_fds=True)
        except (OSError, subprocess.SubprocessError) as exc:
            for fd in (master, slave):
                if fd is not None:
                    os.close(fd)
            send(R_BG_ERROR, rid, error_payload(exc))
            return
        try:
            with open("/proc/%d/oom_score_adj" % proc.pid, "w") as adj:
                adj.write(COMMAND_OOM_SCORE_ADJ)
        except OSError:
            pass
        if pty:
            os.set_blocking(master, False)
            p = BgProcess(rid, proc, marker, {master: (R_PROC_STDOUT, lambda: os.close(master))},
                          master, master)
        else:
            outputs = {proc.stdout.fileno(): (R_PROC_STDOUT, proc.stdout.close),
                       proc.stderr.fileno(): (R_PROC_STDERR, proc.stderr.close)}
            stdin_fd = proc.stdin.fileno() if proc.stdin else None
            for fd in list(outputs) + ([stdin_fd] if stdin_fd is not None else []):
                os.set_blocking(fd, False)
            p = BgProcess(rid, proc, marker, outputs, stdin_fd, None)
        self.procs[rid] = p
        send(R_PROC_STARTED, rid, {"pid": proc.pid})
        self.update(p)

    def update(self, p):
        """(Re)registers the process's descriptors for what it waits for now."""
        for fd in set(p.outputs) | ({p.stdin_fd} if p.stdin_fd is not None else set()):
            events = 0
            if fd in p.outputs and p.unacked < WINDOW:
                events |= selectors.EVENT_READ
            if fd == p.stdin_fd and (p.stdin_buffer or p.stdin_ending):
                events |= selectors.EVENT_WRITE
            set_interest(self.selector, fd, events, lambda p=p, fd=fd: self.ready(p, fd))

    def ready(self, p, fd):
        if fd == p.stdin_fd and (p.stdin_buffer or p.stdin_ending):
            self.flush_stdin(p)
        if fd in p.outputs and p.unacked < WINDOW:
            self.read_output(p, fd)
        if p.rid in self.procs:
            self.update(p)

    def flush_stdin(self, p):
        try:
            while p.stdin_buffer:
                del p.stdin_buffer[:os.write(p.stdin_fd, p.stdin_buffer[:CHUNK])]
        except BlockingIOError:
            return
        except OSError:
            p.stdin_buffer.clear()  # nobody reads it any more
            if p.pty_fd is None:
                p.stdin_ending = True
        if p.stdin_ending and p.pty_fd is None:
            self.close_stdin(p)

    def close_stdin(self, p):
        if p.stdin_fd is None:
            return
        set_interest(self.selector, p.stdin_fd, 0, None)
        p.stdin_fd = None
        p.stdin_ending = False
        try:
            p.proc.stdin.close()
        except OSError:
            pass

    def read_output(self, p, fd):
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: every holder of the terminal closed it
        if not data:
            self.close_output(p, fd)
            return
        send(p.outputs[fd][0], p.rid, data)
        p.unacked += len(data)

    def close_output(self, p, fd):
        set_interest(self.selector, fd, 0, None)
        if fd == p.stdin_fd:
            p.stdin_fd = None
        _, closer = p.outputs.pop(fd)
        try:
            closer()
        except OSError:
            pass

    def reap(self):
        for p in list(self.procs.values()):
            code = p.proc.poll()
            if code is None:
                continue
            if p.pty_fd is not None and p.pty_fd in p.outputs and not p.killed:
                # The terminal's leader exited: send what it left (as the window allows), then
                # close the terminal, which hangs up whatever else still holds it.
                if p.unacked >= WINDOW:
                    continue
                while p.pty_fd in p.outputs and p.unacked < WINDOW:
                    before = p.unacked
                    self.read_output(p, p.pty_fd)
                    if p.unacked == before:
                        break
                if p.unacked >= WINDOW:
                    continue
            elif p.outputs and not p.killed:
                continue  # pipe semantics, as for an exec
            if p.outputs:
                if p.killed:
                    kill_group_of(p.proc.pid, p.marker)
                for fd in list(p.outputs):
                    self.close_output(p, fd)
            self.close_stdin(p)
            del self.procs[p.rid]
            sig = -code if code < 0 else None
            send(R_PROC_EXIT, p.rid, {"code": 128 + sig if sig else code, "signal": sig})

    # --- watches ------------------------------------------------------------------------------

    def watch_start(self, rid, req):
        root = req["path"]
        try:
            if self.libc is None:
                import ctypes

                self.libc = ctypes.CDLL(None, use_errno=True)
            fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                import ctypes

                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            w = Watch(rid, fd, root, bool(req.get("recursive")))
            try:
                self.add_dir(w, "", must=True)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            send(R_BG_ERROR, rid, error_payload(exc))
            return
        self.watches[rid] = w
        send(R_WATCH_READY, rid, {})
        self.update_watch(w)

    def add_dir(self, w, rel, must=False):
        if not must and len(w.dirs) >= MAX_WATCH_DIRS:
            return
        import ctypes

        path = os.path.join(w.root, rel) if rel else w.root
        wd = self.libc.inotify_add_watch(w.fd, path.encode(), WATCH_MASK)
        if wd < 0:
            err = ctypes.get_errno()
            if must:
                raise OSError(err, os.strerror(err))
            return
        w.dirs[wd] = rel
        if w.recursive:
            try:
                with os.scandir(path) as it:
                    subdirs = [e.name for e in it if e.is_dir(follow_symlinks=False)]
            except OSError:
                return
            for name in subdirs:
                self.add_dir(w, os.path.join(rel, name) if rel else name)

    def update_watch(self, w):
        events = selectors.EVENT_READ if w.unacked < WINDOW else 0
        set_interest(self.selector, w.fd, events, lambda: self.read_watch(w))

    def read_watch(self, w):
        try:
            data = os.read(w.fd, 64 * 1024)
        except BlockingIOError:
            return
        except OSError as exc:
            self.watch_end(w, "error: %s" % exc.strerror)
            return
        events, ended, offset = [], None, 0
        while offset + INOTIFY_EVENT.size <= len(data):
            wd, mask, _cookie, length = INOTIFY_EVENT.unpack_from(data, offset)
            raw = data[offset + INOTIFY_EVENT.size:offset + INOTIFY_EVENT.size + length]
            offset += INOTIFY_EVENT.size + length
            name = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            if mask & IN_Q_OVERFLOW:
                events.append(["overflow", "", False])
                continue
            rel = w.dirs.get(wd)
            if rel is None:
                continue
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                if rel == "":
                    ended = "removed" if mask & IN_DELETE_SELF else "moved"
                continue
            if mask & IN_IGNORED:
                del w.dirs[wd]
                continue
            is_dir = bool(mask & IN_ISDIR)
            full = os.path.join(rel, name) if rel else name
            if mask & IN_CREATE or mask & IN_MOVED_TO:
                kind = "create"
                if is_dir and w.recursive:
                    self.add_dir(w, full)
            elif mask & IN_MODIFY:
                kind = "write"
            elif mask & IN_DELETE:
                kind = "remove"
            elif mask & IN_MOVED_FROM:
                kind = "rename"
            elif mask & IN_ATTRIB:
                kind = "chmod"
            else:
                continue
            event = [kind, full.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                     is_dir]
            if kind == "write" and events and events[-1] == event:
                continue  # one write of many chunks is one event
            events.append(event)
        if events:
            payload = json.dumps({"events": events}, separators=(",", ":")).encode()
            send(R_WATCH_EVENTS, w.rid, payload)
            w.unacked += len(payload)
        if ended is not None:
            self.watch_end(w, ended)
            return
        self.update_watch(w)

    def watch_end(self, w, reason):
        self.watch_close(w.rid)
        send(R_WATCH_END, w.rid, {"reason": reason})

    def watch_close(self, rid):
        w = self.watches.pop(rid, None)
        if w is not None:
            set_interest(self.selector, w.fd, 0, None)
            os.close(w.fd)

    def close(self):
        for p in list(self.procs.values()):
            kill_group_of(p.proc.pid, p.marker)
        for rid in list(self.watches):
            self.watch_close(rid)


# --- tunnels (preview URLs) ---------------------------------------------------------------------
#
# A tunnel is one TCP connection from the agent to 127.0.0.1:{port} inside the sandbox, whose
# bytes are relayed both ways over the protocol stream: the sandbox needs no network for the
# worker to reach a server in it. No child process: the socket lives in the agent's own loop.
# Flow control both ways: at most WINDOW bytes read from the socket are unacknowledged by the
# worker (T_TUNNEL_ACK), and the agent acknowledges the worker's data once written to the socket
# (R_TUNNEL_ACK), so neither side buffers more than a window per tunnel.

# worker -> agent
T_TUNNEL_OPEN, T_TUNNEL_DATA, T_TUNNEL_END, T_TUNNEL_ACK, T_TUNNEL_CLOSE = (
    0x40, 0x41, 0x42, 0x43, 0x44)
# agent -> worker
R_TUNNEL_OPENED, R_TUNNEL_DATA, R_TUNNEL_END, R_TUNNEL_CLOSED, R_TUNNEL_ERROR, R_TUNNEL_ACK = (
    0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5)

MAX_TUNNELS = 1024  # the worker allows far fewer per session
MAX_TUNNEL_BUFFER = 2 * WINDOW  # the worker's data not yet written to the socket


class Tunnel:
    def __init__(self, rid, sock, port):
        self.rid = rid
        self.sock = sock
        self.port = port
        self.connecting = True
        self.tried_v6 = False
        self.out = bytearray()  # from the worker, not yet written to the socket
        self.out_ending = False  # the worker half-closed: shut the write side once `out` is sent
        self.write_shut = False
        self.read_eof = False
        self.unacked = 0


class Tunnels:
    """TCP connections inside the sandbox, driven by the Agent's selector loop."""

    def __init__(self, selector):
        self.selector = selector
        self.open = {}
        self.socket = None  # the module, imported on first use (idle memory)

    def handle(self, kind, rid, payload):
        if kind == T_TUNNEL_OPEN:
            self.start(rid, json.loads(payload))
            return
        t = self.open.get(rid)
        if t is None:
            return  # closed meanwhile
        if kind == T_TUNNEL_DATA:
            if t.out_ending or len(t.out) + len(payload) > MAX_TUNNEL_BUFFER:
                self.fail(t, {"errno": "ENOBUFS", "message": "data beyond the tunnel's window"})
                return
            t.out += payload
        elif kind == T_TUNNEL_END:
            t.out_ending = True
        elif kind == T_TUNNEL_ACK:
            t.unacked = max(0, t.unacked - struct.unpack(">I", payload)[0])
        elif kind == T_TUNNEL_CLOSE:
            self.finish(t)
            return
        if not t.connecting:
            self.flush(t)
        if t.rid in self.open:
            self.update(t)

    def start(self, rid, req):
        port = req.get("port")
        if not isinstance(port, int) or not 0 < port < 65536:
            send(R_TUNNEL_ERROR, rid, {"errno": "EINVAL", "message": "port must be 1-65535"})
            return
        if len(self.open) >= MAX_TUNNELS:
            send(R_TUNNEL_ERROR, rid, {"errno": "EMFILE", "message": "too many tunnels"})
            return
        if self.socket is None:
            import socket

            self.socket = socket
        t = Tunnel(rid, None, port)
        self.open[rid] = t
        self.connect(t, self.socket.AF_INET, "127.0.0.1")

    def connect(self, t, family, address):
        """Starts a non-blocking connect; the socket turns writable when it is decided."""
        if t.sock is not None:
            set_interest(self.selector, t.sock.fileno(), 0, None)
            t.sock.close()
            t.sock = None
        try:
            t.sock = self.socket.socket(family, self.socket.SOCK_STREAM)
        except OSError as exc:
            self.fail(t, error_payload(exc))
            return
        t.sock.setblocking(False)
        code = t.sock.connect_ex((address, t.port))
        if code not in (0, errno.EINPROGRESS, errno.EAGAIN):
            self.connected(t, code)
            return
        t.connecting = True
        self.update(t)

    def connected(self, t, code):
        if code == errno.ECONNREFUSED and not t.tried_v6:
            # Nothing on 127.0.0.1: a server bound to ::1 only (`localhost` resolved to IPv6)?
            t.tried_v6 = True
            self.connect(t, self.socket.AF_INET6, "::1")
            return
        if code != 0:
            if t.tried_v6 and code in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.ENETUNREACH):
                code = errno.ECONNREFUSED  # no IPv6 loopback: the IPv4 answer stands
            self.fail(t, {"errno": errno.errorcode.get(code, "EIO"), "message": os.strerror(code)})
            return
        t.connecting = False
        try:
            t.sock.setsockopt(self.socket.IPPROTO_TCP, self.socket.TCP_NODELAY, 1)
        except OSError:
            pass
        send(R_TUNNEL_OPENED, t.rid, {})
        self.flush(t)
        if t.rid in self.open:
            self.update(t)

    def update(self, t):
        events = 0
        if t.connecting or t.out or (t.out_ending and not t.write_shut):
            events |= selectors.EVENT_WRITE
        if not t.connecting and not t.read_eof and t.unacked < WINDOW:
            events |= selectors.EVENT_READ
        set_interest(self.selector, t.sock.fileno(), events, lambda t=t: self.ready(t))

    def ready(self, t):
        if t.connecting:
            self.connected(t, t.sock.getsockopt(self.socket.SOL_SOCKET, self.socket.SO_ERROR))
            return
        self.flush(t)
        if t.rid in self.open and not t.read_eof and t.unacked < WINDOW:
            self.pump(t)
        if t.rid in self.open:
            self.update(t)

    def flush(self, t):
        written = 0
        try:
            while t.out:
                n = t.sock.send(t.out[:CHUNK])
                del t.out[:n]
                written += n
            if t.out_ending and not t.write_shut:
                t.sock.shutdown(self.socket.SHUT_WR)
                t.write_shut = True
        except BlockingIOError:
            pass
        except OSError as exc:
            self.fail(t, error_payload(exc))
            return
        if written:
            send(R_TUNNEL_ACK, t.rid, struct.pack(">I", written))
        self.maybe_done(t)

    def pump(self, t):
        try:
            data = t.sock.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            self.fail(t, error_payload(exc))
            return
        if not data:
            t.read_eof = True
            send(R_TUNNEL_END, t.rid)
            self.maybe_done(t)
            return
        send(R_TUNNEL_DATA, t.rid, data)
        t.unacked += len(data)

    def maybe_done(self, t):
        if t.read_eof and t.write_shut and t.rid in self.open:
            self.finish(t)

    def fail(self, t, error):
        if t.rid in self.open:
            send(R_TUNNEL_ERROR, t.rid, error)
            self.finish(t, report=False)

    def finish(self, t, report=True):
        """Closes the socket and forgets the tunnel; `closed` is its last frame."""
        if self.open.pop(t.rid, None) is None:
            return
        if t.sock is not None:
            set_interest(self.selector, t.sock.fileno(), 0, None)
            t.sock.close()
        if report:
            send(R_TUNNEL_CLOSED, t.rid)

    def close(self):
        for t in list(self.open.values()):
            self.finish(t, report=False)


def set_interest(selector, fd, events, callback):
    """Registers, modifies or unregisters fd so that the selector watches exactly `events`."""
    try:
        key = selector.get_key(fd)
    except KeyError:
        key = None
    if not events:
        if key is not None:
            selector.unregister(fd)
    elif key is None:
        selector.register(fd, events, ("ext", callback))
    elif key.events != events:
        selector.modify(fd, events, ("ext", callback))


def set_winsize(fd, cols, rows):
    import fcntl
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(rows), int(cols), 0, 0))


def kill_group_of(pid, marker):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    kill_marked(marker)


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
