#!/usr/bin/env python3
"""sandpool client for Python: the standard library only (Python 3.8+).

Runs commands and moves files in sandpool sandboxes: pre-warmed, hardened containers for
AI agents (for example LangGraph agents written in Python). It keeps the names of the
Sandbox System V2 client, so code written for it works unchanged:

    from sandpool_client import SandboxClient, BatchSandboxClient

    with SandboxClient() as sandbox:              # SANDPOOL_URL, SANDPOOL_API_KEY
        sandbox.upload_file("local_script.py")
        result = sandbox.execute("python3 local_script.py")
        print(result["stdout"], result["exit_code"])

    results = BatchSandboxClient().execute_batch(["python3 --version", "whoami"])

Self-test against a running worker or coordinator, and one command in a throwaway sandbox:

    python3 sandpool_client.py --test [--url http://127.0.0.1:5000] [--api-key KEY]
    python3 sandpool_client.py -- python3 -c "print(6 * 7)"
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = [
    "DEFAULT_URL",
    "SandpoolError",
    "SandboxClient",
    "BatchSandboxClient",
]

DEFAULT_URL = "http://127.0.0.1:5000"
#: Seconds a control call (create, info, keep-alive, close) may take.
REQUEST_TIMEOUT_S = 30.0
#: Seconds `SandboxClient` keeps retrying while the server has no capacity (503).
CREATE_TIMEOUT_S = 30.0
#: Added to a command's own timeout for the HTTP call that runs it.
EXEC_GRACE_S = 30.0
_CHUNK = 64 * 1024


class SandpoolError(Exception):
    """A failure sandpool reported, or no answer at all.

    ``code`` is the API's error code (``session_not_found``, ``file_not_found``,
    ``capacity_exhausted``, ...) or ``connection_failed`` when no server answered;
    ``status`` is the HTTP status (``None`` without an answer).
    """

    def __init__(self, code, message, status=None, retry_after_s=None):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s


class _Transport:
    """HTTP to one sandpool server: JSON in, JSON or streams out, errors as SandpoolError."""

    def __init__(self, url=None, api_key=None):
        self.url = (url or os.environ.get("SANDPOOL_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("SANDPOOL_API_KEY")

    def open(self, method, path, query=None, json_body=None, data=None, headers=None,
             timeout=REQUEST_TIMEOUT_S):
        """Sends a request and returns the open response (the caller reads and closes it)."""
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        all_headers = dict(headers or {})
        if self.api_key:
            all_headers["Authorization"] = "Bearer " + self.api_key
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            raise _api_error(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise SandpoolError(
                "connection_failed",
                "no answer from %s (%s); is a sandpool worker running? Start one with "
                "`npx sandpool serve`, or set SANDPOOL_URL" % (self.url, reason),
            ) from None

    def json(self, method, path, **kwargs):
        """Sends a request and returns its JSON answer (``None`` for an empty one)."""
        with self.open(method, path, **kwargs) as response:
            body = response.read()
        return json.loads(body.decode("utf-8")) if body else None


def _api_error(error):
    """The API's ``{"error": {"code", "message"}}`` answer as a SandpoolError."""
    status = error.code
    retry_after = error.headers.get("Retry-After") if error.headers else None
    try:
        body = json.loads(error.read().decode("utf-8"))
        code, message = body["error"]["code"], body["error"]["message"]
    except Exception:  # not the API's shape (a proxy's page, say)
        code, message = "http_error", "HTTP %s %s" % (status, error.reason)
    finally:
        error.close()
    try:
        retry_after_s = float(retry_after) if retry_after is not None else None
    except ValueError:
        retry_after_s = None
    return SandpoolError(code, message, status=status, retry_after_s=retry_after_s)


def _exec_body(command, timeout_ms=None, cwd=None, env=None, stdin=None):
    body = {"argv": list(command)} if isinstance(command, (list, tuple)) else {"command": command}
    for key, value in (("timeout_ms", timeout_ms), ("cwd", cwd), ("env", env), ("stdin", stdin)):
        if value is not None:
            body[key] = value
    return body


def _exec_timeout(timeout_ms):
    # The server enforces the command's timeout; the socket only guards against a dead server.
    return (timeout_ms / 1000.0 if timeout_ms else 3600.0) + EXEC_GRACE_S


def _checked_port(port):
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError("port must be an integer from 1 to 65535, not %r" % (port,))
    return port


class SandboxClient:
    """One sandbox session: a fresh, hardened container where commands run as ``sandboxuser``.

    Use it as a context manager (the session is closed, its container destroyed, at the
    end of the block) or call ``close()``. ``session_id`` attaches to an existing session
    instead of creating one; that session is then left open by ``close()`` unless
    ``close_on_exit=True``.

    :param url: server URL; default ``SANDPOOL_URL`` or http://127.0.0.1:5000
    :param api_key: API key; default ``SANDPOOL_API_KEY``
    :param ttl_seconds: session lifetime; default the server's (1 hour)
    :param env: environment variables every command of the session sees
    :param metadata: labels kept with the session
    :param create_timeout_s: how long to retry while the server has no capacity
    :param template: template of the session (``GET /v1/templates``); default ``base``
    """

    def __init__(self, url=None, api_key=None, ttl_seconds=None, env=None, metadata=None,
                 session_id=None, close_on_exit=None, create_timeout_s=CREATE_TIMEOUT_S,
                 template=None):
        self._transport = _Transport(url, api_key)
        self._options = {"template": template, "ttl_seconds": ttl_seconds, "env": env,
                         "metadata": metadata}
        self._create_timeout_s = create_timeout_s
        self._owned = session_id is None if close_on_exit is None else close_on_exit
        self.session_id = session_id
        self.session = None
        self._closed = False
        if session_id is not None:
            self.session = self._transport.json("GET", "/v1/sessions/" + self._quoted())

    @property
    def url(self):
        """The server's base URL."""
        return self._transport.url

    # -- lifecycle ---------------------------------------------------------------------

    def create_session(self):
        """Opens the session now (the first call opens it otherwise). Returns its description.

        While the server answers ``capacity_exhausted`` it retries with backoff (honouring
        ``Retry-After``) for up to ``create_timeout_s`` seconds.
        """
        if self._closed:
            raise SandpoolError("session_not_found", "this SandboxClient was closed")
        if self.session_id is not None:
            return self.session
        body = {k: v for k, v in self._options.items() if v is not None}
        deadline = time.monotonic() + self._create_timeout_s
        attempt = 0
        while True:
            try:
                self.session = self._transport.json("POST", "/v1/sessions", json_body=body)
                self.session_id = self.session["session_id"]
                return self.session
            except SandpoolError as error:
                remaining = deadline - time.monotonic()
                if error.code != "capacity_exhausted" or remaining <= 0:
                    raise
                backoff = min(5.0, 0.2 * (2 ** attempt)) * (0.5 + random.random() / 2)
                time.sleep(min(remaining, max(backoff, error.retry_after_s or 0)))
                attempt += 1

    def close(self):
        """Ends the session (its container is destroyed). Safe to call twice."""
        self._closed = True
        if self.session_id is None or not self._owned:
            self.session_id = None
            return
        session_id, self.session_id = self.session_id, None
        try:
            self._transport.json("DELETE", "/v1/sessions/" + urllib.parse.quote(session_id, safe=""))
        except SandpoolError as error:
            if error.code not in ("session_not_found", "session_lost"):
                self.session_id = session_id
                raise

    def __enter__(self):
        self.create_session()
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def info(self):
        """The session as the server sees it (``expires_at``, ``metadata``...)."""
        return self._transport.json("GET", self._path(""))

    def keepalive(self, ttl_seconds=3600):
        """Extends the session's life to ``ttl_seconds`` from now; returns the session."""
        return self._transport.json("POST", self._path("/keepalive"),
                                    json_body={"ttl_seconds": ttl_seconds})

    # -- commands ----------------------------------------------------------------------

    def execute(self, command, timeout_ms=None, cwd=None, env=None, stdin=None):
        """Runs a command and waits for it.

        A string runs through ``/bin/sh -c``; a list runs as argv, with no shell. Returns a
        dict with ``stdout``, ``stderr``, ``exit_code``, ``duration_ms``, ``timed_out`` and
        ``truncated``. A non-zero exit code is a result, not an exception.
        """
        return self._transport.json(
            "POST", self._path("/exec"),
            json_body=_exec_body(command, timeout_ms, cwd, env, stdin),
            timeout=_exec_timeout(timeout_ms),
        )

    def execute_stream(self, command, timeout_ms=None, cwd=None, env=None, stdin=None):
        """Runs a command and yields its events as they arrive (NDJSON):

        ``{"type": "stdout", "data": ...}``, ``{"type": "stderr", "data": ...}``, and last
        ``{"type": "exit", "exit_code": ..., "duration_ms": ..., "timed_out": ...,
        "truncated": ...}``. A failure the server reports mid-stream raises SandpoolError.
        """
        response = self._transport.open(
            "POST", self._path("/exec"),
            json_body=_exec_body(command, timeout_ms, cwd, env, stdin),
            headers={"Accept": "application/x-ndjson"},
            timeout=_exec_timeout(timeout_ms),
        )
        with response:
            exited = False
            for raw in response:
                line = raw.strip()
                if not line:
                    continue
                event = json.loads(line.decode("utf-8"))
                if event.get("type") == "error":
                    error = event.get("error") or {}
                    raise SandpoolError(error.get("code", "runtime_unavailable"),
                                        error.get("message", "the command failed"))
                yield event
                if event.get("type") == "exit":
                    exited = True
            if not exited:
                raise SandpoolError("connection_failed", "the stream ended before the exit event")

    # -- code interpreter ----------------------------------------------------------------

    def run_code(self, code, language=None, context_id=None, timeout_ms=None, env=None,
                 on_stdout=None, on_stderr=None, on_result=None):
        """Runs a code cell in the session's code interpreter (a persistent IPython kernel, or
        bash) and returns what it produced, as the API answers it:

        ``{"results": [{"text", "html", "png", ..., "is_main_result"}], "stdout", "stderr",
        "error": {"name", "value", "traceback", ...} or absent, "execution_count",
        "duration_ms", "context_id", "truncated"}``. Variables persist between calls in the same
        context. With a callback the call streams (NDJSON) and the callbacks see each output as
        it happens. Needs a session on the code-interpreter template.
        """
        body = {"code": code}
        for key, value in (("language", language), ("context_id", context_id),
                           ("timeout_ms", timeout_ms), ("env", env)):
            if value is not None:
                body[key] = value
        if on_stdout is None and on_stderr is None and on_result is None:
            return self._transport.json("POST", self._path("/code"), json_body=body,
                                        timeout=_exec_timeout(timeout_ms))
        execution = {"results": [], "stdout": "", "stderr": ""}
        response = self._transport.open(
            "POST", self._path("/code"), json_body=body,
            headers={"Accept": "application/x-ndjson"}, timeout=_exec_timeout(timeout_ms))
        with response:
            for raw in response:
                line = raw.strip()
                if not line:
                    continue
                event = json.loads(line.decode("utf-8"))
                kind = event.pop("type", None)
                if kind == "error" and "error" in event:
                    error = event["error"] or {}
                    raise SandpoolError(error.get("code", "runtime_unavailable"),
                                        error.get("message", "the cell failed"))
                if kind in ("stdout", "stderr"):
                    execution[kind] += event.get("data", "")
                    callback = on_stdout if kind == "stdout" else on_stderr
                    if callback is not None:
                        callback(event.get("data", ""))
                elif kind == "result":
                    execution["results"].append(event)
                    if on_result is not None:
                        on_result(event)
                elif kind == "error":
                    execution["error"] = event
                elif kind == "end":
                    execution.update(event)
                    return execution
        raise SandpoolError("connection_failed", "the stream ended before the end event")

    def create_code_context(self, language="python", cwd=None):
        """Creates a code context (its own kernel); returns ``{"context_id", "language", "cwd"}``."""
        body = {"language": language}
        if cwd is not None:
            body["cwd"] = cwd
        return self._transport.json("POST", self._path("/contexts"), json_body=body)

    def list_code_contexts(self):
        """The session's code contexts."""
        return self._transport.json("GET", self._path("/contexts"))["contexts"]

    def restart_code_context(self, context_id):
        """Restarts a context: a fresh kernel, its variables gone."""
        return self._transport.json(
            "POST", self._path("/contexts/" + urllib.parse.quote(context_id, safe="") + "/restart"))

    def remove_code_context(self, context_id):
        """Deletes a context and its kernel."""
        self._transport.json(
            "DELETE", self._path("/contexts/" + urllib.parse.quote(context_id, safe="")))

    # -- files -------------------------------------------------------------------------

    def upload_file(self, local_path, remote_path=None):
        """Uploads a local file, streamed; default destination its name, in the home.

        Returns ``{"path": <absolute path in the sandbox>, "size": <bytes>}``.
        """
        remote = remote_path or os.path.basename(local_path)
        size = os.path.getsize(local_path)
        with open(local_path, "rb") as source:
            return self._transport.json(
                "PUT", self._path("/files"), query={"path": remote}, data=source,
                headers={"Content-Type": "application/octet-stream",
                         "Content-Length": str(size)},
                timeout=None,
            )

    def write_file(self, remote_path, content):
        """Writes ``content`` (str as UTF-8, or bytes) to a file; parents are created."""
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        return self._transport.json(
            "PUT", self._path("/files"), query={"path": remote_path}, data=data,
            headers={"Content-Type": "application/octet-stream"}, timeout=None,
        )

    def read_file(self, remote_path):
        """A file's bytes (whole, in memory; use ``download_file`` for big files)."""
        with self._transport.open("GET", self._path("/files"), query={"path": remote_path},
                                  timeout=None) as response:
            return response.read()

    def download_file(self, remote_path, local_path=None):
        """Downloads a file to ``local_path`` (default its name, here), streamed to disk.

        The file appears whole or not at all. Returns ``{"path", "size"}``.
        """
        target = local_path or os.path.basename(remote_path)
        directory = os.path.dirname(os.path.abspath(target))
        handle, partial = tempfile.mkstemp(prefix=".sandpool-", suffix=".partial", dir=directory)
        try:
            with os.fdopen(handle, "wb") as out, self._transport.open(
                    "GET", self._path("/files"), query={"path": remote_path},
                    timeout=None) as response:
                shutil.copyfileobj(response, out, _CHUNK)
                size = out.tell()
            os.replace(partial, target)
        except BaseException:
            if os.path.exists(partial):
                os.unlink(partial)
            raise
        return {"path": target, "size": size}

    def list_files(self, remote_path="."):
        """Entries of a directory: dicts with ``name``, ``type``, ``size``, ``mode``, ``mtime``."""
        return self._transport.json("GET", self._path("/files/list"),
                                    query={"path": remote_path})["entries"]

    def remove_file(self, remote_path):
        """Removes a file."""
        self._transport.json("DELETE", self._path("/files"), query={"path": remote_path})

    # -- background processes ----------------------------------------------------------

    def start_process(self, command, tag=None, cwd=None, env=None, stdin=False, timeout_ms=None):
        """Starts a background process and returns at once: ``{"pid", "tag", "started_at"}``.

        It runs until it exits, ``timeout_ms`` passes (default: until the session ends) or it
        is killed; find it again by pid or ``tag``.
        """
        body = _exec_body(command, timeout_ms, cwd, env)
        if tag is not None:
            body["tag"] = tag
        if stdin:
            body["stdin"] = True
        return self._transport.json("POST", self._path("/processes"), json_body=body)

    def list_processes(self):
        """Running and recently exited processes (dicts with ``pid``, ``tag``, ``command``,
        ``running``, ``exit_code``, ``started_at``, ``ended_at``)."""
        return self._transport.json("GET", self._path("/processes"))["processes"]

    def process_output(self, pid, follow=True):
        """Yields a process's output events: what it wrote so far (a ``truncated`` event when
        older output was dropped), then, with ``follow``, the live rest and ``exit``."""
        response = self._transport.open(
            "GET", self._process_path(pid, "/output"),
            query=None if follow else {"follow": "false"},
            headers={"Accept": "application/x-ndjson"}, timeout=None,
        )
        with response:
            for raw in response:
                line = raw.strip()
                if not line:
                    continue
                event = json.loads(line.decode("utf-8"))
                if event.get("type") == "error":
                    error = event.get("error") or {}
                    raise SandpoolError(error.get("code", "runtime_unavailable"),
                                        error.get("message", "the process stream failed"))
                if event.get("type") != "start":
                    yield event

    def kill_process(self, pid):
        """Kills a process (pid or tag) and its group; returns the ended process."""
        return self._transport.json("DELETE", self._process_path(pid))

    def _process_path(self, pid, suffix=""):
        return self._path("/processes/" + urllib.parse.quote(str(pid), safe="") + suffix)

    # -- preview URLs (ports) ----------------------------------------------------------

    def get_host(self, port, preview_domain=None):
        """The host (E2B's ``get_host``: ``{port}-{session id}.{domain}[:server port]``, no
        scheme) where a server listening on ``port`` inside the sandbox answers. Private: send
        ``session["access_token"]`` as ``X-Access-Token``, use ``preview_url``, or
        ``set_port_public``. ``preview_domain`` defaults to ``SANDPOOL_PREVIEW_DOMAIN`` or
        ``localhost``."""
        if self.session_id is None:
            self.create_session()
        domain = preview_domain or os.environ.get("SANDPOOL_PREVIEW_DOMAIN") or "localhost"
        server_port = urllib.parse.urlsplit(self.url).port
        host = "%d-%s.%s" % (_checked_port(port), self.session_id, domain)
        return host if server_port is None else "%s:%d" % (host, server_port)

    def preview_url(self, port, ttl_seconds=None):
        """A signed URL of ``port`` for a browser: ``{"url", "expires_at"}``."""
        body = {} if ttl_seconds is None else {"ttl_seconds": ttl_seconds}
        return self._transport.json("POST", self._path("/ports/%d/url" % _checked_port(port)),
                                    json_body=body)

    def set_port_public(self, port, public=True):
        """Makes ``port`` public (no token needed) or private again."""
        return self._transport.json("PUT", self._path("/ports/%d" % _checked_port(port)),
                                    json_body={"public": bool(public)})

    # -- internals ---------------------------------------------------------------------

    def _quoted(self):
        return urllib.parse.quote(self.session_id, safe="")

    def _path(self, suffix):
        if self._closed:
            raise SandpoolError("session_not_found", "this SandboxClient was closed")
        if self.session_id is None:
            self.create_session()
        return "/v1/sessions/" + self._quoted() + suffix


class BatchSandboxClient:
    """Runs lists of commands, each list in its own fresh session (closed afterwards)."""

    def __init__(self, url=None, api_key=None, ttl_seconds=600):
        self.url = url
        self.api_key = api_key
        self.ttl_seconds = ttl_seconds

    def execute_batch(self, commands, stop_on_error=False, timeout_ms=None):
        """Runs ``commands`` one after another in one new session and returns their results.

        Each result is what ``SandboxClient.execute`` returns, plus ``command``. With
        ``stop_on_error`` it stops after the first command that fails or times out.
        """
        results = []
        with SandboxClient(self.url, self.api_key, ttl_seconds=self.ttl_seconds) as sandbox:
            for command in commands:
                result = dict(sandbox.execute(command, timeout_ms=timeout_ms), command=command)
                results.append(result)
                if stop_on_error and (result["exit_code"] != 0 or result["timed_out"]):
                    break
        return results


# -- self-test ---------------------------------------------------------------------------

def run_self_test(url=None, api_key=None, out=sys.stdout):
    """The seed's ``--test``: a session, its user, python3, files, streaming, a batch.

    Prints one line a step; returns True when every step passed.
    """
    failures = []

    def step(name, check):
        started = time.monotonic()
        try:
            detail = check()
            ok = True
        except Exception as error:  # report every failure, keep going
            detail, ok = "%s: %s" % (type(error).__name__, error), False
        ms = (time.monotonic() - started) * 1000
        out.write("%s %s (%.0f ms)%s\n" % ("[ok]  " if ok else "[FAIL]", name, ms,
                                           " - " + detail if detail else ""))
        out.flush()
        if not ok:
            failures.append(name)

    out.write("Testing sandpool at %s\n" % _Transport(url, api_key).url)
    try:
        sandbox = SandboxClient(url, api_key, ttl_seconds=300, metadata={"client": "python-test"})
        started = time.monotonic()
        sandbox.create_session()
        out.write("[ok]   session %s created (%.0f ms)\n" % (
            sandbox.session_id, (time.monotonic() - started) * 1000))
    except SandpoolError as error:
        out.write("[FAIL] create a session - %s\n" % error)
        return False

    with sandbox:
        def whoami():
            result = sandbox.execute("whoami")
            user = result["stdout"].strip()
            assert result["exit_code"] == 0 and user == "sandboxuser", "user %r" % user
            return "user %s, not root" % user

        def python():
            result = sandbox.execute(["python3", "-c", "print(6 * 7)"])
            assert result["stdout"] == "42\n", result
            return "python3 printed 42"

        def files():
            directory = tempfile.mkdtemp(prefix="sandpool-test-")
            try:
                script = os.path.join(directory, "hello.py")
                with open(script, "w") as handle:
                    handle.write("import sys\nprint('hello from', sys.argv[1])\n")
                uploaded = sandbox.upload_file(script)
                result = sandbox.execute("python3 hello.py upload > out.txt")
                assert result["exit_code"] == 0, result
                copy = os.path.join(directory, "out.txt")
                sandbox.download_file("out.txt", copy)
                with open(copy) as handle:
                    text = handle.read()
                assert text == "hello from upload\n", text
                names = [entry["name"] for entry in sandbox.list_files(".")]
                assert "hello.py" in names, names
                return "uploaded %s, ran it, downloaded its output" % uploaded["path"]
            finally:
                shutil.rmtree(directory)

        def streaming():
            events = list(sandbox.execute_stream(
                "for i in 1 2 3; do echo line $i; done; echo oops >&2; exit 4"))
            stdout = "".join(e["data"] for e in events if e["type"] == "stdout")
            assert stdout == "line 1\nline 2\nline 3\n", stdout
            assert events[-1]["type"] == "exit" and events[-1]["exit_code"] == 4, events[-1]
            return "%d events, exit code 4" % len(events)

        def timeout():
            result = sandbox.execute("sleep 10", timeout_ms=500)
            assert result["timed_out"], result
            return "sleep 10 stopped after %d ms" % result["duration_ms"]

        step("whoami", whoami)
        step("python3", python)
        step("upload, run, download", files)
        step("streaming (NDJSON)", streaming)
        step("timeout", timeout)

    def batch():
        results = BatchSandboxClient(url, api_key).execute_batch(
            ["echo 'Step 1: Setup'", "python3 --version", "exit 1", "echo never"],
            stop_on_error=True)
        codes = [r["exit_code"] for r in results]
        assert codes == [0, 0, 1], codes
        return "3 of 4 commands ran (stop_on_error)"

    step("batch", batch)
    if failures:
        out.write("%d step(s) failed: %s\n" % (len(failures), ", ".join(failures)))
        return False
    out.write("All tests passed.\n")
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description="sandpool client (Python, standard library)")
    parser.add_argument("--test", action="store_true",
                        help="self-test a running worker or coordinator")
    parser.add_argument("--url", help="server URL (default $SANDPOOL_URL or %s)" % DEFAULT_URL)
    parser.add_argument("--api-key", help="API key (default $SANDPOOL_API_KEY)")
    parser.add_argument("command", nargs="*",
                        help="after --, a command to run in a throwaway sandbox: one shell "
                             "command line, or several words run as argv")
    args = parser.parse_args(argv)
    if args.test:
        return 0 if run_self_test(args.url, args.api_key) else 1
    if not args.command:
        parser.print_help()
        return 2
    try:
        with SandboxClient(args.url, args.api_key, ttl_seconds=600) as sandbox:
            # One word is a shell command line; several are argv, run with no shell.
            command = args.command[0] if len(args.command) == 1 else args.command
            result = sandbox.execute(command)
    except SandpoolError as error:
        sys.stderr.write("sandpool: %s\n" % error)
        return 125
    sys.stdout.write(result["stdout"])
    sys.stderr.write(result["stderr"])
    return result["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
