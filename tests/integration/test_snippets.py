"""The web-server snippets shipped in conf/, as an operator installs them:
conf/apache-files-api.conf included in a configuration that denies every
directory, as Debian's apache2.conf does, in front of a worker on its socket."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BIN_DIR, REPO, Response, free_port, once_is_enough, read_to_end

MODULES = "/usr/lib/apache2/modules"


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
        errors = os.path.join(cls.tmp, "errors")
        os.mkdir(errors, 0o755)
        shutil.copy(REPO / "conf/errors/413.json", errors)
        sock = os.path.join(cls.tmp, "fcgi.sock")
        cls.key = subprocess.run([str(BIN_DIR / "filesctl"), "--data-dir", data, "keys", "create",
                                  "--account", "snippet", "--scopes", "*"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        pool = subprocess.Popen(["spawn-fcgi", "-n", "-s", sock, "-M", "0666", "--",
                                 str(BIN_DIR / "files-fcgi"), "--data-dir", data],
                                stderr=subprocess.DEVNULL)
        cls.addClassCleanup(cls.stop, pool)
        snippet = (REPO / "conf/apache-files-api.conf").read_text()
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
                    "TypesConfig /dev/null\n"
                    "<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>\n"
                    % (cls.port, cls.tmp, cls.tmp, cls.tmp))
            f.write(snippet)
        apache = subprocess.Popen(["apache2", "-f", conf, "-DFOREGROUND"],
                                  stderr=subprocess.DEVNULL)
        cls.addClassCleanup(cls.stop, apache)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", cls.port), timeout=1).close()
                if os.path.exists(sock):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or apache.poll() is not None or pool.poll() is not None:
                raise RuntimeError("Apache or the worker did not start")
            time.sleep(0.05)

    @staticmethod
    def stop(proc):
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def request(self, head):
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(head.encode())
            return Response.from_wire(read_to_end(s))

    def test_the_worker_answers_through_it(self):
        resp = self.request("GET /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                            "Connection: close\r\n\r\n" % self.key)
        self.assertEqual(resp.status, 200, resp.body)
        self.assertIn(b'"object":"list"', resp.body)

    def test_apache_can_read_its_json_error_page(self):
        # The page Apache answers a body over LimitRequestBody with (its
        # ErrorDocument 413). Under a configuration that denies every
        # directory, its directory needs a grant of its own, or Apache sends
        # its HTML page instead (the worker answers most such bodies itself,
        # but not all: a chunked one, or one that mod_fcgid refuses).
        resp = self.request("GET /_files_api_errors/413.json HTTP/1.1\r\nHost: x\r\n"
                            "Connection: close\r\n\r\n")
        self.assertEqual(resp.status, 200, resp.body)
        self.assertTrue(resp.header("Content-Type", "").startswith("application/json"))
        self.assertEqual(json.loads(resp.body)["error"]["code"], "VALIDATION_4016")

    def test_trace_with_max_forwards_0_reaches_the_worker(self):
        resp = self.request("TRACE /v1/files HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n"
                            "Authorization: Bearer %s\r\nConnection: close\r\n\r\n" % self.key)
        self.assertEqual(resp.status, 405, resp.body)
        self.assertNotIn(self.key.encode(), resp.body)
        self.assertEqual(resp.header("Allow"), "GET, HEAD, POST")


if __name__ == "__main__":
    unittest.main()
