"""How a worker ends a FastCGI connection, seen from the web server's side.

A worker runs under spawn-fcgi with no web server in front; the test speaks
FastCGI to its socket itself. When the server has sent all of a request's input,
the worker closes the connection at once; when input is left unread (a body
refused before it was read), it shuts down its side and keeps reading until the
server's EOF, so that the unread bytes cannot reset the connection and lose the
response. On a connection the server keeps, input left unread is read off
after the answer, so that the next request finds the connection clean.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import BIN_DIR, batch_jsonl, read_to_end

FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT = 1, 3, 4, 5, 6
RESPONDER = 1


def record(kind, content=b"", request_id=1):
    return struct.pack(">BBHHBx", 1, kind, request_id, len(content), 0) + content


def name_value(name, value):
    def length(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    name, value = name.encode(), value.encode()
    return length(len(name)) + length(len(value)) + name + value


def request_bytes(params, body=b"", end_input=True, keep=False):
    """keep: FCGI_KEEP_CONN, the web server keeps the connection for more requests."""
    out = record(FCGI_BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER, 1 if keep else 0))
    out += record(FCGI_PARAMS, b"".join(name_value(k, v) for k, v in params.items()))
    out += record(FCGI_PARAMS)
    for at in range(0, len(body), 65535):
        out += record(FCGI_STDIN, body[at:at + 65535])
    if end_input:
        out += record(FCGI_STDIN)
    return out


def read_response(sock):
    """Reads records up to FCGI_END_REQUEST; returns the stdout bytes."""
    data, stdout = b"", b""
    while True:
        while len(data) >= 8:
            _, kind, _, length, padding = struct.unpack(">BBHHB", data[:7])
            if len(data) < 8 + length + padding:
                break
            content, data = data[8:8 + length], data[8 + length + padding:]
            if kind == FCGI_STDOUT:
                stdout += content
            elif kind == FCGI_END_REQUEST:
                return stdout
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before FCGI_END_REQUEST")
        data += chunk


def peer_still_reads(sock):
    """After the worker's EOF: True if it still reads what we send (a lingering
    close), False if its socket is closed (EPIPE or a reset)."""
    sock.settimeout(10)
    if sock.recv(1) != b"":
        raise AssertionError("bytes after FCGI_END_REQUEST")
    try:
        sock.sendall(b"\0" * 8)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


@unittest.skipIf(os.environ.get("FILES_API_SERVER", "lighttpd") != "lighttpd",
                 "no web server in this test: it runs once, with the default server's suite")
class FastCgiCloseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("spawn-fcgi"):
            raise unittest.SkipTest("spawn-fcgi is not installed")
        cls.tmp = tempfile.mkdtemp(prefix="files-api-fcgi-close.")
        cls.data = os.path.join(cls.tmp, "data")
        os.mkdir(cls.data, 0o700)
        cls.socket_path = os.path.join(cls.tmp, "fcgi.sock")
        ctl = [str(BIN_DIR / "filesctl"), "--data-dir", cls.data]
        cls.key = subprocess.run(ctl + ["keys", "create", "--account", "close", "--scopes", ""],
                                 check=True, capture_output=True, text=True).stdout.strip()
        src = os.path.join(cls.tmp, "in.jsonl")
        with open(src, "wb") as f:
            f.write(batch_jsonl(2))
        listed = subprocess.run(ctl + ["files", "import", "--account", "close", "--purpose",
                                       "batch", src], check=True, capture_output=True, text=True)
        cls.file_id = json.loads(listed.stdout)["id"]
        cls.log_path = os.path.join(cls.tmp, "worker.log")
        with open(cls.log_path, "wb") as log:
            cls.worker = subprocess.Popen(
                ["spawn-fcgi", "-n", "-s", cls.socket_path, "--", str(BIN_DIR / "files-fcgi"),
                 "--data-dir", cls.data], stderr=log)
        cls.addClassCleanup(cls.stop_worker)
        deadline = time.monotonic() + 30
        while not os.path.exists(cls.socket_path):
            if time.monotonic() > deadline or cls.worker.poll() is not None:
                raise RuntimeError("the worker did not start")
            time.sleep(0.05)

    @classmethod
    def stop_worker(cls):
        cls.worker.terminate()
        cls.worker.wait(20)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tearDown(self):
        # A worker that died after answering would also refuse our bytes.
        self.assertIsNone(self.worker.poll(), "the worker exited")

    def params(self, method, path, **extra):
        params = {"REQUEST_METHOD": method, "REQUEST_URI": path, "SCRIPT_NAME": "",
                  "PATH_INFO": path, "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1",
                  "HTTP_AUTHORIZATION": "Bearer " + self.key}
        params.update(extra)
        return params

    def exchange(self, data):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.settimeout(30)
        sock.connect(self.socket_path)
        sock.sendall(data)
        return sock, read_response(sock)

    def test_all_input_sent_closes_at_once(self):
        sock, out = self.exchange(request_bytes(
            self.params("GET", "/v1/files/" + self.file_id, CONTENT_LENGTH="0")))
        self.assertTrue(out.startswith(b"Status: 200"), out[:200])
        self.assertIn(self.file_id.encode(), out)
        self.assertFalse(peer_still_reads(sock))

    def test_body_read_to_its_end_closes_at_once(self):
        content = batch_jsonl(3)
        body = (b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n'
                b'Content-Type: application/jsonl\r\n\r\n' + content + b'\r\n--b--\r\n')
        sock, out = self.exchange(request_bytes(
            self.params("POST", "/v1/files", CONTENT_LENGTH=str(len(body)),
                        CONTENT_TYPE="multipart/form-data; boundary=b"), body))
        self.assertTrue(out.startswith(b"Status: 200"), out[:300])
        self.assertFalse(peer_still_reads(sock))

    def test_the_access_line_escapes_a_method_no_web_server_would_pass_on(self):
        # A client on the socket itself may send any bytes as the method: raw,
        # they split the access line and reached the terminal of whoever read it.
        method = "G\n\x1b[1mforged x=1"  # (16 bytes: the most the line takes)
        sock, out = self.exchange(request_bytes(self.params(method, "/healthz")))
        self.assertTrue(out.startswith(b"Status: 405"), out[:200])
        deadline = time.monotonic() + 5
        while b"forged" not in open(self.log_path, "rb").read() and time.monotonic() < deadline:
            time.sleep(0.05)
        (line,) = [l for l in open(self.log_path, "rb").read().splitlines() if b"forged" in l]
        self.assertTrue(line.startswith(b"access method=G\\x0a\\x1b[1mforged\\x20x\\x3d1 "
                                        b"path=\"/healthz\" status=405 "), line)

    def test_a_body_that_pauses_longer_than_the_parameters_may_is_still_read(self):
        # The parameters' reads are bounded (5 s, PARAMS_SECONDS); a body's are
        # not: Apache forwards a slow client's body as it comes, pauses and all.
        content = batch_jsonl(3)
        body = (b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n'
                b'Content-Type: application/jsonl\r\n\r\n' + content + b'\r\n--b--\r\n')
        half = len(body) // 2
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.settimeout(30)
        sock.connect(self.socket_path)
        sock.sendall(request_bytes(
            self.params("POST", "/v1/files", CONTENT_LENGTH=str(len(body)),
                        CONTENT_TYPE="multipart/form-data; boundary=b"), body[:half],
            end_input=False))
        time.sleep(6)
        sock.sendall(record(FCGI_STDIN, body[half:]) + record(FCGI_STDIN))
        out = read_response(sock)
        self.assertTrue(out.startswith(b"Status: 200"), out[:300])
        self.assertEqual(json.loads(out.split(b"\r\n\r\n", 1)[1])["bytes"], len(content))

    def test_undeclared_length_gets_a_lingering_close(self):
        # nginx and Apache send no CONTENT_LENGTH for a GET: a body might still
        # be coming, so the worker answers without waiting for it, then lingers.
        sock, out = self.exchange(request_bytes(
            self.params("GET", "/v1/files/" + self.file_id), end_input=False))
        self.assertTrue(out.startswith(b"Status: 200"), out[:200])
        self.assertTrue(peer_still_reads(sock))

    def test_input_left_unread_gets_a_lingering_close(self):
        # A body far over the limit: refused from its Content-Length, unread.
        body = b"x" * 4096
        sock, out = self.exchange(request_bytes(
            self.params("POST", "/v1/files", CONTENT_LENGTH=str(10 ** 10),
                        CONTENT_TYPE="multipart/form-data; boundary=b"), body, end_input=False))
        self.assertTrue(out.startswith(b"Status: 413"), out[:200])
        self.assertTrue(peer_still_reads(sock))

    def test_past_256_lingering_connections_the_next_is_closed_at_once(self):
        # The lingering closes run on a thread of the worker's (linger.h), at
        # most 256 at once: one more is closed at once rather than hold the
        # worker, as libfcgi's close in the request loop did.
        body = b"x" * 4096
        request = request_bytes(
            self.params("POST", "/v1/files", CONTENT_LENGTH=str(10 ** 10),
                        CONTENT_TYPE="multipart/form-data; boundary=b"), body, end_input=False)
        socks = []
        for _ in range(257):
            sock, out = self.exchange(request)
            self.assertTrue(out.startswith(b"Status: 413"), out[:200])
            socks.append(sock)
        time.sleep(0.2)  # (its close follows the shutdown its reader sees first)
        self.assertFalse(peer_still_reads(socks[256]))
        self.assertTrue(peer_still_reads(socks[255]))
        self.assertTrue(peer_still_reads(socks[0]))

    def refused_unread(self):
        body = b"x" * 4096
        return request_bytes(
            self.params("POST", "/v1/files", CONTENT_LENGTH=str(10 ** 10),
                        CONTENT_TYPE="multipart/form-data; boundary=b"), body, end_input=False)

    def test_a_lingering_close_ends_after_its_2_s(self):
        # A peer that keeps the connection open and sends nothing more is
        # waited for 2 s (LINGER_SECONDS), then the connection is closed.
        sock, out = self.exchange(self.refused_unread())
        started = time.monotonic()
        self.assertTrue(out.startswith(b"Status: 413"), out[:200])
        self.assertTrue(peer_still_reads(sock))
        time.sleep(max(0, started + 3.5 - time.monotonic()))  # 2 s, in whole seconds, polled
        with self.assertRaises((BrokenPipeError, ConnectionResetError)):
            sock.sendall(b"\0" * 8)

    def worker_cpu_seconds(self):
        fields = open("/proc/%d/stat" % self.worker.pid).read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def test_a_lingering_close_ends_once_the_peer_closes(self):
        # The peer's end of input frees the connection's place at once: held
        # until its 2 s, the lingering thread would spin on the closed socket
        # (and keep one of the 256 places).
        sock, out = self.exchange(self.refused_unread())
        self.assertTrue(out.startswith(b"Status: 413"), out[:200])
        self.assertTrue(peer_still_reads(sock))  # (the unread body is drained meanwhile)
        time.sleep(0.2)
        sock.close()
        before = self.worker_cpu_seconds()
        time.sleep(0.8)
        self.assertLess(self.worker_cpu_seconds() - before, 0.3)

    def test_a_kept_connection_takes_the_next_request_after_a_body_refused_unread(self):
        # A body refused before it was read (a wrong key, content type or
        # purpose), which the web server sent whole, is read off the kept
        # connection: left there, it met libfcgi as the next request's first
        # record, and the connection was dropped unanswered.
        body = b"x" * 300_000
        upload = self.upload_body("kept") + b"y" * 300_000
        cases = [
            ("text/plain", body, {}, b"Status: 400"),
            ("multipart/form-data; boundary=b", upload,
             {"HTTP_AUTHORIZATION": "Bearer sk-not-a-key"}, b"Status: 401"),
            ("multipart/form-data; boundary=b", upload.replace(b"\r\nbatch\r\n", b"\r\nnope\r\n"),
             {}, b"Status: 400"),
        ]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.settimeout(30)
        sock.connect(self.socket_path)
        for content_type, content, extra, status in cases:
            with self.subTest(status=status, content_type=content_type):
                sock.sendall(request_bytes(self.params(
                    "POST", "/v1/files", CONTENT_LENGTH=str(len(content)),
                    CONTENT_TYPE=content_type, **extra), content, keep=True))
                self.assertTrue(read_response(sock).startswith(status))
                sock.sendall(request_bytes(self.params(
                    "GET", "/v1/files/" + self.file_id, CONTENT_LENGTH="0"), keep=True))
                self.assertTrue(read_response(sock).startswith(b"Status: 200"))

    def refused_while_coming(self, length):
        """A kept connection and a refused POST (401) of the declared length,
        of which only the first 1000 bytes were sent."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.settimeout(10)
        sock.connect(self.socket_path)
        sock.sendall(request_bytes(self.params(
            "POST", "/v1/files", CONTENT_LENGTH=str(length), CONTENT_TYPE="multipart/form-data; boundary=b",
            HTTP_AUTHORIZATION="Bearer sk-not-a-key"), b"x" * 1000, end_input=False, keep=True))
        return sock

    def test_a_refused_body_still_coming_within_the_bounds_keeps_the_connection(self):
        # The rest arrives in pieces 0.6 s apart (each read waits up to 1 s),
        # 3 s in all (the whole drain up to 5 s): the next request is answered.
        sock = self.refused_while_coming(6000)
        for _ in range(5):
            time.sleep(0.6)
            sock.sendall(record(FCGI_STDIN, b"x" * 1000))
        sock.sendall(record(FCGI_STDIN))
        self.assertTrue(read_response(sock).startswith(b"Status: 401"))
        # (a web server sends the next request once this one has ended)
        sock.sendall(request_bytes(self.params(
            "GET", "/v1/files/" + self.file_id, CONTENT_LENGTH="0"), keep=True))
        self.assertTrue(read_response(sock).startswith(b"Status: 200"))

    def test_a_refused_body_still_coming_holds_a_kept_connection_only_for_the_bound(self):
        # A web server that passes a body on as it comes (nginx with
        # fastcgi_request_buffering off) keeps the connection: the refusal is
        # sent at once (before the request ends), and the rest of the body,
        # stalled at the client, is waited for only a while before the
        # connection is closed.
        started = time.monotonic()
        sock = self.refused_while_coming(1000000)
        seen = b""
        while b"Status: 401" not in seen:
            piece = sock.recv(65536)
            self.assertTrue(piece, "closed before the answer")
            seen += piece
        self.assertLess(time.monotonic() - started, 0.8)  # before the first read's 1 s
        seen += read_to_end(sock)  # closed: nothing more is read on it
        self.assertLess(time.monotonic() - started, 9)
        self.assertIn(self.file_id, self.ids_listed())  # the worker takes new connections

    def upload_body(self, marker):
        content = batch_jsonl(3, tag=marker)
        return (b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n'
                b'Content-Type: application/jsonl\r\n\r\n' + content + b'\r\n--b--\r\n')

    def ids_listed(self):
        """Every stored file's id; the worker answers one request at a time,
        so an upload sent before this has been dealt with."""
        _, out = self.exchange(request_bytes(self.params("GET", "/v1/files?limit=100",
                                                         QUERY_STRING="limit=100",
                                                         CONTENT_LENGTH="0")))
        self.assertTrue(out.startswith(b"Status: 200"), out[:200])
        return [f["id"] for f in json.loads(out.split(b"\r\n\r\n", 1)[1])["data"]]

    def test_a_body_shorter_than_its_declared_length_is_refused(self):
        # A web server that passes the body on as it comes (Apache) ends the
        # input early when its client goes away before sending all it declared.
        before = self.ids_listed()
        body = self.upload_body("short-body")
        sock, out = self.exchange(request_bytes(
            self.params("POST", "/v1/files", CONTENT_LENGTH=str(len(body) + 10),
                        CONTENT_TYPE="multipart/form-data; boundary=b"), body))
        self.assertTrue(out.startswith(b"Status: 400"), out[:300])
        error = json.loads(out.split(b"\r\n\r\n", 1)[1])["error"]
        self.assertEqual(error["code"], "VALIDATION_4001")
        self.assertIn("cut off", error["message"])
        self.assertEqual(self.ids_listed(), before)

    def test_a_body_cut_off_by_a_broken_connection_is_not_stored(self):
        # The web server forwarded the whole multipart body, then closed the
        # connection without ending the input: with and without a length.
        before = self.ids_listed()
        for declared in (True, False):
            body = self.upload_body("broken-connection")
            extra = {"CONTENT_LENGTH": str(len(body) + 10)} if declared else {}
            sock = self.connect()
            sock.sendall(request_bytes(
                self.params("POST", "/v1/files", CONTENT_TYPE="multipart/form-data; boundary=b",
                            **extra), body, end_input=False))
            time.sleep(0.2)
            sock.close()
            self.assertEqual(self.ids_listed(), before, "declared length: %s" % declared)

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.settimeout(30)
        sock.connect(self.socket_path)
        return sock

    def test_a_connection_stalled_after_one_that_closed_holds_the_worker_only_for_the_bound(self):
        # The worker takes the first connection, which closes before sending
        # anything; the second, queued, stops after its FCGI_BEGIN_REQUEST.
        # libfcgi would take that one itself and wait for its parameters without
        # a bound; the worker's own bound (5 s for a request's parameters, then
        # up to 2 s of libfcgi's closing) must hold, so that the third is answered.
        closing = self.connect()
        stalled = self.connect()
        stalled.sendall(request_bytes(self.params("GET", "/healthz"))[:16])  # BEGIN only
        time.sleep(0.5)  # the worker has taken the first
        closing.close()
        time.sleep(0.5)
        started = time.monotonic()
        sock, out = self.exchange(request_bytes(
            self.params("GET", "/healthz", CONTENT_LENGTH="0")))
        self.assertTrue(out.startswith(b"Status: 200"), out[:200])
        self.assertLess(time.monotonic() - started, 20)
        stalled.close()


if __name__ == "__main__":
    unittest.main()
