"""Content downloads: Range (206 with Content-Range for a-b, a- and -n; 416
when unsatisfiable; several ranges answered whole), ETag with If-None-Match
(304), If-Match (412) and If-Range, Last-Modified with If-Modified-Since (304)
and If-Unmodified-Since (412), HEAD; and serve.sh's default hand-off to the web server (X-Sendfile
for lighttpd and Apache, X-Accel-Redirect for nginx), byte-identical and still
authorized; --download-mode stream, and a hand-off the server cannot take; no
file outside the content directory is sent, whatever a worker names."""

import email.utils
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import unittest

from harness import (BIN_DIR, SERVE, ApiTestCase, Client, ContentGen, Stack, batch_jsonl,
                     free_port, scripts_only)

SERVER = os.environ.get("FILES_API_SERVER") or "lighttpd"
# What serve.sh hands downloads to by default (see its header); None: streamed.
XSENDFILE_MODULE = os.path.exists("/usr/lib/apache2/modules/mod_xsendfile.so")
HAND_OFF = {"lighttpd": "x-sendfile", "lighttpd-spawn": "x-sendfile",
            "nginx": "x-accel-redirect",
            "apache-fcgid": "x-sendfile" if XSENDFILE_MODULE else None,
            "apache": "x-sendfile" if XSENDFILE_MODULE and os.geteuid() != 0 else None}[SERVER]


OLD_DATE = "Thu, 01 Jan 1990 00:00:00 GMT"


class RangeAndETagTest(ApiTestCase):
    """With serve.sh's default (the web server sends whole files)."""
    SERVE_ARGS = []

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(workers=2, name="ranges", serve_args=cls.SERVE_ARGS).start()
        cls.client = cls.stack.new_client()
        cls.content = batch_jsonl(40)
        cls.file_id = cls.client.upload_ok(cls.content)["id"]

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def get(self, **headers):
        return self.client.content(self.file_id, headers=headers)

    def test_ranges(self):
        size = len(self.content)
        for header, first, last in (("bytes=0-9", 0, 9), ("bytes=10-", 10, size - 1),
                                    ("bytes=-25", size - 25, size - 1),
                                    ("bytes=5-999999", 5, size - 1),
                                    ("bytes=-999999", 0, size - 1)):
            with self.subTest(range=header):
                resp = self.get(Range=header)
                self.assertEqual(resp.status, 206, resp.body[:200])
                self.assertEqual(resp.body, self.content[first:last + 1])
                self.assertEqual(resp.header("Content-Range"),
                                 "bytes %d-%d/%d" % (first, last, size))
                self.assertEqual(int(resp.header("Content-Length")), last - first + 1)

    def test_unsatisfiable_and_ignored_ranges(self):
        size = len(self.content)
        resp = self.get(Range="bytes=%d-" % size)
        self.assertError(resp, 416, "VALIDATION_4002")
        self.assertEqual(resp.header("Content-Range"), "bytes */%d" % size)
        for header in ("bytes=9-2", "items=0-1"):
            resp = self.get(Range=header)
            self.assertEqual(resp.status, 200, header)
            self.assertEqual(resp.body, self.content)
        # Several ranges: the whole content (RFC 9110 allows ignoring Range);
        # no web server cuts it into multipart/byteranges behind the worker.
        resp = self.get(Range="bytes=0-1,5-6")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, self.content)

    def test_etag_and_if_none_match(self):
        resp = self.get()
        etag = resp.header("ETag")
        self.assertRegex(etag, r'^"[0-9a-f]{32}"$')
        self.assertEqual(self.get(**{"If-None-Match": etag}).status, 304)
        self.assertEqual(self.get(**{"If-None-Match": '"other", ' + etag}).status, 304)
        self.assertEqual(self.get(**{"If-None-Match": '"other"'}).status, 200)
        other = self.client.upload_ok(batch_jsonl(41))["id"]
        self.assertNotEqual(self.client.content(other).header("ETag"), etag)

    def test_if_match_and_if_range(self):
        etag = self.get().header("ETag")
        for header in (etag, "*", '"other", ' + etag):
            resp = self.get(**{"If-Match": header})
            self.assertEqual(resp.status, 200, header)
            self.assertEqual(resp.body, self.content)
        for header in ('"other"', "W/" + etag):  # If-Match compares strongly
            resp = self.get(**{"If-Match": header})
            self.assertError(resp, 412, "VALIDATION_4002")
            self.assertEqual(resp.json()["error"]["param"], "If-Match")
        # If-Match is judged before If-None-Match, and HEAD alike
        resp = self.get(**{"If-Match": '"other"', "If-None-Match": etag})
        self.assertError(resp, 412, "VALIDATION_4002")
        resp = self.client.request("HEAD", "/v1/files/%s/content" % self.file_id,
                                   headers={"If-Match": '"other"'})
        self.assertEqual((resp.status, resp.body), (412, b""))
        # If-Match met: If-Unmodified-Since is not looked at (RFC 9110 §13.2.2)
        resp = self.get(**{"If-Match": etag, "If-Unmodified-Since": OLD_DATE})
        self.assertEqual((resp.status, resp.body), (200, self.content))
        resp = self.get(Range="bytes=0-9", **{"If-Range": etag})
        self.assertEqual((resp.status, resp.body), (206, self.content[:10]))
        for other in ('"other"', "W/" + etag, '"other", ' + etag,
                      "Thu, 01 Jan 2099 00:00:00 GMT"):
            resp = self.get(Range="bytes=0-9", **{"If-Range": other})
            self.assertEqual((resp.status, resp.body), (200, self.content), other)
        # a Range that If-Range voids is not judged either: no 416
        resp = self.get(Range="bytes=%d-" % len(self.content), **{"If-Range": '"other"'})
        self.assertEqual((resp.status, resp.body), (200, self.content))

    def test_last_modified_and_the_date_conditions(self):
        # The content file's mtime, from the worker or the web server alike, on
        # GET, HEAD, ranges and 304s.
        path = self.stack.content_path(self.file_id)
        mtime = email.utils.formatdate(int(os.stat(path).st_mtime), usegmt=True)
        head = self.client.request("HEAD", "/v1/files/%s/content" % self.file_id)
        for resp in (self.get(), head, self.get(Range="bytes=0-9"),
                     self.get(**{"If-None-Match": self.get().header("ETag")})):
            self.assertEqual(resp.header("Last-Modified"), mtime, resp.status)
        later = email.utils.formatdate(int(os.stat(path).st_mtime) + 60, usegmt=True)
        cases = [({"If-Modified-Since": mtime}, 304), ({"If-Modified-Since": later}, 304),
                 ({"If-Modified-Since": OLD_DATE}, 200),
                 ({"If-Modified-Since": "not a date"}, 200),
                 # nor is the mtime with another zone or none (RFC 9110 §13.1.3:
                 # ignored); nginx's parser takes them, so it must not judge again
                 ({"If-Modified-Since": mtime.replace("GMT", "UTC")}, 200),
                 ({"If-Modified-Since": mtime[:-len(" GMT")]}, 200),
                 # If-None-Match, when sent, decides instead of If-Modified-Since
                 ({"If-Modified-Since": mtime, "If-None-Match": '"other"'}, 200),
                 ({"If-Unmodified-Since": mtime}, 200), ({"If-Unmodified-Since": later}, 200),
                 ({"If-Unmodified-Since": "not a date"}, 200),
                 ({"If-Unmodified-Since": OLD_DATE}, 412),
                 ({"If-Unmodified-Since": OLD_DATE, "If-Modified-Since": mtime}, 412)]
        for headers, status in cases:
            for method in ("GET", "HEAD"):
                with self.subTest(headers=headers, method=method):
                    resp = self.client.request(method, "/v1/files/%s/content" % self.file_id,
                                               headers=headers)
                    self.assertEqual(resp.status, status)
                    if status == 200:
                        self.assertEqual(resp.body, self.content if method == "GET" else b"")
                    if status == 412 and method == "GET":
                        self.assertError(resp, 412, "VALIDATION_4002",
                                         param="If-Unmodified-Since")

    def test_head(self):
        resp = self.client.request("HEAD", "/v1/files/%s/content" % self.file_id)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"")
        self.assertEqual(int(resp.header("Content-Length")), len(self.content))


class StreamedRangeAndETagTest(RangeAndETagTest):
    """The same with the workers sending the content."""
    SERVE_ARGS = ["--download-mode", "stream"]


class HandOffTest(ApiTestCase):
    """serve.sh hands downloads to the web server by default; the worker then
    sends headers only, which its access line shows as bytes=0."""

    def download_and_check(self, stack, client, size=5 * 1024 * 1024):
        gen = ContentGen(size)
        resp = client.upload_stream(gen)
        self.assertEqual(resp.status, 200, resp.body[:200])
        file_id = resp.json()["id"]
        got, digest, got_size = client.download_sha256(file_id)
        self.assertEqual(got.status, 200)
        self.assertEqual((digest, got_size), (gen.sent_sha256, gen.total))
        self.assertEqual(got.header("Content-Type"), "application/jsonl")
        self.assertTrue(got.header("Content-Disposition").startswith("attachment;"))
        for header in ("X-Sendfile", "X-Accel-Redirect"):
            self.assertIsNone(got.header(header), "the hand-off header reached the client")
        rid = got.header("X-Request-Id")
        self.assertIsNotNone(rid, "the worker's X-Request-Id was lost")
        text = stack.wait_for_log(lambda t: "request_id=" + rid in t)
        line = [l for l in text.splitlines() if l.endswith("request_id=" + rid)]
        self.assertEqual(len(line), 1, text[-2000:])
        return file_id, int(re.search(r" bytes=(\d+) ", line[0]).group(1)), gen.total

    def test_web_server_sends_the_file_by_default(self):
        stack = Stack(workers=2, name="handoff").start()
        self.addCleanup(stack.stop)
        client = stack.new_client()
        file_id, worker_bytes, size = self.download_and_check(stack, client)
        if HAND_OFF:
            self.assertEqual(worker_bytes, 0, "the worker sent the content itself")
        else:  # no hand-off this server can take here: the worker streams
            self.assertEqual(worker_bytes, size)
        # Ranges are still answered (by the worker) and authorization still applies.
        part = client.content(file_id, headers={"Range": "bytes=0-99"})
        self.assertEqual(part.status, 206)
        self.assertEqual(len(part.body), 100)
        stranger = stack.new_client()
        self.assertError(stranger.content(file_id), 404, "INFERENCE_3302")
        # The internal location is not reachable from outside.
        if HAND_OFF == "x-accel-redirect":
            direct = client.request("GET", "/_files_internal/%s/%s" % (file_id[-2:], file_id))
            self.assertNotEqual(direct.status, 200)

    def test_download_mode_from_the_environment(self):
        # $FILES_API_DOWNLOAD_MODE counts as --download-mode, "auto" included.
        for mode, name in (("auto", "env-auto"), ("stream", "env-stream")):
            with self.subTest(mode=mode):
                stack = Stack(workers=1, name=name, env={"FILES_API_DOWNLOAD_MODE": mode}).start()
                self.addCleanup(stack.stop)
                # For serve.sh only: "auto" is not a configuration value (filesctl refuses it).
                del stack.extra_env["FILES_API_DOWNLOAD_MODE"]
                _, worker_bytes, size = self.download_and_check(stack, stack.new_client(), 4096)
                self.assertEqual(worker_bytes, 0 if HAND_OFF and mode == "auto" else size)

    def test_stream_mode_has_the_worker_send_it(self):
        stack = Stack(workers=2, name="stream", serve_args=["--download-mode", "stream"]).start()
        self.addCleanup(stack.stop)
        # Several of the worker's 256 KiB reads, the last one short.
        _, worker_bytes, size = self.download_and_check(stack, stack.new_client(),
                                                        3 * 256 * 1024 + 123)
        self.assertEqual(worker_bytes, size)

    def test_a_hand_off_this_server_cannot_take_is_refused(self):
        wrong = "x-sendfile" if SERVER == "nginx" else "x-accel-redirect"
        tmp = tempfile.mkdtemp(prefix="files-api-it-mode-")
        self.addCleanup(shutil.rmtree, tmp, True)
        proc = subprocess.Popen([str(SERVE), "--server", SERVER, "--port", str(free_port()),
                                 "--data-dir", tmp, "--download-mode", wrong],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, FILES_API_BIN=str(BIN_DIR)),
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # it started after all: stop all of it
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            self.fail("serve.sh started with download_mode %s behind %s" % (wrong, SERVER))
        self.assertEqual(proc.returncode, 2, err)
        self.assertIn("download_mode %s does not work with %s" % (wrong, SERVER), err)


# A worker gone wrong (or taken over): it answers /healthz, and every other
# request with an X-Sendfile of the path after "/v1/files/", under its data
# directory. FastCGI on fd 0, one request per connection, standard library only.
ROGUE_WORKER = r"""#!/usr/bin/env python3
import os, socket, struct, sys
args = sys.argv[1:]
data = (args[args.index("--data-dir") + 1] if "--data-dir" in args
        else os.environ["FILES_API_DATA_DIR"])
listener = socket.socket(fileno=0)
def records(conn):
    buf = b""
    while True:
        while len(buf) < 8 or len(buf) < 8 + struct.unpack(">H", buf[4:6])[0] + buf[6]:
            piece = conn.recv(65536)
            if not piece:
                return
            buf += piece
        kind, length, pad = buf[1], struct.unpack(">H", buf[4:6])[0], buf[6]
        yield kind, buf[8:8 + length]
        buf = buf[8 + length + pad:]
def params(raw):
    out, at = {}, 0
    while at < len(raw):
        sizes = []
        for _ in range(2):
            if raw[at] & 0x80:
                sizes.append(struct.unpack(">I", raw[at:at + 4])[0] & 0x7FFFFFFF); at += 4
            else:
                sizes.append(raw[at]); at += 1
        out[raw[at:at + sizes[0]]] = raw[at + sizes[0]:at + sizes[0] + sizes[1]]
        at += sizes[0] + sizes[1]
    return out
while True:
    conn, _ = listener.accept()
    got = b""
    for kind, body in records(conn):
        if kind == 4:
            got += body
        if kind == 5 and not body:
            break
    uri = params(got).get(b"REQUEST_URI", b"/").decode()
    if uri.startswith("/healthz"):
        head = "Status: 200\r\nContent-Type: application/json\r\n\r\n{}\n"
    else:
        path = os.path.join(data, uri.split("/v1/files/", 1)[-1])
        head = "Status: 200\r\nContent-Type: text/plain\r\nX-Sendfile: %s\r\n\r\n" % path
    out = head.encode()
    conn.sendall(struct.pack(">BBHHBB", 1, 6, 1, len(out), 0, 0) + out
                 + struct.pack(">BBHHBB", 1, 6, 1, 0, 0, 0)
                 + struct.pack(">BBHHBBIB3x", 1, 3, 1, 8, 0, 0, 0, 0))
    conn.close()
"""


@unittest.skipUnless(HAND_OFF == "x-sendfile", "no X-Sendfile hand-off behind this server")
@scripts_only
class HandOffRootTest(ApiTestCase):
    def test_the_web_server_sends_no_file_outside_the_content_directory(self):
        # The web server sends what X-Sendfile names only under the data
        # directory's files/ (x-sendfile-docroot, XSendFilePath): not its
        # database, nor any other file a worker gone wrong would name.
        bin_dir = tempfile.mkdtemp(prefix="files-api-it-rogue-")
        self.addCleanup(shutil.rmtree, bin_dir, True)
        os.chmod(bin_dir, 0o755)  # mod_fcgid's www-data runs it
        os.symlink(BIN_DIR / "filesctl", os.path.join(bin_dir, "filesctl"))
        worker = os.path.join(bin_dir, "files-fcgi")
        with open(worker, "w") as f:
            f.write(ROGUE_WORKER)
        os.chmod(worker, 0o755)
        stack = Stack(workers=1, name="rogue", env={"FILES_API_BIN": bin_dir}).start()
        self.addCleanup(stack.stop)
        for name, content in (("files/zz/inside", b"content\n"), ("outside", b"secret\n"),
                              ("files.db-secret", b"secret\n")):
            path = os.path.join(stack.data_dir, name)
            os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
        client = Client(stack, None)
        inside = client.request("GET", "/v1/files/files/zz/inside")
        self.assertEqual((inside.status, inside.body), (200, b"content\n"))  # the hand-off works
        for name in ("outside", "files/../outside", "files.db-secret"):
            with self.subTest(name=name):
                resp = client.request("GET", "/v1/files/" + name)
                self.assertNotEqual(resp.status, 200, resp.body[:200])
                self.assertNotIn(b"secret", resp.body)
