#!/usr/bin/env python3
"""sandpool kernel bridge: the code interpreter inside a code-interpreter sandbox.

It keeps code contexts (a real IPython kernel each, driven with jupyter_client, or a persistent
bash) and answers the worker on 127.0.0.1:49999 (E2B's port for its code interpreter) and on a
Unix socket. The worker reaches it through the in-sandbox agent: a call is one of the agent's TCP
tunnels to the port (no process spawned), or, from a worker or agent without tunnels,
`socat - UNIX-CONNECT:<socket>` with the request as stdin and the events as its stdout:

    request  (one JSON object, then a newline or EOF): {"op": "run" | "create_context" | "list_contexts" |
             "restart_context" | "delete_context", ...}
    answer   (JSON lines): {"type": "stdout" | "stderr", "data"}, {"type": "result", <formats>},
             {"type": "error", "name", "value", "traceback"}, and last {"type": "end", ...};
             a control call answers {"type": "ok", ...} or {"type": "failure", "code", "message"}.

The agent starts it at boot when the image sets SANDPOOL_PRESTART, and it starts the default
Python context at once, so the first cell of a session finds a warm kernel. It runs as the
sandbox user, like the code it runs: the worker trusts nothing it says and bounds all of it; the
caps here only keep honest answers small.
"""

import fcntl
import json
import os
import queue
import re
import secrets
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

STATE_DIR = "/tmp/.sandpool"
SOCKET_PATH = STATE_DIR + "/kernel.sock"
LOCK_PATH = STATE_DIR + "/kernel.lock"
# Loopback only: the sandbox has no other interface, and nothing outside it connects but the agent.
TCP_ADDRESS = ("127.0.0.1", 49999)
HOME = os.environ.get("HOME") or "/home/sandboxuser"
MAX_REQUEST_BYTES = 8 * 1024 * 1024
MAX_CONTEXTS = 16
MAX_RESULTS = 100
DEFAULT_OUTPUT_BYTES = 1024 * 1024
DEFAULT_RESULT_BYTES = 4 * 1024 * 1024
# After an interrupt, how long a cell may take to stop before its context is restarted.
INTERRUPT_GRACE_S = 2.0
KERNEL_READY_TIMEOUT_S = 60.0
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")

# Jupyter MIME types -> the result's field (E2B's names); other types go to "extra".
FORMATS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
}
TEXT_FIELDS = ("text", "html", "markdown", "svg", "latex", "javascript")


class Failure(Exception):
    """A control call that cannot be done: answered as {"type": "failure", "code", "message"}."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Emitter:
    """Writes answer lines to one connection, capping stdout, stderr and results per call."""

    def __init__(self, conn, output_bytes, result_bytes, watch_eof=False):
        self.conn = conn
        # Over TCP the worker's going away is its half of the connection closing (POLLRDHUP);
        # socat's request ends with EOF, so there only a full close (POLLHUP) means that.
        self.gone_events = select.POLLHUP | select.POLLERR
        if watch_eof:
            self.gone_events |= getattr(select, "POLLRDHUP", 0x2000)
        self.output_left = {"stdout": output_bytes, "stderr": output_bytes}
        self.result_bytes = result_bytes
        self.results_left = MAX_RESULTS
        self.truncated = False
        self.gone = False

    def send(self, event):
        if self.gone:
            return
        try:
            self.conn.sendall((json.dumps(event, separators=(",", ":")) + "\n").encode())
        except OSError:
            self.gone = True  # the worker went away (client disconnect): the cell is interrupted

    def output(self, name, text):
        data = text.encode("utf-8", "replace")
        left = self.output_left[name]
        if len(data) > left:
            self.truncated = True
            data = data[:left]
        if data:
            self.output_left[name] = left - len(data)
            self.send({"type": name, "data": data.decode("utf-8", "ignore")})

    def result(self, data, is_main, metadata=None):
        if self.results_left <= 0:
            self.truncated = True
            return
        self.results_left -= 1
        result = {"type": "result", "is_main_result": is_main}
        extra = {}
        budget = self.result_bytes
        for mime, value in data.items():
            field = FORMATS.get(mime)
            size = len(value) if isinstance(value, str) else len(json.dumps(value))
            if size > budget:
                # A huge result is never sent whole: text is cut, anything else left out.
                self.truncated = True
                result["truncated"] = True
                if field in TEXT_FIELDS and isinstance(value, str):
                    result[field] = value[:budget]
                    budget = 0
                continue
            budget -= size
            if field is None:
                extra[mime] = value
            else:
                result[field] = value
        if extra:
            result["extra"] = extra
        if metadata:
            width = _find(metadata, "width")
            height = _find(metadata, "height")
            if width or height:
                result.setdefault("extra", {})["metadata"] = {"width": width, "height": height}
        self.send(result)

    def error(self, name, value, traceback, **flags):
        event = {"type": "error", "name": str(name), "value": str(value),
                 "traceback": ANSI.sub("", traceback)}
        event.update(flags)
        self.send(event)

    def client_gone(self):
        """True once the worker closed the connection (its client went away)."""
        if self.gone:
            return True
        poller = select.poll()
        poller.register(self.conn, self.gone_events)
        if poller.poll(0):
            self.gone = True
        return self.gone


def _find(metadata, key):
    for value in metadata.values():
        if isinstance(value, dict) and isinstance(value.get(key), (int, float)):
            return value[key]
    return None


class PythonContext:
    """An IPython kernel (ipykernel) with a blocking client; one cell at a time."""

    language = "python"

    def __init__(self, cid, cwd):
        self.cid = cid
        self.cwd = cwd
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.start_error = None
        self.km = None
        self.kc = None
        self.applied_env = {}

    def start(self):
        try:
            from jupyter_client.manager import KernelManager

            # ipc transport: Unix sockets in the state directory, no TCP port in the sandbox.
            km = KernelManager(kernel_name="python3", transport="ipc",
                               ip="%s/kernel-%s" % (STATE_DIR, self.cid))
            # History in memory: no SQLite file and no saving thread working after every cell.
            km.start_kernel(cwd=self.cwd, env=dict(os.environ),
                            extra_arguments=["--HistoryManager.hist_file=:memory:"])
            self.km = km
            self.connect()
        except Exception as exc:  # reported to every call that wants this context
            self.start_error = "the Python kernel did not start: %r" % (exc,)
        finally:
            self.ready.set()

    def connect(self):
        kc = self.km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=KERNEL_READY_TIMEOUT_S)
        self.kc = kc
        self.applied_env = {}
        # Plain tracebacks (no ANSI colours), read by models as often as by people.
        self.silent("get_ipython().run_line_magic('colors', 'NoColor')")
        # One cell through the whole path (display hook included), so the first real cell is
        # not the one that pays for the first-run imports and caches.
        self.silent("1 + 1", store_history=False)

    def silent(self, code, timeout=10.0, store_history=None):
        # silent=True skips the display hook; the warm-up wants it, without counting the cell.
        quiet = store_history is None
        msg_id = self.kc.execute(code, silent=quiet, store_history=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = self.kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"].get("status") == "ok"
        return False

    def wait_ready(self, timeout):
        if not self.ready.wait(timeout):
            raise Failure("unavailable", "the Python kernel is still starting; retry in a moment")
        if self.start_error:
            raise Failure("unavailable", self.start_error)

    def apply_env(self, env):
        """Sets the session's variables once per kernel (they then persist in os.environ)."""
        wanted = {k: v for k, v in env.items() if self.applied_env.get(k) != v}
        if wanted:
            self.silent("import os as _sp_os; _sp_os.environ.update(%r); del _sp_os" % (wanted,))
            self.applied_env.update(wanted)

    def restart(self):
        try:
            if self.kc is not None:
                self.kc.stop_channels()
        except Exception:
            pass
        self.km.restart_kernel(now=True)
        self.connect()

    def shutdown(self):
        try:
            if self.kc is not None:
                self.kc.stop_channels()
            if self.km is not None:
                self.km.shutdown_kernel(now=True)
        except Exception:
            pass

    def run(self, code, timeout_s, out):
        """Runs one cell; returns (execution_count, restarted)."""
        kc = self.kc
        msg_id = kc.execute(code, silent=False, store_history=True, allow_stdin=False,
                            stop_on_error=True)
        deadline = time.monotonic() + timeout_s
        interrupted_at = None
        timed_out = False
        count = None
        while True:
            now = time.monotonic()
            if interrupted_at is None and (now >= deadline or out.client_gone()):
                timed_out = not out.gone
                interrupted_at = now
                self.km.interrupt_kernel()
            elif interrupted_at is not None and now - interrupted_at > INTERRUPT_GRACE_S:
                # It ignored the interrupt: only a restart gets the context back.
                self.restart()
                out.error("TimeoutError",
                          "The cell ran past its timeout of %d ms and did not stop when "
                          "interrupted, so its context was restarted: its variables are gone."
                          % (timeout_s * 1000), "", timed_out=True, context_restarted=True)
                return count, True
            try:
                msg = kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                if not self.km.is_alive():
                    code_ = exit_status(self.km)
                    self.restart()
                    out.error("KernelDied",
                              "The Python kernel died while running this cell (exit status %s); "
                              "its context was restarted with no variables: run the cells it "
                              "needs again." % (code_,), "", context_restarted=True)
                    return count, True
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            content = msg["content"]
            if kind == "stream":
                out.output("stderr" if content.get("name") == "stderr" else "stdout",
                           content.get("text", ""))
            elif kind == "execute_input":
                count = content.get("execution_count", count)
            elif kind == "execute_result":
                count = content.get("execution_count", count)
                out.result(content.get("data", {}), True, content.get("metadata"))
            elif kind in ("display_data", "update_display_data"):
                out.result(content.get("data", {}), False, content.get("metadata"))
            elif kind == "error":
                if interrupted_at is not None and content.get("ename") == "KeyboardInterrupt":
                    if timed_out:
                        out.error("TimeoutError",
                                  "The cell ran past its timeout of %d ms and was interrupted; "
                                  "the context and its variables are kept."
                                  % (timeout_s * 1000),
                                  "\n".join(content.get("traceback", [])), timed_out=True)
                else:
                    out.error(content.get("ename", "Error"), content.get("evalue", ""),
                              "\n".join(content.get("traceback", [])))
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        self.drain_reply(msg_id)
        return count, False

    def drain_reply(self, msg_id):
        """Takes this cell's execute_reply off the shell channel so the next cell finds its own."""
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            try:
                reply = self.kc.get_shell_msg(timeout=0.2)
            except queue.Empty:
                return
            if reply["parent_header"].get("msg_id") == msg_id:
                return


class BashContext:
    """A persistent bash: variables, functions and the working directory survive between cells."""

    language = "bash"

    def __init__(self, cid, cwd):
        self.cid = cid
        self.cwd = cwd
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.start_error = None
        self.proc = None
        self.count = 0
        self.token = secrets.token_hex(8)

    def start(self):
        try:
            self.proc = subprocess.Popen(
                ["bash", "--noprofile", "--norc"], cwd=self.cwd, env=dict(os.environ),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, close_fds=True)
            for pipe in (self.proc.stdout, self.proc.stderr):
                os.set_blocking(pipe.fileno(), False)
            self.count = 0
        except OSError as exc:
            self.start_error = "bash did not start: %s" % (exc,)
        finally:
            self.ready.set()

    wait_ready = PythonContext.wait_ready

    def apply_env(self, env):
        pass  # given to every cell instead, in run()

    def restart(self):
        self.shutdown()
        self.start()

    def shutdown(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                pipe.close()

    def children(self):
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == self.proc.pid:
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.proc.pid:  # process group of our bash
                    pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
        return pids

    def run(self, code, timeout_s, out, env):
        self.count += 1
        cell = "%s/cell-%s.sh" % (STATE_DIR, self.cid)
        with open(cell, "w") as f:
            f.write(code)
        prefix = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in env.items())
        marker = "\x1e" + self.token
        # Assignments before `source` hold for that cell only; stdin is not the script's pipe.
        command = "%s source %s </dev/null; printf '\\n%s %%d\\n' $?; printf '\\n%s\\n' >&2\n" % (
            prefix, shlex.quote(cell), marker, marker)
        try:
            self.proc.stdin.write(command.encode())
            self.proc.stdin.flush()
        except OSError:
            return self.died(out)
        pending = {"stdout": b"", "stderr": b""}
        done = {"stdout": None, "stderr": None}
        needle = ("\n" + marker).encode()
        deadline = time.monotonic() + timeout_s
        interrupted_at = None
        streams = {self.proc.stdout.fileno(): "stdout", self.proc.stderr.fileno(): "stderr"}
        while done["stdout"] is None or done["stderr"] is None:
            now = time.monotonic()
            if interrupted_at is None and (now >= deadline or out.client_gone()):
                interrupted_at = now
                for pid in self.children():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            elif interrupted_at is not None and now - interrupted_at > INTERRUPT_GRACE_S:
                self.restart()
                out.error("TimeoutError",
                          "The cell ran past its timeout of %d ms and the shell did not stop, so "
                          "its context was restarted: its variables are gone." % (timeout_s * 1000),
                          "", timed_out=True, context_restarted=True)
                return self.count, True
            readable, _, _ = select.select(list(streams), [], [], 0.05)
            if self.proc.poll() is not None and not readable:
                return self.died(out)
            for fd in readable:
                name = streams[fd]
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    return self.died(out)
                if done[name] is not None:
                    continue
                buf = pending[name] + data
                at = buf.find(needle)
                if at >= 0:
                    out.output(name, buf[:at].decode("utf-8", "replace"))
                    done[name] = buf[at + len(needle):].strip()
                    pending[name] = b""
                else:
                    # Hold back only a tail that could be the start of the marker.
                    last = buf.rfind(b"\n")
                    cut = last if last >= 0 and needle.startswith(buf[last:]) else len(buf)
                    if cut > 0:
                        out.output(name, buf[:cut].decode("utf-8", "replace"))
                    pending[name] = buf[cut:]
        status = done["stdout"].decode(errors="replace")
        if interrupted_at is not None:
            out.error("TimeoutError", "The cell ran past its timeout of %d ms; its commands were "
                      "killed and the shell keeps its variables." % (timeout_s * 1000), "",
                      timed_out=True)
        elif status != "0":
            out.error("ExitError", "exit status %s" % status, "")
        return self.count, False

    def died(self, out):
        self.restart()
        out.error("KernelDied", "The shell of this context exited (`exit` ends it); the context "
                  "was restarted with no variables.", "", context_restarted=True)
        return self.count, True


class Bridge:
    def __init__(self):
        self.contexts = {}
        self.defaults = {}
        self.lock = threading.Lock()

    # --- contexts -------------------------------------------------------------------------------

    def create(self, language, cwd, default=False):
        if language not in ("python", "bash"):
            raise Failure("invalid_request", "language must be python or bash")
        cwd = cwd or HOME
        if not os.path.isdir(cwd):
            raise Failure("invalid_path", "cwd %s is not a directory in the sandbox" % cwd)
        with self.lock:
            if default and language in self.defaults:
                return self.contexts[self.defaults[language]]
            if len(self.contexts) >= MAX_CONTEXTS:
                raise Failure("invalid_request", "a session holds at most %d contexts; delete one "
                              "first" % MAX_CONTEXTS)
            cid = "ctx_" + secrets.token_hex(8)
            context = (PythonContext if language == "python" else BashContext)(cid, cwd)
            self.contexts[cid] = context
            if default:
                self.defaults[language] = cid
        threading.Thread(target=context.start, daemon=True).start()
        return context

    def find(self, cid, language):
        if cid:
            with self.lock:
                context = self.contexts.get(cid)
            if context is None:
                raise Failure("context_not_found", "no context %s in this session; list them with "
                              "GET /v1/sessions/{id}/contexts" % cid)
            if language and language != context.language:
                raise Failure("invalid_request", "context %s runs %s, not %s" % (
                    cid, context.language, language))
            return context
        return self.create(language or "python", None, default=True)

    def delete(self, cid):
        with self.lock:
            context = self.contexts.pop(cid, None)
            for language, default in list(self.defaults.items()):
                if default == cid:
                    del self.defaults[language]
        if context is None:
            raise Failure("context_not_found", "no context %s in this session" % cid)
        context.ready.wait(KERNEL_READY_TIMEOUT_S)
        with context.lock:
            context.shutdown()

    def default_ready(self):
        """Whether the default Python kernel is up (the pool's warm-up is complete)."""
        with self.lock:
            context = self.contexts.get(self.defaults.get("python"))
        return bool(context and context.ready.is_set() and not context.start_error)

    @staticmethod
    def view(context):
        return {"context_id": context.cid, "language": context.language, "cwd": context.cwd}

    # --- calls ----------------------------------------------------------------------------------

    def serve(self, conn):
        with conn:
            try:
                request, open_after = read_request(conn)
                op = request.get("op")
                out = Emitter(conn, int(request.get("output_bytes") or DEFAULT_OUTPUT_BYTES),
                              int(request.get("result_bytes") or DEFAULT_RESULT_BYTES),
                              watch_eof=open_after)
                if op == "run":
                    self.run(request, out)
                    return
                if op == "create_context":
                    context = self.create(request.get("language") or "python", request.get("cwd"))
                    answer = self.view(context)
                elif op == "list_contexts":
                    with self.lock:
                        answer = {"contexts": [self.view(c) for c in self.contexts.values()]}
                elif op == "restart_context":
                    context = self.find(request.get("context_id"), None)
                    self.ready(context, KERNEL_READY_TIMEOUT_S)
                    with context.lock:
                        context.restart()
                    answer = self.view(context)
                elif op == "delete_context":
                    self.delete(request.get("context_id"))
                    answer = {}
                elif op == "ping":
                    answer = {"pid": os.getpid(), "ready": self.default_ready()}
                else:
                    raise Failure("invalid_request", "unknown op %r" % (op,))
                answer["type"] = "ok"
                out.send(answer)
            except Failure as failure:
                send_line(conn, {"type": "failure", "code": failure.code,
                                 "message": failure.message})
            except Exception as exc:  # a bug here must not take other contexts down
                send_line(conn, {"type": "failure", "code": "internal", "message": repr(exc)})

    def ready(self, context, timeout):
        """Waits for a context to start; one that failed is dropped, so the next call retries."""
        try:
            context.wait_ready(timeout)
        except Failure:
            if context.start_error:
                with self.lock:
                    if self.contexts.get(context.cid) is context:
                        del self.contexts[context.cid]
                    for language, default in list(self.defaults.items()):
                        if default == context.cid:
                            del self.defaults[language]
            raise

    def run(self, request, out):
        started = time.monotonic()
        timeout_s = max(0.001, float(request.get("timeout_ms") or 60000) / 1000)
        context = self.find(request.get("context_id"), request.get("language"))
        self.ready(context, min(timeout_s, KERNEL_READY_TIMEOUT_S) + 30)
        if not context.lock.acquire(timeout=timeout_s):
            raise Failure("busy", "context %s is still running an earlier cell" % context.cid)
        try:
            env = {k: str(v) for k, v in (request.get("env") or {}).items() if ENV_NAME.match(k)}
            code = str(request.get("code", ""))
            session_env = {k: str(v) for k, v in (request.get("session_env") or {}).items()
                           if ENV_NAME.match(k)}
            if context.language == "python":
                context.apply_env(session_env)
                if env:  # for this cell only
                    context.silent("import os as _sp_os; _sp_saved_env = {k: _sp_os.environ.get(k)"
                                   " for k in %r}; _sp_os.environ.update(%r)" % (list(env), env))
                count, restarted = context.run(code, timeout_s, out)
                if env and not restarted:
                    context.silent("[_sp_os.environ.pop(k, None) if v is None else "
                                   "_sp_os.environ.__setitem__(k, v) for k, v in "
                                   "_sp_saved_env.items()]; del _sp_os, _sp_saved_env")
            else:
                count, restarted = context.run(code, timeout_s, out, {**session_env, **env})
        finally:
            context.lock.release()
        out.send({"type": "end", "execution_count": count, "context_id": context.cid,
                  "language": context.language, "context_restarted": restarted,
                  "truncated": out.truncated,
                  "duration_ms": round((time.monotonic() - started) * 1000, 3)})


def exit_status(km):
    process = getattr(getattr(km, "provisioner", None), "process", None)
    return getattr(process, "returncode", None)


def read_request(conn):
    """The request: one JSON object ended by a newline (the tunnel: the worker keeps its side open,
    so its end later means it went away) or by EOF (socat). Returns it and whether it ended by a
    newline."""
    chunks = []
    size = 0
    while True:
        data = conn.recv(65536)
        if not data:
            by_newline = False
            break
        end = data.find(b"\n")
        if end >= 0:
            chunks.append(data[:end])
            by_newline = True
            break
        size += len(data)
        if size > MAX_REQUEST_BYTES:
            raise Failure("invalid_request", "the request is over %d bytes" % MAX_REQUEST_BYTES)
        chunks.append(data)
    request = json.loads(b"".join(chunks) or b"{}")
    if not isinstance(request, dict):
        raise Failure("invalid_request", "the request must be a JSON object")
    return request, by_newline


def send_line(conn, event):
    try:
        conn.sendall((json.dumps(event) + "\n").encode())
    except OSError:
        pass


def main():
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    os.makedirs(os.environ.get("MPLCONFIGDIR") or STATE_DIR, exist_ok=True)
    # One bridge per sandbox: a second start (a worker retrying) leaves the first in place.
    lock = os.open(LOCK_PATH, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return
    try:
        os.unlink(SOCKET_PATH)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(SOCKET_PATH)
    server.listen(64)
    bridge = Bridge()
    try:
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(TCP_ADDRESS)
        tcp.listen(64)
        threading.Thread(target=accept_forever, args=(tcp, bridge), daemon=True).start()
    except OSError:
        pass  # the port is taken (by the sandbox's own code): the worker falls back to the socket
    bridge.create("python", None, default=True)  # warm before any session asks
    accept_forever(server, bridge)


def accept_forever(server, bridge):
    while True:
        conn, _ = server.accept()
        threading.Thread(target=bridge.serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    # Detach from whoever started us, when asked (the worker's on-demand start).
    if len(sys.argv) > 1 and sys.argv[1] == "--detach":
        if os.fork() > 0:
            os._exit(0)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)  # the starting command's pipes must not wait for us
    main()
