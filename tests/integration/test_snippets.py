"""The web-server snippets shipped in conf/, as an operator installs them:
conf/apache-files-api.conf included in a configuration that denies every
directory and refuses TRACE, as Debian's apache2.conf and security.conf do, in
front of a worker on its socket;
conf/nginx-files-api.conf in a server block, in front of a pool that is gone
and in another, in front of a worker that hands downloads to nginx;
conf/lighttpd-files-api.conf, with X-Sendfile enabled as its comments say, in
front of a worker on its socket."""

import email.utils
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (BIN_DIR, REPO, Response, field_part, file_part, free_port, multipart,
                     once_is_enough, terminate)

MODULES = "/usr/lib/apache2/modules"


def installed_error_pages(tmp):
    """conf/errors/ as make install installs it, in tmp/errors."""
    errors = os.path.join(tmp, "errors")
    os.mkdir(errors, 0o755)
    for name in os.listdir(REPO / "conf/errors"):
        shutil.copy(REPO / "conf/errors" / name, errors)
    return errors


def wait_for_port(port, *procs):
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("the web server did not start")
        time.sleep(0.05)


def scratch_dir(cls, *programs):
    """Skips the class unless the programs are installed; else makes cls.tmp,
    removed with the class."""
    missing = [p for p in programs if not shutil.which(p)]
    if missing:
        raise unittest.SkipTest("%s not installed" % ", ".join(missing))
    cls.tmp = tempfile.mkdtemp(prefix="files-api-it-snippet-")
    cls.addClassCleanup(shutil.rmtree, cls.tmp, True)


def worker_pool(cls, socket_mode="0600", download_mode=None):
    """A data directory under cls.tmp with a key (cls.key), and a worker on a
    socket there, stopped with the class. Returns (data, socket path, pool)."""
    data = os.path.join(cls.tmp, "data")
    os.mkdir(data, 0o700)
    sock = os.path.join(cls.tmp, "fcgi.sock")
    cls.key = subprocess.run([str(BIN_DIR / "filesctl"), "--data-dir", data, "keys", "create",
                              "--account", "snippet", "--scopes", "*"],
                             check=True, capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, FILES_API_DOWNLOAD_MODE=download_mode) if download_mode else None
    pool = subprocess.Popen(["spawn-fcgi", "-n", "-s", sock, "-M", socket_mode, "--",
                             str(BIN_DIR / "files-fcgi"), "--data-dir", data],
                            env=env, stderr=subprocess.DEVNULL)
    cls.addClassCleanup(terminate, pool)
    return data, sock, pool


def wait_for_socket(path):
    for _ in range(600):  # spawn-fcgi's socket, 30 s at most
        if os.path.exists(path):
            return
        time.sleep(0.05)


def request(port, head):
    """The response, read up to its Content-Length (a server that refused a
    body lingers a while before it closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head.encode())
        raw = b""
        while True:
            head_end = raw.find(b"\r\n\r\n")
            if head_end >= 0 and len(raw) - head_end - 4 >= int(
                    Response.from_wire(raw).header("Content-Length", "0")):
                return Response.from_wire(raw)
            piece = s.recv(65536)
            if not piece:
                return Response.from_wire(raw)
            raw += piece


def upload(port, key, content):
    """Uploads content for batch through the web server on port; returns its id."""
    ctype, body = multipart([field_part("purpose", "batch"), file_part(content)])
    resp = request(port, "POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                         "Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (key, ctype, len(body), body.decode()))
    if resp.status != 200:
        raise AssertionError("upload: %d %r" % (resp.status, resp.body[:300]))
    return json.loads(resp.body)["id"]


@once_is_enough
class ApacheSnippetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        scratch_dir(cls, "apache2", "spawn-fcgi")
        os.chmod(cls.tmp, 0o755)  # Apache's children, not root, read the error pages
        errors = installed_error_pages(cls.tmp)
        _, sock, pool = worker_pool(cls, socket_mode="0666")
        snippet = (REPO / "conf/apache-files-api.conf").read_text()
        # /healthz in front of a pool that is gone, for Apache's own 503
        snippet = snippet.replace("unix:/run/files-api/fcgi.sock|fcgi://localhost/healthz",
                                  "unix:%s/gone.sock|fcgi://localhost/healthz" % cls.tmp)
        snippet = snippet.replace("/run/files-api/fcgi.sock", sock)
        snippet = snippet.replace("/usr/local/share/files-api/errors", errors)
        cls.port = free_port()
        conf = os.path.join(cls.tmp, "apache.conf")
        with open(conf, "w") as f:
            f.write("".join("LoadModule %s_module %s/mod_%s.so\n" % (m, MODULES, m) for m in (
                "mpm_event", "authz_core", "proxy", "proxy_fcgi", "alias", "env", "mime",
                "headers")))
            f.write("ServerName 127.0.0.1\nListen 127.0.0.1:%d\nPidFile %s/apache.pid\n"
                    "DefaultRuntimeDir %s\nMutex file:%s default\nErrorLog /dev/null\n"
                    "TypesConfig /dev/null\nTraceEnable Off\n"  # Debian's security.conf
                    "<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>\n"
                    % (cls.port, cls.tmp, cls.tmp, cls.tmp))
            f.write(snippet)
        apache = subprocess.Popen(["apache2", "-f", conf, "-DFOREGROUND"],
                                  stderr=subprocess.DEVNULL)
        cls.addClassCleanup(terminate, apache)
        wait_for_port(cls.port, apache, pool)
        wait_for_socket(sock)

    def request(self, head):
        return request(self.port, head)

    def test_the_worker_answers_through_it(self):
        resp = self.request("GET /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                            "Connection: close\r\n\r\n" % self.key)
        self.assertEqual(resp.status, 200, resp.body)
        self.assertIn(b'"object":"list"', resp.body)
        self.assertIsNone(resp.header("Vary"))  # the Transfer-Encoding check reads it unseen
        # The worker's exact length, not dropped for chunks (ap_trust_cgilike_cl).
        self.assertIsNone(resp.header("Transfer-Encoding"))
        self.assertEqual(resp.header("Content-Length"), str(len(resp.body)))

    def test_options_with_max_forwards_0_is_the_workers_to_refuse(self):
        # mod_proxy would answer it itself (200) were Max-Forwards not unset.
        for path, allow in (("/v1/files", "GET, HEAD, POST"), ("/healthz", None)):
            with self.subTest(path=path):
                resp = self.request("OPTIONS %s HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n"
                                    "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                                    % (path, self.key))
                if allow is None:  # /healthz's pool is gone: Apache's 503, not its 200
                    self.assertEqual(resp.status, 503, resp.body)
                    continue
                self.assertEqual(resp.status, 405, resp.body)
                self.assertEqual(json.loads(resp.body)["error"]["code"], "VALIDATION_4005")
                self.assertEqual(resp.header("Allow"), allow)

    def test_the_json_error_pages_are_no_route(self):
        resp = self.request("GET /_files_api_errors/413.json HTTP/1.1\r\nHost: x\r\n"
                            "Connection: close\r\n\r\n")
        self.assertEqual(resp.status, 404, resp.body)

    def test_trace_is_refused_in_json_with_the_routes_allow_header(self):
        # Debian's TraceEnable Off: Apache refuses TRACE itself; without it, the
        # worker does (Max-Forwards: 0 once made mod_proxy echo the request).
        cases = {"/v1/files": "GET, HEAD, POST", "/v1/%66iles/": "GET, HEAD, POST",
                 "/healthz": "GET, HEAD", "/v1/files/file_abc": "GET, HEAD, DELETE",
                 "/v1/files/file_abc/content?x=1": "GET, HEAD"}
        for path, allow in cases.items():
            with self.subTest(path=path):
                resp = self.request("TRACE %s HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n"
                                    "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                                    % (path, self.key))
                self.assertEqual(resp.status, 405, resp.body)
                self.assertTrue(resp.header("Content-Type", "").startswith("application/json"))
                self.assertNotIn(self.key.encode(), resp.body)
                self.assertEqual(resp.header("Allow"), allow)

    def test_a_transfer_coding_besides_chunked_is_refused_in_json(self):
        # Apache would pass the body on with the gzip still on.
        resp = self.request("POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                            "Content-Type: multipart/form-data; boundary=b\r\n"
                            "Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n"
                            "0\r\n\r\n" % self.key)
        self.assertEqual(resp.status, 501, resp.body)
        self.assertEqual(json.loads(resp.body)["error"]["code"], "VALIDATION_4001")

    def test_apaches_own_answers_on_the_routes_are_json(self):
        # /healthz's pool is gone (see setUpClass): Apache answers 503 itself.
        # Under a configuration that denies every directory, the error pages'
        # directory needs its grant, or Apache sends its HTML page instead.
        resp = self.request("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(resp.status, 503, resp.body)
        self.assertTrue(resp.header("Content-Type", "").startswith("application/json"))
        self.assertEqual(json.loads(resp.body)["error"]["code"], "SYSTEM_9003")
        self.assertEqual(resp.header("Retry-After"), "1")


@once_is_enough
class NginxSnippetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        scratch_dir(cls, "nginx", "spawn-fcgi")
        os.chmod(cls.tmp, 0o755)
        errors = installed_error_pages(cls.tmp)
        spool = os.path.join(cls.tmp, "spool")
        os.mkdir(spool)
        # Two server blocks with the snippet: one in front of a pool that is
        # gone, one in front of a pool that hands downloads to nginx.
        data, sock, _ = worker_pool(cls, download_mode="x-accel-redirect")
        snippet = (REPO / "conf/nginx-files-api.conf").read_text()
        snippet = snippet.replace("/usr/local/share/files-api/errors", errors)
        snippet = snippet.replace("/var/spool/files-api", spool)
        snippet = snippet.replace("/var/lib/files-api/files/", data + "/files/")
        snippet = snippet.replace("include fastcgi_params;", "include /etc/nginx/fastcgi_params;")
        cls.port, cls.live_port = free_port(), free_port()
        conf = os.path.join(cls.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write("daemon off;\nuser root;\npid %s/nginx.pid;\nerror_log /dev/null;\n"
                    "events {}\nhttp {\naccess_log off;\n" % cls.tmp)
            for temp in ("fastcgi", "proxy", "uwsgi", "scgi"):
                f.write("%s_temp_path %s/%s;\n" % (temp, cls.tmp, temp))
            for port, pool_sock in ((cls.port, os.path.join(cls.tmp, "gone.sock")),
                                    (cls.live_port, sock)):
                f.write("server {\nlisten 127.0.0.1:%d;\n%s\n}\n"
                        % (port, snippet.replace("/run/files-api/fcgi.sock", pool_sock)))
            f.write("}\n")
        nginx = subprocess.Popen(["nginx", "-c", conf], stderr=subprocess.DEVNULL)
        cls.addClassCleanup(terminate, nginx)
        wait_for_port(cls.port, nginx)
        wait_for_port(cls.live_port, nginx)
        wait_for_socket(sock)

    def test_a_pool_that_is_gone_is_a_json_error(self):
        resp = request(self.port, "GET /v1/files HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(resp.status, 502, resp.body)
        self.assertTrue(resp.header("Content-Type", "").startswith("application/json"))
        self.assertEqual(json.loads(resp.body)["error"]["code"], "SYSTEM_9001")

    def test_a_body_over_nginxs_limit_is_a_json_error(self):
        resp = request(self.port, "POST /v1/files HTTP/1.1\r\nHost: x\r\n"
                                  "Content-Length: 111149057\r\nConnection: close\r\n\r\n")
        self.assertEqual(resp.status, 413, resp.body)
        self.assertEqual(json.loads(resp.body)["error"]["code"], "VALIDATION_4016")

    def test_the_internal_locations_are_no_route(self):
        # The content files (X-Accel-Redirect's target) and the error pages
        # are nginx's to send on the worker's or its own behalf only.
        content = os.path.join(self.tmp, "data", "files", "zz", "file_snippetzz")
        os.makedirs(os.path.dirname(content), exist_ok=True)
        with open(content, "w") as f:
            f.write("secret\n")
        for path in ("/_files_internal/zz/file_snippetzz", "/_files_api_errors/413.json"):
            with self.subTest(path=path):
                resp = request(self.port, "GET %s HTTP/1.1\r\nHost: x\r\n"
                                          "Connection: close\r\n\r\n" % path)
                self.assertEqual(resp.status, 404, resp.body)
                self.assertNotIn(b"secret", resp.body)

    def test_the_server_header_names_no_version(self):
        # The worker's answer and nginx's own (a pool that is gone: 502).
        for port in (self.live_port, self.port):
            resp = request(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertEqual(resp.header("Server"), "nginx", resp.status)

    def test_a_download_handed_to_nginx_is_the_workers_answer(self):
        # X-Accel-Redirect to the snippet's internal location: the whole file
        # for several ranges (the worker's answer, not nginx's cut), with the
        # worker's ETag, request id and nosniff, and no hand-off header.
        content = b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}\n'
        file_id = upload(self.live_port, self.key, content)
        resp = request(self.live_port, "GET /v1/files/%s/content HTTP/1.1\r\nHost: x\r\n"
                                       "Authorization: Bearer %s\r\nRange: bytes=0-1,5-6\r\n"
                                       "Connection: close\r\n\r\n" % (file_id, self.key))
        self.assertEqual((resp.status, resp.body), (200, content))
        self.assertRegex(resp.header("ETag", ""), r'^"[0-9a-f]{32}"$')
        self.assertIsNotNone(resp.header("X-Request-Id"))
        self.assertEqual(resp.header("X-Content-Type-Options"), "nosniff")
        self.assertIsNone(resp.header("X-Accel-Redirect"))
        # A date that is no HTTP-date (the mtime in UTC) is ignored by the
        # worker (RFC 9110 §13.1.3), so nginx must not judge it again (304).
        path = os.path.join(self.tmp, "data", "files", file_id[-2:], file_id)
        mtime = email.utils.formatdate(int(os.stat(path).st_mtime), usegmt=True)
        resp = request(self.live_port, "GET /v1/files/%s/content HTTP/1.1\r\nHost: x\r\n"
                                       "Authorization: Bearer %s\r\nIf-Modified-Since: %s\r\n"
                                       "Connection: close\r\n\r\n"
                                       % (file_id, self.key, mtime.replace("GMT", "UTC")))
        self.assertEqual((resp.status, resp.body), (200, content))


@once_is_enough
class LighttpdSnippetTest(unittest.TestCase):
    """conf/lighttpd-files-api.conf in front of a worker on its socket."""
    LIMIT = 108544 * 1024  # its server.max-request-size: 105 MiB + 1 MiB

    @classmethod
    def setUpClass(cls):
        scratch_dir(cls, "lighttpd", "spawn-fcgi")
        spool, docroot = (os.path.join(cls.tmp, d) for d in ("spool", "docroot"))
        for d in (spool, docroot):
            os.mkdir(d, 0o700)
        data, sock, _ = worker_pool(cls, download_mode="x-sendfile")
        snippet = (REPO / "conf/lighttpd-files-api.conf").read_text()
        snippet = snippet.replace("/run/files-api/fcgi.sock", sock)
        snippet = snippet.replace("/var/spool/files-api", spool)
        # With X-Sendfile enabled, as its comments say (lighttpd runs as the
        # workers' user here: root).
        for line in ('"x-sendfile" => "enable",',
                     '"x-sendfile-docroot" => ("/var/lib/files-api/files/"),'):
            assert "# " + line in snippet, line
            snippet = snippet.replace("# " + line, line.replace("/var/lib/files-api", data))
        cls.port = free_port()
        conf = os.path.join(cls.tmp, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write('server.document-root = "%s"\nserver.bind = "127.0.0.1"\nserver.port = %d\n'
                    'server.errorlog = "/dev/null"\n%s' % (docroot, cls.port, snippet))
        lighttpd = subprocess.Popen(["lighttpd", "-D", "-f", conf], stderr=subprocess.DEVNULL)
        cls.addClassCleanup(terminate, lighttpd)
        wait_for_port(cls.port, lighttpd)
        wait_for_socket(sock)

    def test_the_routes_reach_the_worker(self):
        for path, status in (("/healthz", 200), ("/v1/files", 200), ("/v1/files/file_x", 404),
                             ("/v1/files/file_x/content", 404)):
            with self.subTest(path=path):
                resp = request(self.port, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                                          "\r\nConnection: close\r\n\r\n" % (path, self.key))
                self.assertEqual(resp.status, status, resp.body)
                self.assertIsNotNone(resp.header("X-Request-Id"), resp.body)  # the worker's
        # The rest of the site stays lighttpd's.
        with open(os.path.join(self.tmp, "docroot", "site.txt"), "w") as f:
            f.write("site\n")
        resp = request(self.port, "GET /site.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual((resp.status, resp.body), (200, b"site\n"))

    def test_a_download_handed_to_lighttpd_is_the_workers_answer(self):
        # Several ranges: the whole file, as the worker answered (lighttpd,
        # unless told not to, cut it by the Range: a 206 of the merged ranges); one
        # range: the worker's 206.
        content = b"".join(b'{"custom_id":"r%d","method":"POST","url":"/v1/embeddings",'
                           b'"body":{}}\n' % i for i in range(3))
        file_id = upload(self.port, self.key, content)
        for ranges, status, expected in (("bytes=0-1,5-6", 200, content),
                                         ("bytes=0-9", 206, content[:10])):
            with self.subTest(ranges=ranges):
                resp = request(self.port, "GET /v1/files/%s/content HTTP/1.1\r\nHost: x\r\n"
                                          "Authorization: Bearer %s\r\nRange: %s\r\n"
                                          "Connection: close\r\n\r\n" % (file_id, self.key, ranges))
                self.assertEqual((resp.status, resp.body), (status, expected))
                self.assertIsNone(resp.header("X-Sendfile"))

    def test_the_body_limit_is_the_workers_limit_and_its_framing(self):
        # A body of exactly the limit reaches the worker (which refuses it from
        # its length: its 413 has X-Request-Id); one byte more is lighttpd's.
        for extra in (0, 1):
            with self.subTest(extra=extra), \
                    socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                s.sendall(b"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                          b"Content-Type: multipart/form-data; boundary=b\r\n"
                          b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                          % (self.key.encode(), self.LIMIT + extra))
                piece = b"x" * (1 << 20)
                try:
                    for at in range(0, self.LIMIT if not extra else 0, len(piece)):
                        s.sendall(piece[:self.LIMIT - at])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # answered before the end: the answer says by whom
                raw = b""
                while b"\r\n\r\n" not in raw:
                    got = s.recv(65536)
                    if not got:
                        break
                    raw += got
                resp = Response.from_wire(raw)
                self.assertEqual(resp.status, 413, resp.body)
                self.assertEqual(resp.header("X-Request-Id") is not None, not extra)


if __name__ == "__main__":
    unittest.main()
