"""The web-server snippets shipped in conf/, as an operator installs them:
conf/apache-files-api.conf included in a configuration that denies every
directory and refuses TRACE, as Debian's apache2.conf and security.conf do, in
front of a worker on its socket;
conf/nginx-files-api.conf in a server block, in front of a pool that is gone."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BIN_DIR, REPO, Response, free_port, once_is_enough, terminate

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


@once_is_enough
class ApacheSnippetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("apache2") or not shutil.which("spawn-fcgi"):
            raise unittest.SkipTest("apache2 or spawn-fcgi is not installed")
        cls.tmp = tempfile.mkdtemp(prefix="files-api-it-snippet-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        os.chmod(cls.tmp, 0o755)  # Apache's children, not root, read the error pages
        data = os.path.join(cls.tmp, "data")
        os.mkdir(data, 0o700)
        errors = installed_error_pages(cls.tmp)
        sock = os.path.join(cls.tmp, "fcgi.sock")
        cls.key = subprocess.run([str(BIN_DIR / "filesctl"), "--data-dir", data, "keys", "create",
                                  "--account", "snippet", "--scopes", "*"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        pool = subprocess.Popen(["spawn-fcgi", "-n", "-s", sock, "-M", "0666", "--",
                                 str(BIN_DIR / "files-fcgi"), "--data-dir", data],
                                stderr=subprocess.DEVNULL)
        cls.addClassCleanup(terminate, pool)
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
        for _ in range(600):  # spawn-fcgi's socket, 30 s at most
            if os.path.exists(sock):
                break
            time.sleep(0.05)

    def request(self, head):
        return request(self.port, head)

    def test_the_worker_answers_through_it(self):
        resp = self.request("GET /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                            "Connection: close\r\n\r\n" % self.key)
        self.assertEqual(resp.status, 200, resp.body)
        self.assertIn(b'"object":"list"', resp.body)
        self.assertIsNone(resp.header("Vary"))  # the Transfer-Encoding check reads it unseen

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
        if not shutil.which("nginx"):
            raise unittest.SkipTest("nginx is not installed")
        cls.tmp = tempfile.mkdtemp(prefix="files-api-it-snippet-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        os.chmod(cls.tmp, 0o755)
        errors = installed_error_pages(cls.tmp)
        spool = os.path.join(cls.tmp, "spool")
        os.mkdir(spool)
        snippet = (REPO / "conf/nginx-files-api.conf").read_text()
        snippet = snippet.replace("/run/files-api/fcgi.sock", os.path.join(cls.tmp, "gone.sock"))
        snippet = snippet.replace("/usr/local/share/files-api/errors", errors)
        snippet = snippet.replace("/var/spool/files-api", spool)
        snippet = snippet.replace("include fastcgi_params;", "include /etc/nginx/fastcgi_params;")
        cls.port = free_port()
        conf = os.path.join(cls.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write("daemon off;\nuser root;\npid %s/nginx.pid;\nerror_log /dev/null;\n"
                    "events {}\nhttp {\naccess_log off;\n" % cls.tmp)
            for temp in ("fastcgi", "proxy", "uwsgi", "scgi"):
                f.write("%s_temp_path %s/%s;\n" % (temp, cls.tmp, temp))
            f.write("server {\nlisten 127.0.0.1:%d;\n%s\n}\n}\n" % (cls.port, snippet))
        nginx = subprocess.Popen(["nginx", "-c", conf], stderr=subprocess.DEVNULL)
        cls.addClassCleanup(terminate, nginx)
        wait_for_port(cls.port, nginx)

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


if __name__ == "__main__":
    unittest.main()
