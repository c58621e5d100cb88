"""Integration-test harness: runs the real service (scripts/serve.sh: lighttpd in
front of a spawn-fcgi + multiwatch pool of files-fcgi workers) on a free port
with its own data directory, and talks to it over HTTP like a client would.

Python standard library only.

    stack = Stack(workers=4, config="max_file_bytes = 1048576\n")
    stack.start()                      # waits for "listening on ..."
    client = stack.new_client()        # a fresh account with an inference.* key
    resp = client.upload(batch_jsonl(3))
    stack.stop()                       # SIGTERM serve.sh, then SIGKILL its group

Every Stack that was started is also stopped at interpreter exit (atexit), so
a test that fails half-way never leaves servers behind.
"""

import atexit
import contextlib
import hashlib
import http.client
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("FILES_API_BIN") or (REPO / "bin")).resolve()
SERVE = REPO / "scripts" / "serve.sh"

DEFAULT_MAX_FILE_BYTES = 110_100_480  # 105 MiB, SPEC
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
HTTP_TIMEOUT = 120.0
BATCH_URL = "/v1/chat/completions"
FILE_ID_RE = re.compile(r"^file_[A-Za-z0-9_-]+$")
ACCESS_RE = re.compile(r'^access method=(\S+) path="([^"]*)" status=(\d+) (.*)$')

# The integration suite runs once per web server (FILES_API_SERVER, see
# scripts/run-tests.sh). Tests of what no web server takes part in (the
# database, filesctl, the test runner) run in the default pass only; the
# sanitizer pass is a default one too.
ANOTHER_SERVERS_PASS = (os.environ.get("FILES_API_SERVER") or "lighttpd") != "lighttpd"
once_is_enough = unittest.skipIf(ANOTHER_SERVERS_PASS, "no web server takes part: once is enough")
# Tests of the scripts themselves (serve.sh's options and start, make run, a
# fresh checkout's build, the test runner) gain nothing from the sanitizer
# build's workers: they skip its pass.
SANITIZER_PASS = b"__asan_init" in (BIN_DIR / "files-fcgi").read_bytes()
scripts_only = unittest.skipIf(SANITIZER_PASS, "the scripts' own behaviour: not again for the "
                                               "sanitizer build")

_live_stacks = set()
_live_lock = threading.Lock()


def _stop_all_stacks():
    with _live_lock:
        stacks = list(_live_stacks)
    for stack in stacks:
        try:
            stack.stop()
        except Exception:  # pragma: no cover - best effort at exit
            pass


atexit.register(_stop_all_stacks)


_key_variables = []


def config_key_variables():
    """FILES_API_<KEY> for every configuration key: each sets its key (over the
    configuration file) in the workers and filesctl."""
    if not _key_variables:
        out = subprocess.run([str(BIN_DIR / "filesctl"), "--data-dir", "/nonexistent",
                              "config", "show"], capture_output=True, text=True, check=True,
                             env={k: v for k, v in os.environ.items()
                                  if not k.startswith("FILES_API_")}).stdout
        _key_variables.extend("FILES_API_" + line.split(" = ")[0].upper()
                              for line in out.splitlines() if " = " in line)
    return _key_variables


def free_port():
    """A port that was free a moment ago (bind 127.0.0.1:0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


# --------------------------------------------------------------------------
# The service


class StackError(RuntimeError):
    pass


class Stack:
    """One running service: serve.sh on a free port with a temporary data dir."""

    def __init__(self, workers=4, config=None, name="stack", server=None, env=None,
                 before_start=None, serve_args=(), serve=SERVE, start_timeout=START_TIMEOUT):
        self.workers = workers
        self.serve = serve  # another tree's serve.sh, e.g. one never built
        self.start_timeout = start_timeout
        self.serve_args = list(serve_args)  # more serve.sh options, e.g. --download-mode
        self.before_start = before_start  # called with the stack once its paths exist
        self.extra_env = dict(env or {})  # e.g. FILES_API_CRASH_AT for the workers
        # which web server serve.sh puts in front (its default if unset)
        self.server = server or os.environ.get("FILES_API_SERVER") or None
        self.config_text = config
        self.name = name
        self.port = None
        self.proc = None
        self.tmp = None
        self.data_dir = None
        self.config_path = None
        self.log_path = None
        self._log_file = None
        self.keys = []  # every secret key created: tests grep the log for them
        self.pool_groups = set()  # process groups of serve.sh's own (its setsid pool)

    # -- lifecycle --

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="files-api-it-%s-" % self.name)
        if self.server == "apache-fcgid" and os.geteuid() == 0:
            os.chmod(self.tmp, 0o711)  # mod_fcgid's workers run as www-data: let them reach data/
        self.data_dir = os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "serve.log")
        if self.config_text is not None:
            self.config_path = os.path.join(self.tmp, "files-api.conf")
            with open(self.config_path, "w") as f:
                f.write(self.config_text)
        if self.before_start:
            self.before_start(self)
        with _live_lock:
            _live_stacks.add(self)
        last = None
        for _attempt in range(3):  # the free port may be taken before serve.sh binds it
            try:
                self._start_once()
                return self
            except StackError as e:
                last = e
                self._stop_process()
                if not any(m in str(e) for m in ("Address already in use", "bind",
                                                 "already answers")):
                    break
        self.stop()
        raise last

    def _env(self):
        env = dict(os.environ)
        env["FILES_API_BIN"] = str(BIN_DIR)
        env.pop("FILES_API_CONFIG", None)
        for name in config_key_variables():  # a stack's settings are its own
            env.pop(name, None)
        for name, value in self.extra_env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def _start_once(self):
        self.port = free_port()
        cmd = [str(self.serve), "--port", str(self.port), "--data-dir", self.data_dir,
               "--workers", str(self.workers)]
        if self.config_path:
            cmd += ["--config", self.config_path]
        if self.server:
            cmd += ["--server", self.server]
        cmd += self.serve_args
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self._env(),
                                     cwd=str(REPO), start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            text = self.log_text()
            if "listening on http://127.0.0.1:%d" % self.port in text:
                self.pool_groups = child_groups(self.proc.pid)
                return
            if self.proc.poll() is not None:
                raise StackError("serve.sh exited with %s before listening; its output:\n%s"
                                 % (self.proc.returncode, text))
            time.sleep(0.05)
        raise StackError("serve.sh did not print 'listening on' within %.0f s; its output:\n%s"
                         % (self.start_timeout, self.log_text()))

    def _stop_process(self):
        proc, self.proc = self.proc, None
        if proc is not None:
            pgid = proc.pid  # start_new_session: the group id is serve.sh's pid
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
            # Whatever is left in the groups (workers, lighttpd): last resort.
            for group in [pgid] + sorted(self.pool_groups):
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and group_alive(group):
                    time.sleep(0.05)
                if group_alive(group):
                    try:
                        os.killpg(group, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            if proc.poll() is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
                proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self):
        """Stops serve.sh and starts it again on the same data (a new port)."""
        self._stop_process()
        self._start_once()
        return self

    def stop(self):
        self._stop_process()
        with _live_lock:
            _live_stacks.discard(self)
        if self.tmp and os.environ.get("FILES_API_KEEP_TMP") != "1":
            subprocess.run(["rm", "-rf", self.tmp], check=False)
            self.tmp = None

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def content_path(self, file_id):
        """Where the store keeps a file's content: DATA/files/<last two of the id>/<id>."""
        return os.path.join(self.data_dir, "files", file_id[-2:], file_id)

    def worker_pids(self):
        """PIDs of this stack's files-fcgi workers (not multiwatch)."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"files-fcgi") and self.data_dir.encode() in argv:
                pids.append(int(entry))
        return sorted(pids)

    # -- logs --

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_bytes(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def access_lines(self):
        return [l for l in self.log_text().splitlines() if l.startswith("access ")]

    def wait_for_log(self, predicate, timeout=5.0, must=True):
        """Polls the log until predicate(text) is true; returns the text. On
        timeout: an AssertionError, or the text if must is false (what is
        awaited may rightly never come)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                if must:
                    raise AssertionError("not in the log after %.1f s; its end:\n%s"
                                         % (timeout, text[-3000:]))
                return text
            time.sleep(0.05)

    @contextlib.contextmanager
    def write_lock_held(self):
        """Another process holds the database's write lock meanwhile."""
        holder = sqlite3.connect(os.path.join(self.data_dir, "files.db"), timeout=5,
                                 isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()

    # -- admin tool --

    def filesctl_prefix(self):
        """How to run filesctl: as the user the workers run as (www-data under
        mod_fcgid), so that what it creates stays theirs."""
        prefix = []
        if self.server == "apache-fcgid" and os.geteuid() == 0:
            prefix = ["setpriv", "--reuid=www-data", "--regid=www-data", "--clear-groups"]
        return prefix + [str(BIN_DIR / "filesctl")]

    def filesctl(self, *args, check=True):
        cmd = self.filesctl_prefix() + ["--data-dir", self.data_dir]
        if self.config_path:
            cmd += ["--config", self.config_path]
        cmd += list(args)
        res = subprocess.run(cmd, capture_output=True, text=True, env=self._env(), timeout=60)
        if check and res.returncode != 0:
            raise StackError("filesctl %s failed (%d): %s%s"
                             % (" ".join(args), res.returncode, res.stdout, res.stderr))
        return res

    def create_key(self, account, scopes="inference.*", name=None):
        args = ["keys", "create", "--account", account, "--scopes", scopes]
        if name is not None:
            args += ["--name", name]
        key = self.filesctl(*args).stdout.strip()
        if not key or "\n" in key:
            raise StackError("filesctl keys create printed %r" % key)
        self.keys.append(key)
        return key

    def keys_list(self):
        """Rows of `keys list` (after the header), split on whitespace."""
        lines = self.filesctl("keys", "list").stdout.splitlines()
        return [l.split() for l in lines[1:] if l.strip()]

    def key_id_by_name(self, label):
        for row in self.keys_list():
            if row and row[-1] == label:
                return row[0]
        raise StackError("no key named %s in keys list" % label)

    def revoke_key(self, key_id):
        self.filesctl("keys", "revoke", key_id)

    def config_get(self, key):
        return self.filesctl("config", "get", key).stdout.strip()

    # -- clients --

    def client(self, key=None, auth="bearer"):
        return Client(self, key, auth)

    def new_client(self, scopes="inference.*", account=None, auth="bearer"):
        """A client for a fresh account (so listings are not shared between tests)."""
        account = account or unique("acct")
        c = Client(self, self.create_key(account, scopes), auth)
        c.account = account
        return c


def child_groups(pid):
    """Process groups of pid's children other than pid's own."""
    groups = set()
    for name in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and int(fields[2]) != pid:  # ppid, pgrp
            groups.add(int(fields[2]))
    return groups


def process_age(pid):
    """Seconds since pid started (from /proc, in clock ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - started_ticks / os.sysconf("SC_CLK_TCK")


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def group_members(pgid):
    """'pid comm state' of each process in group pgid: what a failure names."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except (OSError, ValueError):
            continue
        comm_end = stat.rfind(")")
        fields = stat[comm_end + 2:].split()
        if len(fields) > 2 and fields[2] == str(pgid):
            found.append("%s %s %s" % (entry, stat[stat.find("(") + 1:comm_end], fields[0]))
    return found


# --------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, reason, headers, body, raw_headers=None):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage (case-insensitive get)
        self.body = body
        self.raw_headers = raw_headers

    @classmethod
    def from_wire(cls, raw):
        """The response in raw bytes off a socket (its body as sent: not de-chunked)."""
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError("no complete response head: %r" % raw[:300])
        status_line, _, header_block = head.partition(b"\r\n")
        headers = http.client.parse_headers(io.BytesIO(header_block + b"\r\n\r\n"))
        return cls(int(status_line.split()[1]), "", headers, body)

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise AssertionError("response body is not JSON (%s): status %d, body %r"
                                 % (e, self.status, self.body[:500]))

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


def _send_all_then_read(conn, chunks, chunked):
    """Sends body chunks; if the server stops reading (it answered early), stops
    sending and reads its answer."""
    try:
        for chunk in chunks:
            if not chunk:
                continue
            if chunked:
                conn.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            else:
                conn.send(chunk)
        if chunked:
            conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    return conn.getresponse()


class Client:
    """HTTP to the stack with one key. auth: "bearer", "x-api-key", "both" or None."""

    def __init__(self, stack, key, auth="bearer"):
        self.stack = stack
        self.key = key
        self.auth = auth
        self.account = None

    def auth_headers(self, auth=None, key=None):
        auth = self.auth if auth is None else auth
        key = self.key if key is None else key
        if key is None or auth in (None, "none"):
            return {}
        if auth == "bearer":
            return {"Authorization": "Bearer " + key}
        if auth == "x-api-key":
            return {"x-api-key": key}
        if auth == "both":
            return {"Authorization": "Bearer " + key, "x-api-key": key}
        raise ValueError(auth)

    def _conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=HTTP_TIMEOUT)

    def request(self, method, path, body=None, headers=None, auth=None, key=None,
                stream_to=None):
        """One request on a fresh connection. body: bytes or None. stream_to: a
        callable given each piece of the response body instead of buffering it."""
        h = self.auth_headers(auth, key)
        h.update(headers or {})
        conn = self._conn()
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            return self._finish(resp, stream_to)
        finally:
            conn.close()

    def _finish(self, resp, stream_to=None):
        if stream_to is None or resp.status != 200:
            body = resp.read()
        else:
            body = b""
            while True:
                piece = resp.read(1 << 20)
                if not piece:
                    break
                stream_to(piece)
        return Response(resp.status, resp.reason, resp.headers, body)

    def request_stream(self, method, path, chunks, length=None, headers=None, auth=None,
                       key=None):
        """Sends the body from an iterable of bytes without building it in memory:
        with Content-Length = length, or with Transfer-Encoding: chunked if length
        is None."""
        h = self.auth_headers(auth, key)
        h.update(headers or {})
        conn = self._conn()
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in h.items():
                conn.putheader(k, v)
            if length is None:
                conn.putheader("Transfer-Encoding", "chunked")
            else:
                conn.putheader("Content-Length", str(length))
            conn.endheaders()
            resp = _send_all_then_read(conn, chunks, chunked=length is None)
            return self._finish(resp)
        finally:
            conn.close()

    # -- the five endpoints --

    def upload(self, content, filename="batch.jsonl", purpose="batch", purpose_first=False,
               extra_parts=(), **kw):
        parts = [file_part(content, filename)]
        if purpose is not None:
            if purpose_first:
                parts.insert(0, field_part("purpose", purpose))
            else:
                parts.append(field_part("purpose", purpose))
        parts.extend(extra_parts)
        return self.upload_parts(parts, **kw)

    def upload_parts(self, parts, boundary=None, **kw):
        ctype, body = multipart(parts, boundary)
        return self.request("POST", "/v1/files", body=body, headers={"Content-Type": ctype}, **kw)

    def upload_ok(self, content, **kw):
        resp = self.upload(content, **kw)
        if resp.status != 200:
            raise AssertionError("upload failed: %d %r" % (resp.status, resp.body[:500]))
        return resp.json()

    def upload_stream(self, gen, chunked=False, filename="big.jsonl", purpose="batch", **kw):
        """Uploads gen (a ContentGen) as the file part, streamed."""
        boundary = "----itboundary" + uuid.uuid4().hex
        head = (b"--" + boundary.encode() + b"\r\n" + field_head("purpose") + b"\r\n"
                + purpose.encode() + b"\r\n"
                + b"--" + boundary.encode() + b"\r\n" + file_head(filename) + b"\r\n")
        tail = b"\r\n--" + boundary.encode() + b"--\r\n"

        def chunks():
            yield head
            yield from gen.chunks()
            yield tail

        length = None if chunked else len(head) + gen.total + len(tail)
        return self.request_stream("POST", "/v1/files", chunks(), length=length,
                                   headers={"Content-Type":
                                            "multipart/form-data; boundary=" + boundary}, **kw)

    def list(self, query="", **params):
        path = "/v1/files"
        q = query or urlencode(params)
        if q:
            path += "?" + q
        return self.request("GET", path)

    def list_ok(self, **params):
        resp = self.list(**params)
        if resp.status != 200:
            raise AssertionError("list failed: %d %r" % (resp.status, resp.body[:500]))
        return resp.json()

    def retrieve(self, file_id, **kw):
        return self.request("GET", "/v1/files/" + quote(file_id, safe=""), **kw)

    def content(self, file_id, **kw):
        return self.request("GET", "/v1/files/%s/content" % quote(file_id, safe=""), **kw)

    def delete(self, file_id, **kw):
        return self.request("DELETE", "/v1/files/" + quote(file_id, safe=""), **kw)

    def download_sha256(self, file_id, **kw):
        """Streams the content (never held whole): (response, sha256 hex, size)."""
        h = hashlib.sha256()
        size = [0]

        def take(piece):
            h.update(piece)
            size[0] += len(piece)

        resp = self.request("GET", "/v1/files/%s/content" % quote(file_id, safe=""),
                            stream_to=take, **kw)
        return resp, h.hexdigest(), size[0]

    def all_ids(self, order="desc", limit=100):
        ids, after = [], None
        for _ in range(10000):
            params = {"limit": limit, "order": order}
            if after:
                params["after"] = after
            page = self.list_ok(**params)
            ids += [f["id"] for f in page["data"]]
            if not page["has_more"]:
                return ids
            after = page["last_id"]
        raise AssertionError("pagination did not end")


def terminate(proc, timeout=20):
    """Stops a process we started: SIGTERM, then SIGKILL after timeout seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def read_to_end(conn):
    """Every byte a socket receives until the other side closes it."""
    out = b""
    while True:
        piece = conn.recv(65536)
        if not piece:
            return out
        out += piece


def raw_request(stack, data, timeout=30.0):
    """Sends raw bytes (a request with "Connection: close") on a new connection
    and returns every byte the server sent until it closed (to see exactly
    what is on the wire). No half-close: some servers take it as an abort."""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=timeout) as s:
        s.sendall(data)
        return read_to_end(s)


# --------------------------------------------------------------------------
# multipart/form-data


def field_head(name):
    return b'Content-Disposition: form-data; name="' + name.encode() + b'"\r\n'


def file_head(filename, name="file", content_type="application/jsonl"):
    """Part headers for a file. filename: str (UTF-8 encoded, sent as is) or bytes
    (sent raw: quoting is the caller's business)."""
    fn = filename if isinstance(filename, bytes) else filename.encode("utf-8")
    h = b'Content-Disposition: form-data; name="' + name.encode() + b'"; filename="' + fn + b'"\r\n'
    if content_type:
        h += b"Content-Type: " + content_type.encode() + b"\r\n"
    return h


def file_part(content, filename="batch.jsonl", name="file", content_type="application/jsonl"):
    return (file_head(filename, name, content_type), content)


def field_part(name, value):
    return (field_head(name), value.encode("utf-8") if isinstance(value, str) else value)


def raw_part(headers, content):
    """A part with raw header bytes (each header line ending in CRLF)."""
    return (headers, content)


def multipart(parts, boundary=None):
    """(content_type, body) for a list of (header_bytes, body_bytes) parts."""
    boundary = boundary or ("----itboundary" + uuid.uuid4().hex)
    b = boundary.encode()
    out = []
    for head, data in parts:
        out.append(b"--" + b + b"\r\n" + head + b"\r\n" + data + b"\r\n")
    out.append(b"--" + b + b"--\r\n")
    return "multipart/form-data; boundary=" + boundary, b"".join(out)


# --------------------------------------------------------------------------
# JSONL content


def batch_line(custom_id, url=BATCH_URL, body=None, method="POST", extra=None):
    obj = {"custom_id": custom_id, "method": method, "url": url,
           "body": body if body is not None else
           {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello %s" % custom_id}]}}
    if extra:
        obj.update(extra)
    return json.dumps(obj, separators=(",", ":"))


def batch_jsonl(n=3, prefix="req", url=BATCH_URL, tag=""):
    """n valid batch lines (bytes), each ending in LF."""
    return "".join(batch_line("%s-%d%s" % (prefix, i, tag), url) + "\n" for i in range(n)).encode()


# A realistic batch request line with two fixed-width counters. %s is padding.
_LINE_TEMPLATE = (
    '{"custom_id":"request-%010d","method":"POST","url":"/v1/chat/completions",'
    '"body":{"model":"gpt-4o-mini","messages":[{"role":"system","content":'
    '"You are a support assistant. Classify the ticket and draft a short reply."},'
    '{"role":"user","content":"Ticket #%010d: my order arrived damaged and the box was open. '
    'I would like a replacement or a refund, whichever is faster.%s"}],'
    '"max_tokens":256,"temperature":0.2}}\n')
LINE_LEN = len(_LINE_TEMPLATE % (0, 0, ""))


class ContentGen:
    """Exactly `total` bytes of valid batch JSONL, generated on the fly in ~1 MiB
    chunks (never held whole), with its SHA-256 known in advance."""

    BLOCK_LINES = 4096

    def __init__(self, total):
        if total < LINE_LEN:
            raise ValueError("total too small")
        self.total = total
        # full lines, then one padded last line of length in [LINE_LEN, 2*LINE_LEN)
        self.full = total // LINE_LEN - 1
        self.pad = total - self.full * LINE_LEN - LINE_LEN
        self._sha = None

    def chunks(self):
        """The content in pieces. After a complete iteration, self.sent_sha256
        is the SHA-256 of exactly what was yielded."""
        h = hashlib.sha256()
        n = 0
        while n < self.full:
            k = min(self.BLOCK_LINES, self.full - n)
            block = "".join([_LINE_TEMPLATE % (i, i, "") for i in range(n, n + k)]).encode()
            h.update(block)
            yield block
            n += k
        last = (_LINE_TEMPLATE % (n, n, " " + "x" * (self.pad - 1) if self.pad else "")).encode()
        h.update(last)
        yield last
        self.sent_sha256 = h.hexdigest()

    def sha256(self):
        if self._sha is None:
            h = hashlib.sha256()
            size = 0
            for c in self.chunks():
                h.update(c)
                size += len(c)
            assert size == self.total, (size, self.total)
            self._sha = h.hexdigest()
        return self._sha


# --------------------------------------------------------------------------
# Assertions shared by the test modules

ERROR_TYPES = {
    "AUTH_1007": "authentication_error",
    "AUTH_1008": "authentication_error",
    "AUTH_1015": "permission_error",
    "VALIDATION_4001": "invalid_request_error",
    "VALIDATION_4002": "invalid_request_error",
    "VALIDATION_4004": "invalid_request_error",
    "VALIDATION_4005": "invalid_request_error",
    "VALIDATION_4007": "invalid_request_error",
    "VALIDATION_4016": "invalid_request_error",
    "INFERENCE_3302": "invalid_request_error",
    "INFERENCE_3303": "invalid_request_error",
    "SYSTEM_9001": "server_error",
    "SYSTEM_9003": "server_error",
    "SYSTEM_9007": "server_error",
}

_UNSET = object()


class ApiTestCase(unittest.TestCase):
    maxDiff = 4000

    def assertError(self, resp, status, code, param=_UNSET, message=None):
        """resp is SPEC's error: HTTP status, JSON content type, error.code/type/
        param/message (message: a regex searched in it). Returns the error object."""
        ctx = "%s -> %d %r" % (code, resp.status, resp.body[:600])
        self.assertEqual(resp.status, status, ctx)
        ctype = resp.header("Content-Type", "")
        self.assertTrue(ctype.startswith("application/json"), "Content-Type %r; %s" % (ctype, ctx))
        body = resp.json()
        self.assertIsInstance(body, dict, ctx)
        self.assertIn("error", body, ctx)
        err = body["error"]
        self.assertEqual(err.get("code"), code, ctx)
        self.assertEqual(err.get("type"), ERROR_TYPES[code], ctx)
        self.assertIsInstance(err.get("message"), str, ctx)
        self.assertTrue(err["message"], ctx)
        self.assertIn("param", err, ctx)
        if param is not _UNSET:
            self.assertEqual(err["param"], param, ctx)
        if "details" in err:
            self.assertIsInstance(err["details"], dict, ctx)
        if message is not None:
            self.assertRegex(err["message"], message, ctx)
        return err

    def assertFileObject(self, obj, content=None, filename=None):
        self.assertEqual(set(obj), {"id", "object", "bytes", "created_at", "filename",
                                    "purpose", "status", "expires_at"}, obj)
        self.assertRegex(obj["id"], FILE_ID_RE)
        self.assertEqual(obj["object"], "file")
        self.assertIsInstance(obj["bytes"], int)
        self.assertIsInstance(obj["created_at"], int)
        self.assertLessEqual(abs(obj["created_at"] - time.time()), 3600)
        self.assertEqual(obj["purpose"], "batch")
        self.assertEqual(obj["status"], "processed")
        self.assertIsNone(obj["expires_at"])
        if content is not None:
            self.assertEqual(obj["bytes"], len(content))
        if filename is not None:
            self.assertEqual(obj["filename"], filename)


def parse_disposition(cd):
    """Parses a Content-Disposition value strictly (RFC 6266): returns (type,
    {param: value}) with quoted-strings unescaped and filename* (RFC 8187)
    percent-decoded. Raises ValueError if it is not well-formed or a parameter
    repeats (what a header injection would produce)."""
    from urllib.parse import unquote_to_bytes
    m = re.match(r"\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*", cd)
    if not m:
        raise ValueError("no disposition type: %r" % cd)
    kind, pos, params = m.group(1).lower(), m.end(), {}
    token = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
    while pos < len(cd):
        m = re.compile(r";\s*(%s)\s*=\s*(?:\"((?:[^\"\\\\\r\n]|\\\\.)*)\"|(%s))\s*" % (token, token)).match(cd, pos)
        if not m:
            raise ValueError("malformed parameters at %d: %r" % (pos, cd))
        name = m.group(1).lower()
        value = re.sub(r"\\(.)", r"\1", m.group(2)) if m.group(2) is not None else m.group(3)
        if name in params:
            raise ValueError("parameter %s repeated: %r" % (name, cd))
        if name.endswith("*"):
            charset, _lang, enc = value.split("'", 2)
            value = unquote_to_bytes(enc).decode(charset)
        params[name] = value
        pos = m.end()
    return kind, params


def disposition_filename(cd):
    """The filename a client takes from Content-Disposition (filename* wins)."""
    _kind, params = parse_disposition(cd)
    return params.get("filename*", params.get("filename"))
