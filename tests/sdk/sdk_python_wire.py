#!/usr/bin/env python3
"""The official OpenAI Python SDK on the wire, without the SDK.

openai-python cannot be installed here (no PyPI), so this script sends, byte
for byte, the requests that `openai.OpenAI(api_key=KEY, base_url=BASE)` makes
through httpx for the Files API, and checks the answers the way the SDK reads
them. Python standard library only. It starts the stack itself (scripts/
serve.sh on a free port, a temporary data directory, FILES_API_BIN passed
through), makes a key with filesctl, stops the stack at the end, and prints
"N passed, N failed" (exit status 1 on any failure).

What is reproduced (openai-python 1.x/2.x `_base_client.py` + httpx 0.27/0.28):

* Headers. The SDK's defaults `Accept: application/json`, `Content-Type:
  application/json` (dropped on GET; kept, with no body, on DELETE),
  `User-Agent: OpenAI/Python <version>`, the `X-Stainless-*` platform headers,
  `X-Stainless-Async: false`, `x-stainless-retry-count: 0`,
  `x-stainless-read-timeout: 600.0` (the default timeout), `Authorization: Bearer
  <key>`; httpx adds `Host`, `Accept-Encoding: gzip, deflate`, `Connection:
  keep-alive`, and `Content-Length` for bodies (`0` on a body-less POST).
* `files.create(file=open(path, "rb"), purpose="batch")`: the SDK takes the
  file out of the body (`extract_files`), pops its own `multipart/form-data`
  Content-Type, and hands httpx `data={"purpose": "batch"}` and
  `files=[("file", <file object>)]`. httpx's MultipartStream writes the data
  fields first, then the files; boundary `os.urandom(16).hex()`; each part is
  `--B\\r\\nContent-Disposition: form-data; name="..."[; filename="..."]`
  (+ `\\r\\nContent-Type: <mimetypes.guess_type(filename) or
  application/octet-stream>` for a file) `\\r\\n\\r\\n<data>\\r\\n`, then
  `--B--\\r\\n`. The filename is `Path(file.name).name`, escaped by
  `_format_form_param`: `"` -> `%22`, `\\` -> `\\\\`, and every control
  character 0x00-0x1F except ESC (0x1B) -> `%XX`; non-ASCII goes out as raw
  UTF-8. The length of a real file is known (fstat), so the body has a
  Content-Length (no chunking); the file is read in 64 KiB chunks.
* `files.content(id)`: GET with `Accept: application/binary`.
* `files.list(limit=2)` auto-pagination (SyncCursorPage): the next page is the
  same query plus `after=<id of the last item>`, until `has_more` is false.
* Errors: the SDK raises by status (400 BadRequestError, 401
  AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError) with
  `body = response_json["error"]`, and `err.code` / `err.param` / `err.type`
  read from that object.

    python3 tests/sdk/sdk_python_wire.py       (FILES_API_BIN=DIR to pick the programs)
"""

import gzip
import http.client
import json
import mimetypes
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("FILES_API_BIN") or (REPO / "bin")).resolve()
SERVE = REPO / "scripts" / "serve.sh"
SDK_VERSION = "1.95.1"  # a recent openai-python release; the shape is the same across 1.x/2.x
BATCH_URL = "/v1/chat/completions"


# --------------------------------------------------------------------------
# The stack


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="files-api-pywire-")
        self.data = os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "serve.log")
        self.proc = None
        self.port = None

    def start(self):
        env = dict(os.environ, FILES_API_BIN=str(BIN_DIR))
        env.pop("FILES_API_CONFIG", None)
        env.pop("FILES_API_DATA_DIR", None)
        for _attempt in range(3):
            self.port = free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [str(SERVE), "--port", str(self.port), "--data-dir", self.data, "--workers", "2"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=str(REPO), start_new_session=True)
            log.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if "listening on http://127.0.0.1:%d" % self.port in self.log():
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            self.stop_process()
            if "already in use" not in self.log() and "bind" not in self.log():
                break
        raise RuntimeError("the stack did not start:\n" + self.log())

    def log(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def stop_process(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever serve.sh left in its group (it is the group leader)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop(self):
        self.stop_process()
        if os.environ.get("FILES_API_KEEP_TMP") != "1":
            subprocess.run(["rm", "-rf", self.tmp], check=False)

    def create_key(self, account, scopes):
        out = subprocess.run([str(BIN_DIR / "filesctl"), "--data-dir", self.data, "keys", "create",
                              "--account", account, "--scopes", scopes],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()


# --------------------------------------------------------------------------
# httpx + openai-python, on the wire

# httpx._multipart: _HTML5_FORM_ENCODING_REPLACEMENTS / _format_form_param
_HTML5_FORM_ENCODING_REPLACEMENTS = {'"': "%22", "\\": "\\\\"}
_HTML5_FORM_ENCODING_REPLACEMENTS.update(
    {chr(c): "%{:02X}".format(c) for c in range(0x1F + 1) if c != 0x1B})
_HTML5_FORM_ENCODING_RE = re.compile(
    r"|".join([re.escape(c) for c in _HTML5_FORM_ENCODING_REPLACEMENTS.keys()]))


def format_form_param(name, value):
    value = _HTML5_FORM_ENCODING_RE.sub(lambda m: _HTML5_FORM_ENCODING_REPLACEMENTS[m.group(0)], value)
    return ('%s="%s"' % (name, value)).encode()


def guess_content_type(filename):
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def multipart_stream(data, files, boundary):
    """httpx.MultipartStream: (content_length, iterator of chunks)."""
    fields = []
    for name, value in data.items():
        head = b"Content-Disposition: form-data; " + format_form_param("name", name) + b"\r\n\r\n"
        fields.append((head, value.encode(), None))
    for name, fileobj in files:
        filename = Path(str(getattr(fileobj, "name", "upload"))).name
        parts = [b"Content-Disposition: form-data; ", format_form_param("name", name)]
        if filename:
            parts += [b"; ", format_form_param("filename", filename)]
        parts += [b"\r\nContent-Type: ", guess_content_type(filename).encode(), b"\r\n\r\n"]
        fields.append((b"".join(parts), None, fileobj))
    length = 0
    for head, value, fileobj in fields:
        size = len(value) if value is not None else os.fstat(fileobj.fileno()).st_size
        length += 2 + len(boundary) + 2 + len(head) + size + 2
    length += 2 + len(boundary) + 4

    def chunks():
        for head, value, fileobj in fields:
            yield b"--%s\r\n" % boundary
            yield head
            if value is not None:
                yield value
            else:
                fileobj.seek(0)
                while True:
                    chunk = fileobj.read(64 * 1024)
                    if not chunk:
                        break
                    yield chunk
            yield b"\r\n"
        yield b"--%s--\r\n" % boundary

    return length, chunks()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class PythonSDKWire:
    """What `openai.OpenAI(api_key=key, base_url=base_url, max_retries=0)` sends."""

    def __init__(self, port, api_key):
        self.host = "127.0.0.1:%d" % port
        self.port = port
        self.api_key = api_key
        self.conn = None
        self.sent = []  # raw request heads, for the tests' checks

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        return self.conn

    def _headers(self, method, accept="application/json"):
        # httpx.Client defaults first (Host, Accept-Encoding, Connection), then
        # the SDK's: auth, defaults, platform headers, retry count, read timeout.
        h = [
            ("Host", self.host),
            ("Accept-Encoding", "gzip, deflate"),
            ("Connection", "keep-alive"),
            ("Authorization", "Bearer %s" % self.api_key),
            ("Accept", accept),
        ]
        if method != "GET":
            h.append(("Content-Type", "application/json"))
        h += [
            ("User-Agent", "OpenAI/Python %s" % SDK_VERSION),
            ("X-Stainless-Lang", "python"),
            ("X-Stainless-Package-Version", SDK_VERSION),
            ("X-Stainless-OS", "Linux"),
            ("X-Stainless-Arch", "x64" if platform.machine() in ("x86_64", "AMD64") else "arm64"),
            ("X-Stainless-Runtime", "CPython"),
            ("X-Stainless-Runtime-Version", platform.python_version()),
            ("X-Stainless-Async", "false"),
            ("x-stainless-retry-count", "0"),
            ("x-stainless-read-timeout", "600.0"),  # str(DEFAULT_TIMEOUT.read)
        ]
        return h

    def request(self, method, path, headers, body_len=None, body_iter=(), body_headers=()):
        # httpx appends the body's own headers last: Content-Length, then the
        # multipart Content-Type; a body-less POST/PUT/PATCH gets "0".
        if body_len is None and method in ("POST", "PUT", "PATCH"):
            body_len = 0
        if body_len is not None:
            headers = headers + [("Content-Length", str(body_len))]
        headers = headers + list(body_headers)
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v.encode("latin-1") if isinstance(v, str) else v)
                conn.endheaders()
                self.sent.append((method, path, headers))
                for chunk in body_iter:
                    conn.send(chunk)
                resp = conn.getresponse()
                body = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # a keep-alive connection the server closed: httpx reconnects
                self.close()
                if attempt == 2 or body_iter != ():
                    raise
        enc = (resp.getheader("Content-Encoding") or "").lower()
        if enc == "gzip":
            body = gzip.decompress(body)
        elif enc == "deflate":
            body = zlib.decompress(body)
        if (resp.getheader("Connection") or "").lower() == "close":
            self.close()
        return Response(resp.status, resp.getheaders(), body)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- the resource methods --

    def files_create(self, path, purpose="batch"):
        with open(path, "rb") as f:  # the user's open(path, "rb")
            boundary = os.urandom(16).hex().encode("ascii")
            length, chunks = multipart_stream({"purpose": purpose}, [("file", f)], boundary)
            headers = [h for h in self._headers("POST") if h[0] != "Content-Type"]
            return self.request("POST", "/v1/files", headers, length, chunks,
                                [("Content-Type", "multipart/form-data; boundary=%s" % boundary.decode())])

    def files_retrieve(self, file_id):
        return self.request("GET", "/v1/files/%s" % file_id, self._headers("GET"))

    def files_content(self, file_id):
        return self.request("GET", "/v1/files/%s/content" % file_id,
                            self._headers("GET", accept="application/binary"))

    def files_delete(self, file_id):
        return self.request("DELETE", "/v1/files/%s" % file_id, self._headers("DELETE"))

    def files_list(self, **params):
        """Auto-pagination: yields (page_response, items)."""
        query = dict(params)
        while True:
            path = "/v1/files" + ("?" + urlencode(query) if query else "")
            resp = self.request("GET", path, self._headers("GET"))
            if resp.status != 200:
                yield resp, []
                return
            page = resp.json()
            yield resp, page["data"]
            if not page.get("has_more") or not page["data"]:
                return
            query = dict(query, after=page["data"][-1]["id"])


# --------------------------------------------------------------------------
# Tests


def batch_jsonl(n, tag):
    lines = [json.dumps({"custom_id": "%s-%d" % (tag, i), "method": "POST", "url": BATCH_URL,
                         "body": {"model": "gpt-4o-mini",
                                  "messages": [{"role": "user", "content": "héllo %d" % i}]}},
                        ensure_ascii=False) for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def expect_ok_file(resp, size, filename):
    check(resp.status == 200, "status %d: %r" % (resp.status, resp))
    check((resp.header("Content-Type") or "").startswith("application/json"),
          "Content-Type %r" % resp.header("Content-Type"))
    f = resp.json()
    check(re.fullmatch(r"file_[A-Za-z0-9_-]+", f.get("id", "")), "id %r" % f.get("id"))
    check(f.get("object") == "file", "object %r" % f.get("object"))
    check(f.get("bytes") == size, "bytes %r != %d" % (f.get("bytes"), size))
    check(f.get("filename") == filename, "filename %r != %r" % (f.get("filename"), filename))
    check(f.get("purpose") == "batch" and f.get("status") == "processed", repr(f))
    check("expires_at" in f and "created_at" in f, repr(f))
    return f


def expect_error(resp, status, code, param=None):
    """As the Python SDK reads an error: the class from the status, the fields from body["error"]."""
    check(resp.status == status, "status %d != %d: %r" % (resp.status, status, resp))
    check((resp.header("Content-Type") or "").startswith("application/json"), repr(resp.headers))
    err = resp.json().get("error")
    check(isinstance(err, dict), "no error object: %r" % resp)
    check(err.get("code") == code, "code %r != %r" % (err.get("code"), code))
    check(isinstance(err.get("message"), str) and err["message"], repr(err))
    check(isinstance(err.get("type"), str), repr(err))
    if param is not None:
        check(err.get("param") == param, "param %r != %r" % (err.get("param"), param))
    return err


class Suite:
    def __init__(self, stack, key, key_read):
        self.stack = stack
        self.sdk = PythonSDKWire(stack.port, key)
        self.sdk_read = PythonSDKWire(stack.port, key_read)
        self.sdk_bad = PythonSDKWire(stack.port, "sk-mel-notarealkey000000000000000000000000000000")
        self.dir = Path(stack.tmp) / "files"
        self.dir.mkdir()
        self.created = []  # ids, in creation order

    def write(self, name, data):
        p = self.dir / name
        p.write_bytes(data)
        return p

    def upload(self, name, data):
        resp = self.sdk.files_create(self.write(name, data))
        f = expect_ok_file(resp, len(data), Path(name).name)
        self.created.append(f["id"])
        return f

    # Each test_* method is one test.

    def test_upload_open_file_purpose_first_with_content_length(self):
        data = batch_jsonl(3, "py-open")
        p = self.write("requests.jsonl", data)
        resp = self.sdk.files_create(p)
        f = expect_ok_file(resp, len(data), "requests.jsonl")
        self.created.append(f["id"])
        method, path, headers = self.sdk.sent[-1]
        names = [k for k, _ in headers]
        check("Content-Length" in names and "Transfer-Encoding" not in names, names)
        got = self.sdk.files_content(f["id"])
        check(got.status == 200 and got.body == data, "content differs: %r" % got)

    def test_filename_with_double_quotes_sent_as_pct22(self):
        name = 'report "final" v2.jsonl'
        check(format_form_param("filename", name) == b'filename="report %22final%22 v2.jsonl"',
              "httpx encoding reproduced")
        data = batch_jsonl(2, "py-quote")
        f = self.upload(name, data)
        check(f["filename"] == name, f["filename"])
        r = self.sdk.files_retrieve(f["id"])
        check(r.status == 200 and r.json()["filename"] == name, repr(r))
        got = self.sdk.files_content(f["id"])
        check(got.body == data, "content differs")
        cd = got.header("Content-Disposition") or ""
        check(cd.startswith("attachment"), cd)
        m = re.search(r'filename="((?:[^"\\]|\\.)*)"', cd)
        check(m is not None, "quoted filename in %r" % cd)

    def test_filename_with_backslash_sent_as_double_backslash(self):
        # On disk the name is a\b.jsonl (Path(...).name keeps the backslash on
        # POSIX); httpx sends filename="a\\b.jsonl"; the service decodes the
        # quoted-pair and keeps the part after the last backslash (README).
        name = "a\\b.jsonl"
        check(format_form_param("filename", name) == b'filename="a\\\\b.jsonl"', "httpx encoding reproduced")
        data = batch_jsonl(1, "py-bslash")
        resp = self.sdk.files_create(self.write(name, data))
        f = expect_ok_file(resp, len(data), "b.jsonl")
        self.created.append(f["id"])

    def test_filename_non_ascii_raw_utf8(self):
        name = "données-été 漢字.jsonl"
        check(format_form_param("filename", name) == ('filename="%s"' % name).encode(), "raw UTF-8")
        data = batch_jsonl(1, "py-utf8")
        f = self.upload(name, data)
        check(f["filename"] == name, f["filename"])

    def test_filename_with_newline_is_refused_not_misstored(self):
        # httpx sends %0A for a LF; the name then holds a control character:
        # 400 VALIDATION_4001 (the README's filename rule), nothing stored.
        name = "two\nlines.jsonl"
        check(format_form_param("filename", name) == b'filename="two%0Alines.jsonl"', "httpx encoding")
        data = batch_jsonl(1, "py-lf")
        resp = self.sdk.files_create(self.write(name, data))
        expect_error(resp, 400, "VALIDATION_4001")

    def test_content_accept_binary_byte_exact(self):
        data = (json.dumps({"custom_id": "x1", "method": "POST", "url": BATCH_URL, "body": {"s": "\u2028 \"q\" \\"}})
                + "\r\n\n  \n"
                + json.dumps({"custom_id": "x2", "method": "POST", "url": BATCH_URL,
                              "body": {"e": "\U0001F600 \\ud83d"}}, ensure_ascii=False)).encode()
        f = self.upload("exact.jsonl", data)
        got = self.sdk.files_content(f["id"])
        _, _, headers = self.sdk.sent[-1]
        check(("Accept", "application/binary") in headers, headers)
        check(got.status == 200, repr(got))
        check(got.body == data, "content differs: %r vs %r" % (got.body[:80], data[:80]))
        check(got.header("Content-Type") == "application/jsonl", got.header("Content-Type"))
        check(got.header("Content-Length") == str(len(data)), got.header("Content-Length"))

    def test_larger_file_in_64k_chunks(self):
        lines, size, i = [], 0, 0
        while size < 3 * 1024 * 1024:
            line = json.dumps({"custom_id": "big-%d" % i, "method": "POST", "url": BATCH_URL,
                               "body": {"t": "é" * (i % 500)}}, ensure_ascii=False)
            lines.append(line)
            size += len(line.encode()) + 1
            i += 1
        data = ("\n".join(lines) + "\n").encode()
        f = self.upload("big.jsonl", data)
        check(self.sdk.files_content(f["id"]).body == data, "content differs")

    def test_list_auto_pagination_limit_2(self):
        for i in range(3):
            self.upload("page-%d.jsonl" % i, batch_jsonl(1, "py-page-%d" % i))
        seen, pages = [], 0
        for resp, items in self.sdk.files_list(limit=2):
            check(resp.status == 200, repr(resp))
            pages += 1
            seen += [x["id"] for x in items]
        check(pages > 2, "pages %d" % pages)
        check(len(seen) == len(set(seen)), "an id twice")
        expected = list(reversed(self.created))
        check(seen == expected, "order/ids: %r != %r" % (seen, expected))
        # the SDK's next-page query: the same params plus after=<last id>
        _, path, _ = self.sdk.sent[-1]
        check(re.search(r"[?&]limit=2&after=file_", path), path)

    def test_retrieve_and_delete(self):
        f = self.upload("delete-me.jsonl", batch_jsonl(1, "py-del"))
        r = self.sdk.files_retrieve(f["id"])
        check(r.status == 200 and r.json() == f, "retrieve %r != %r" % (r, f))
        _, _, headers = self.sdk.sent[-1]
        check("Content-Type" not in [k for k, _ in headers], "GET carries no Content-Type")
        d = self.sdk.files_delete(f["id"])
        _, _, headers = self.sdk.sent[-1]
        check(("Content-Type", "application/json") in headers and
              "Content-Length" not in [k for k, _ in headers], "DELETE as httpx sends it")
        check(d.status == 200, repr(d))
        check(d.json() == {"id": f["id"], "object": "file", "deleted": True}, repr(d))
        self.created.remove(f["id"])
        expect_error(self.sdk.files_retrieve(f["id"]), 404, "INFERENCE_3302")
        expect_error(self.sdk.files_content(f["id"]), 404, "INFERENCE_3302")
        expect_error(self.sdk.files_delete(f["id"]), 404, "INFERENCE_3302")

    def test_errors_as_the_sdk_reads_them(self):
        expect_error(self.sdk.files_retrieve("file_doesnotexist000000000000"), 404, "INFERENCE_3302")
        bad_line = json.dumps({"custom_id": "ok", "method": "POST", "url": BATCH_URL, "body": {}})
        resp = self.sdk.files_create(self.write("bad.jsonl", (bad_line + '\n{"a":1,}\n').encode()))
        err = expect_error(resp, 400, "INFERENCE_3303", param="file")
        check(err.get("details", {}).get("line") == 2, repr(err))
        resp = self.sdk.files_create(self.write("ft.jsonl", batch_jsonl(1, "py-ft")), purpose="fine-tune")
        expect_error(resp, 400, "VALIDATION_4007", param="purpose")
        err = expect_error(self.sdk_bad.files_retrieve("file_x"), 401, "AUTH_1008")
        check(err["type"] == "authentication_error", repr(err))
        err = expect_error(self.sdk_read.files_create(self.write("ro.jsonl", batch_jsonl(1, "py-ro"))),
                           403, "AUTH_1015")
        check(err["type"] == "permission_error", repr(err))
        _, items = next(self.sdk.files_list(limit=100))
        check([x["id"] for x in items] == list(reversed(self.created)), "a refused upload left something")


def main():
    if not (BIN_DIR / "filesctl").exists():
        print("sdk_python_wire: no programs in %s (run make first)" % BIN_DIR, file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    stack = Stack()
    passed = failed = 0
    try:
        stack.start()
        key = stack.create_key("py-main", "*")
        key_read = stack.create_key("py-main", "files.read")
        suite = Suite(stack, key, key_read)
        print("== python SDK wire tests against http://127.0.0.1:%d (%s)" % (stack.port, BIN_DIR))
        for name in [n for n in Suite.__dict__ if n.startswith("test_")]:
            try:
                getattr(suite, name)()
                passed += 1
                print("ok - %s" % name)
            except Exception as e:  # noqa: BLE001 - a test's failure, reported
                failed += 1
                print("FAIL - %s: %s" % (name, e))
                if not isinstance(e, Failure):
                    traceback.print_exc()
        for c in (suite.sdk, suite.sdk_read, suite.sdk_bad):
            c.close()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        failed += 1
    finally:
        if failed:
            print("== last lines of serve.log")
            print("\n".join(stack.log().splitlines()[-30:]))
        stack.stop()
    print()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
