"""The access matrix: 3 accounts x keys of every scope kind x every endpoint x
files of each account. Only the owner's keys with an inference scope (or the
legacy empty list) succeed; everything else gets the right 401/403/404, and a
file of another account answers exactly like one that does not exist. Ids are
checked against their format before any lookup; filenames cannot inject headers."""

import glob
import json
import os
import re
import shutil
import socket
import tempfile
import time
import unittest

from harness import ApiTestCase, Response, Stack, batch_jsonl, raw_request

STACK = None
SCOPES = {  # scope list -> may use the Files API
    "*": True,
    "inference.*": True,
    "inference.chat": True,
    "files.read,inference.embeddings": True,
    "": True,               # legacy: empty list, full access
    "files.read": False,
    "inference": False,
    "admin.*": False,
}


def setUpModule():
    global STACK
    STACK = Stack(workers=2, name="security").start()


def tearDownModule():
    if STACK:
        STACK.stop()


def normalized(resp, file_id):
    """The body with the file id and request id taken out, for comparison."""
    text = resp.body.decode().replace(file_id, "FILE")
    return re.sub(r'"request_id":"[^"]*"', "", text)


class AccessMatrixTest(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        cls.accounts = {}
        for name in ("alpha", "beta", "gamma"):
            keys = {scopes: STACK.create_key(name + "-acct", scopes) for scopes in SCOPES}
            owner = STACK.client(keys["*"])
            files = [owner.upload_ok(batch_jsonl(2, tag="-" + name + str(i)))["id"]
                     for i in range(2)]
            cls.accounts[name] = {"keys": keys, "files": files}
        revoked = STACK.create_key("alpha-acct", "*", name="to-revoke")
        STACK.revoke_key(STACK.key_id_by_name("to-revoke"))
        cls.revoked = revoked

    def calls(self, client, file_id):
        return {
            "retrieve": client.retrieve(file_id),
            "content": client.content(file_id),
        }

    def test_matrix(self):
        missing = "file_" + "Z" * 24
        for owner, acct in self.accounts.items():
            for scopes, allowed in SCOPES.items():
                client = STACK.client(acct["keys"][scopes])
                with self.subTest(account=owner, scopes=scopes):
                    listing = client.list(limit=100)
                    upload = client.upload(batch_jsonl(1, tag="-m"))
                    if not allowed:
                        for resp in (listing, upload):
                            err = self.assertError(resp, 403, "AUTH_1015")
                            self.assertEqual(err["details"]["required_scope"], "inference.*")
                    else:
                        self.assertEqual(listing.status, 200)
                        self.assertEqual(upload.status, 200)
                        own = {f["id"] for f in listing.json()["data"]}
                        self.assertTrue(set(acct["files"]) <= own)
                        for other, other_acct in self.accounts.items():
                            if other != owner:
                                self.assertFalse(set(other_acct["files"]) & own)
                    for target, target_acct in self.accounts.items():
                        for file_id in target_acct["files"]:
                            for name, resp in self.calls(client, file_id).items():
                                if not allowed:
                                    self.assertError(resp, 403, "AUTH_1015")
                                elif target == owner:
                                    self.assertEqual(resp.status, 200, (name, resp.body[:200]))
                                else:
                                    self.assertError(resp, 404, "INFERENCE_3302")
                                    ghost = (self.calls(client, missing)[name])
                                    self.assertEqual(normalized(resp, file_id),
                                                     normalized(ghost, missing))
                                    self.assertEqual(resp.header("Content-Type"),
                                                     ghost.header("Content-Type"))
                    if allowed:
                        # Deleting another account's file: 404, and it stays.
                        victim = self.accounts["gamma" if owner != "gamma" else "alpha"]
                        resp = client.delete(victim["files"][0])
                        self.assertError(resp, 404, "INFERENCE_3302")
                        self.assertEqual(STACK.client(victim["keys"]["*"])
                                         .retrieve(victim["files"][0]).status, 200)

    def test_no_key_bad_key_revoked_key(self):
        file_id = self.accounts["alpha"]["files"][0]
        for key, code in ((None, "AUTH_1007"), ("sk-mel-not-a-key", "AUTH_1008"),
                          (self.revoked, "AUTH_1008")):
            client = STACK.client(key)
            for resp in (client.list(), client.retrieve(file_id), client.content(file_id),
                         client.delete(file_id), client.upload(batch_jsonl(1))):
                self.assertError(resp, 401, code)
        self.assertEqual(STACK.client(self.accounts["alpha"]["keys"]["*"])
                         .retrieve(file_id).status, 200)

    def test_malformed_ids_find_nothing_and_change_nothing(self):
        # That they are refused before any lookup: BusyDatabaseTest.
        client = STACK.client(self.accounts["alpha"]["keys"]["*"])
        before = client.all_ids()
        for bad in ("file_x' OR '1'='1", "file_%00", "../../files.db", "file_" + "A" * 25,
                    "FILE_" + "A" * 24, "file_" + "A" * 23 + "-"):
            for resp in (client.retrieve(bad), client.content(bad), client.delete(bad)):
                self.assertEqual(resp.status, 404, (bad, resp.body[:200]))
        self.assertEqual(client.all_ids(), before)
        self.assertEqual(STACK.filesctl("fsck").returncode, 0)

    def test_filenames_cannot_inject_headers(self):
        client = STACK.client(self.accounts["beta"]["keys"]["*"])
        # CR/LF decode to control characters: refused. The others are stored.
        crlf = 'evil"\r\nX-Injected: 1.jsonl'
        for name in (crlf, 'a";x=y.jsonl', "caf\u00e9 \u20ac.jsonl", 'back\\slash"quote.jsonl'):
            raw = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
            resp = client.upload(batch_jsonl(1, tag=str(len(name))), filename=raw)
            if name == crlf:
                self.assertError(resp, 400, "VALIDATION_4001")
                continue
            self.assertEqual(resp.status, 200, (name, resp.body[:300]))
            file_id = resp.json()["id"]
            content = client.content(file_id)
            self.assertEqual(content.status, 200)
            self.assertIsNone(content.header("X-Injected"))
            disposition = content.header("Content-Disposition")
            self.assertTrue(disposition.startswith("attachment; filename=\""), disposition)
            self.assertEqual(disposition.count('"'), 2, disposition)
            self.assertNotIn("\r", disposition)
            self.assertIn("filename*=UTF-8''", disposition)


@unittest.skipUnless(os.environ.get("FILES_API_SERVER") == "apache",
                     "only Apache's mod_proxy_fcgi passes a body on as it comes")
class StalledRefusedBodiesTest(ApiTestCase):
    def test_clients_without_a_key_that_stop_sending_do_not_hold_the_workers(self):
        # Behind a server that passes a body on as it comes (Apache's
        # mod_proxy_fcgi), each refused upload whose client stopped sending
        # held its worker for libfcgi's lingering close (2 s): a few such
        # connections a second, with no key, kept both workers busy, and a
        # keyed request waited seconds.
        client = STACK.new_client()
        client.upload_ok(batch_jsonl(2))
        stalled, slowest = [], 0.0
        try:
            for i in range(15):
                sock = socket.create_connection(("127.0.0.1", STACK.port), timeout=10)
                sock.sendall(b"POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Type: multipart/form-data; boundary=b\r\n"
                             b"Content-Length: 10000000\r\n\r\n" + b"x" * 600)
                stalled.append(sock)
                started = time.monotonic()
                self.assertEqual(client.list().status, 200)
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.2)
        finally:
            for sock in stalled:
                sock.close()
        self.assertLess(slowest, 1.0, "a keyed request waited behind stalled refused bodies")


class ListenAddressTest(ApiTestCase):
    def test_the_web_server_listens_on_the_loopback_address_only(self):
        # serve.sh serves 127.0.0.1: a web server bound to every address
        # (server.bind, listen, Listen without one) would serve the network.
        listening = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for row in f.read().splitlines()[1:]:
                    local, state = row.split()[1], row.split()[3]
                    address, port = local.split(":")
                    if state == "0A" and int(port, 16) == STACK.port:  # LISTEN
                        listening.append(address)
        self.assertTrue(listening, "nothing listens on port %d" % STACK.port)
        self.assertEqual(set(listening), {"0100007F"}, "not 127.0.0.1 alone")


class ServerHeaderTest(ApiTestCase):
    def test_the_server_header_names_no_version(self):
        # nginx and Apache named their versions (nginx/1.22.1, Apache/2.4.71
        # (Debian) mod_fcgid/2.3.9) on every answer, the worker's and their own.
        client = STACK.new_client()
        own = raw_request(STACK, b"GET /v1/files HTTP/1.1\r\nConnection: close\r\n\r\n")
        for resp in (client.list(), Response.from_wire(own)):  # the latter: no Host, 400
            with self.subTest(status=resp.status):
                server = resp.header("Server") or ""
                self.assertNotRegex(server, r"[0-9]", server)


class NoSniffTest(ApiTestCase):
    def test_the_workers_answers_forbid_content_sniffing(self):
        # A 404 quotes the path, and content is whatever was uploaded: a
        # browser sniffing either for HTML would run what it found.
        client = STACK.new_client()
        file_id = client.upload_ok(batch_jsonl(1))["id"]
        answers = {"list": client.list(), "404": client.request("GET", "/v1/<script>x</script>"),
                   "content": client.content(file_id), "metadata": client.retrieve(file_id)}
        for name, resp in answers.items():
            with self.subTest(answer=name, status=resp.status):
                self.assertEqual(resp.header("X-Content-Type-Options"), "nosniff", resp.headers)


class UmaskTest(ApiTestCase):
    def test_nothing_serve_sh_makes_is_writable_by_others_under_umask_000(self):
        # Under umask 000 the run directory's configuration, error pages and
        # lighttpd's worker sockets were writable by any local user (a
        # socket: any user could talk to the workers, which run as root).
        old = os.umask(0)
        try:
            stack = Stack(workers=1, name="umask").start()
        finally:
            os.umask(old)
        self.addCleanup(stack.stop)
        runs = set()  # named in the command lines of serve.sh's session (the web server's)
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/stat" % pid) as f:
                    session = int(f.read().rsplit(")", 1)[1].split()[3])
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    args = f.read().decode(errors="replace")
            except (OSError, ValueError, IndexError):
                continue
            if session == stack.proc.pid:
                runs.update(re.findall(r"/tmp/files-api\.[A-Za-z0-9]+", args))
        run = [r for r in runs if os.path.isdir(r)]
        self.assertTrue(run, "the run directory was not found")
        writable = []
        for top in run + [stack.data_dir]:
            for root, dirs, files in os.walk(top):
                for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                    if os.lstat(name).st_mode & 0o002 and not os.path.islink(name):
                        writable.append(name)
        self.assertEqual(writable, [])
        self.assertEqual(stack.new_client().upload(batch_jsonl(2)).status, 200)


@unittest.skipUnless(os.environ.get("FILES_API_SERVER") == "apache-fcgid",
                     "mod_fcgid's own spool: the apache-fcgid pass only")
class FcgidSpoolTest(ApiTestCase):
    def assert_a_stalled_body_is_spooled_in(self, stack, pattern):
        """Sends 200 KB of a 1 MB body and stalls: mod_fcgid spools what came
        (over FcgidMaxRequestInMem) before the worker sees any of it."""
        sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
        try:
            sock.sendall(b"POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: 1000000\r\n\r\n" + b"x" * 200000)
            deadline = time.monotonic() + 5
            while not glob.glob(pattern) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertTrue(glob.glob(pattern), "no body spooled in " + pattern)
        finally:
            sock.close()

    def test_a_body_mod_fcgid_spools_stays_in_the_runs_spool(self):
        # It went to /tmp (Apache's TMPDIR), where bodies of crashed children
        # stayed for good, and a small /tmp filled up.
        self.assert_a_stalled_body_is_spooled_in(
            STACK, os.path.join(STACK.data_dir, "spool", "fcgid.*", "*"))

    def test_a_spool_www_data_cannot_reach_is_said_so_and_not_swapped_for_tmp(self):
        # APR skipped the TMPDIR mod_fcgid's www-data could not reach, for /tmp.
        spool = tempfile.mkdtemp(prefix="files-api-private-spool.")
        self.addCleanup(shutil.rmtree, spool, True)
        os.chmod(spool, 0o700)  # root's alone
        stack = Stack(workers=1, name="fcgidspool",
                      env={"FILES_API_SPOOL_DIR": spool}).start()
        self.addCleanup(stack.stop)
        said = stack.wait_for_log(lambda t: "mod_fcgid spools bodies in" in t)
        bodies = re.search(r"mod_fcgid spools bodies in (\S+)", said).group(1)
        self.assert_a_stalled_body_is_spooled_in(stack, bodies + "/*")
