"""filesctl against a running service: keys never stored or logged in clear,
files import (batch_output read back over HTTP), list/show/rm, expiry
(expires_after on upload, expired files vanish, gc deletes them), fsck and
its repairs, --help everywhere."""

import json
import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

from harness import ANOTHER_SERVERS_PASS, BIN_DIR, ApiTestCase, Stack, batch_jsonl, once_is_enough

PAUSES_BUILT = b"FILES_API_PAUSE_AT" in (BIN_DIR / "filesctl").read_bytes()

STACK = None


def setUpModule():
    global STACK
    if ANOTHER_SERVERS_PASS:  # filesctl works on the data directory, not through the web server
        return
    STACK = Stack(workers=2, name="filesctl").start()


def tearDownModule():
    if STACK:
        STACK.stop()


def filesctl_at(data, *args, input=None, check=False):
    """filesctl on the data directory data, no service needed; text out."""
    return subprocess.run([str(BIN_DIR / "filesctl"), "--data-dir", data, *args], input=input,
                          capture_output=True, text=True, check=check)


def data_dir_with_a_file(data):
    """A data directory made by filesctl: account a with a key and one batch
    file, whose id is returned."""
    filesctl_at(data, "keys", "create", "--account", "a", "--scopes", "*", check=True)
    res = filesctl_at(data, "files", "import", "--account", "a", "--purpose", "batch", "-",
                      input=batch_jsonl(2).decode(), check=True)
    return json.loads(res.stdout)["id"]


def service_users_data_dir(cwd):
    """A data directory in cwd with a key for account a, all www-data's (the
    service's user), as root's filesctl finds it: it works as that owner."""
    os.chmod(cwd, 0o711)
    data = os.path.join(cwd, "data")
    filesctl_at(data, "keys", "create", "--account", "a", "--scopes", "*", check=True)
    subprocess.run(["chown", "-R", "www-data:www-data", data], check=True)
    return data


def db(stack=None):
    return sqlite3.connect(os.path.join((stack or STACK).data_dir, "files.db"), timeout=10,
                           isolation_level=None)


def expire_now(file_id, stack=None):
    """Jumps past a file's expiry: its row's expires_at moves into the past."""
    conn = db(stack)
    conn.execute("UPDATE files SET expires_at = ? WHERE id = ?", (int(time.time()) - 1, file_id))
    conn.close()


def processes_with(*words):
    """Pids of the processes whose command line holds each of words as an argument."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if all(w in args for w in words):
            found.append(int(pid))
    return found


@once_is_enough
class KeysAtRestTest(ApiTestCase):
    def test_account_names_are_one_log_token(self):
        # the access line says account=NAME: no name may split or forge it
        for name in ("evil status=200 account=admin", "a\nb", "tab\tbed", "q\"uote",
                     "esc\x1b[31m", "caf\u00e9", "x" * 128):
            with self.subTest(name=name):
                res = STACK.filesctl("keys", "create", "--account", name, "--scopes", "",
                                     check=False)
                self.assertEqual(res.returncode, 2, res.stderr)
                self.assertEqual(res.stdout, "")
        name = "Team.A_1@example.com+ci:prod-" + "x" * 98  # every allowed kind, 127 bytes
        self.assertEqual(len(name), 127)
        client = STACK.client(STACK.create_key(name, "inference.*"))
        self.assertEqual(client.list().status, 200)
        self.assertIn("account=" + name + " ", STACK.wait_for_log(
            lambda t: "account=" + name + " " in t))

    def test_labels_and_scopes_cannot_forge_a_line_of_keys_list(self):
        for args, message in ((["--scopes", "x", "--name", "evil\nkey_FAKE  acme  active"],
                               "bad --name: it contains a control character"),
                              (["--scopes", "x", "--name", "esc\x1b[31m"],
                               "bad --name: it contains a control character"),
                              (["--scopes", "x", "--name", "csi\u009b31m"],
                               "bad --name: it contains a control character"),
                              (["--scopes", "x", "--name", "x" * 256], "name (255) too long"),
                              (["--scopes", "x\nkey_FAKE"], "a scope is letters"),
                              (["--scopes", "inference.* files.read"], "a scope is letters"),
                              (["--scopes", "inference.*;rm"], "a scope is letters")):
            with self.subTest(args=args):
                res = STACK.filesctl("keys", "create", "--account", "labels", *args, check=False)
                self.assertEqual(res.returncode, 2, res.stderr)
                self.assertIn(message, res.stderr)
        STACK.create_key("labels", "x", name="\u00e9" * 127 + "x")  # 255 bytes: at the limit
        key = STACK.create_key("labels", "inference.*, files:read-1", name="CI key (caf\u00e9)")
        self.assertEqual(STACK.client(key).list().status, 200)
        self.assertIn("CI key (caf\u00e9)", STACK.filesctl("keys", "list").stdout)

    def test_keys_list_lines_up_its_columns_for_long_accounts_and_scopes(self):
        data = tempfile.mkdtemp(prefix="files-api-ctl-columns.")
        self.addCleanup(shutil.rmtree, data, True)
        ctl = [str(BIN_DIR / "filesctl"), "--data-dir", data]
        for account, scopes in (("a", "*"), ("tenant-" + "x" * 33, "files.read," * 4 + "x"),
                                ("b", "")):
            subprocess.run(ctl + ["keys", "create", "--account", account, "--scopes", scopes],
                           check=True, capture_output=True)
        lines = subprocess.run(ctl + ["keys", "list"], check=True, capture_output=True,
                               text=True).stdout.splitlines()
        self.assertEqual(len(lines), 4, lines)
        self.assertEqual({line.index("active") for line in lines[1:]}, {lines[0].index("STATE")})
        self.assertEqual({line.rindex("  ") + 2 for line in lines}, {lines[0].index("NAME")})
        self.assertIn("x" * 33 + "  active    " + "files.read," * 4 + "x  ", lines[2])

    def test_a_key_that_cannot_be_written_out_is_revoked(self):
        ctl = [str(BIN_DIR / "filesctl"), "--data-dir", STACK.data_dir]
        with open("/dev/full", "w") as full:
            res = subprocess.run(ctl + ["keys", "create", "--account", "lost", "--scopes", "*"],
                                 stdout=full, stderr=subprocess.PIPE, text=True)
            self.assertEqual(res.returncode, 1, res.stderr)
            self.assertIn("writing the key", res.stderr)
            key_id = re.search(r"(key_\w+) was revoked", res.stderr).group(1)
            res = subprocess.run(ctl + ["keys", "list"], stdout=full, stderr=subprocess.PIPE,
                                 text=True)
            self.assertEqual(res.returncode, 1, res.stderr)
            self.assertIn("writing the output", res.stderr)
            # an import whose file object is lost is undone: a retry stores it once
            client = STACK.new_client()
            path = os.path.join(STACK.tmp, "lost.jsonl")
            with open(path, "wb") as f:
                f.write(batch_jsonl(2))
            res = subprocess.run(ctl + ["files", "import", "--account", client.account,
                                        "--purpose", "batch", path],
                                 stdout=full, stderr=subprocess.PIPE, text=True)
            self.assertEqual(res.returncode, 1, res.stderr)
            self.assertRegex(res.stderr, r"file_\w+ was deleted again")
            self.assertEqual(client.all_ids(), [])
        line = [l for l in STACK.filesctl("keys", "list").stdout.splitlines() if key_id in l]
        self.assertIn("revoked", line[0])

    def test_scope_list_with_an_empty_item_is_refused(self):
        # "," would read as the empty list, which is full access (legacy keys).
        for scopes in (",", " , ", "inference.*,", ",inference.*", "files.read,,x", " "):
            with self.subTest(scopes=scopes):
                res = STACK.filesctl("keys", "create", "--account", "typo", "--scopes", scopes,
                                     check=False)
                self.assertEqual(res.returncode, 2, res.stderr)
                self.assertIn("empty item", res.stderr)
                self.assertEqual(res.stdout, "")
        self.assertNotIn("typo", STACK.filesctl("keys", "list").stdout)
        for scopes in ("", "inference.*", " files.read , inference.chat "):
            key = STACK.create_key("typo", scopes=scopes)
            self.assertEqual(STACK.client(key).list().status, 200)


@once_is_enough
class ImportTest(ApiTestCase):
    def test_import_batch_output_and_read_it_over_http(self):
        client = STACK.new_client()
        output = b"".join(json.dumps({"id": "batch_req_%d" % i, "custom_id": "r%d" % i,
                                      "response": {"status_code": 200, "body": {}}},
                                     separators=(",", ":")).encode() + b"\n"
                          for i in range(50))
        path = os.path.join(STACK.tmp, "out.jsonl")
        with open(path, "wb") as f:
            f.write(output)
        os.chmod(path, 0o644)
        res = STACK.filesctl("files", "import", "--account", client.account, "--purpose",
                             "batch_output", "--filename", "results.jsonl", path)
        obj = json.loads(res.stdout)
        self.assertRegex(obj["id"], r"^file_[A-Za-z0-9]{24}$")
        self.assertEqual((obj["purpose"], obj["filename"], obj["bytes"]),
                         ("batch_output", "results.jsonl", len(output)))
        self.assertEqual(client.retrieve(obj["id"]).json(), obj)
        self.assertEqual(client.content(obj["id"]).body, output)
        listed = client.list_ok(purpose="batch_output")["data"]
        self.assertEqual([f["id"] for f in listed], [obj["id"]])
        # the filter holds in either order, beside a file of the other purpose
        batch = client.upload_ok(batch_jsonl(1))["id"]
        for order in ("asc", "desc"):
            for purpose, want in (("batch_output", obj["id"]), ("batch", batch)):
                listed = client.list_ok(purpose=purpose, order=order)["data"]
                self.assertEqual([f["id"] for f in listed], [want], (purpose, order))
        self.assertEqual(client.delete(batch).status, 200)
        # batch_output is not uploadable over HTTP
        self.assertError(client.upload(output, purpose="batch_output"), 400, "VALIDATION_4007")
        self.assertEqual(client.delete(obj["id"]).status, 200)

    def test_import_filename_meets_the_upload_rules(self):
        client = STACK.new_client()
        path = os.path.join(STACK.tmp, "named.jsonl")
        with open(path, "wb") as f:
            f.write(batch_jsonl(1))
        os.chmod(path, 0o644)

        def run(*extra, source=path):
            return STACK.filesctl("files", "import", "--account", client.account, "--purpose",
                                  "batch", *extra, source, check=False)

        # \udcXX: the raw byte 0xXX in argv (os.fsencode), here invalid UTF-8.
        for bad in ("\udcff\udcfe.jsonl", "a\r\nX-Evil: 1.jsonl", "tab\there.jsonl",
                    "a\u0085.jsonl", "dir\\name.jsonl", "../up.jsonl", "x" * 256):
            res = run("--filename", bad)
            self.assertEqual(res.returncode, 2, repr(bad))
            self.assertIn("bad filename", res.stderr, repr(bad))
        odd = os.path.join(STACK.tmp, "\udcff.jsonl")  # the default: the path's basename
        with open(odd, "wb") as f:
            f.write(batch_jsonl(1))
        res = run(source=odd)
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("--filename", res.stderr)
        self.assertEqual(client.list_ok()["data"], [])
        for good in ("r\u00e9sum\u00e9 \U0001f4c4.jsonl", "y" * 255, ".."):
            res = run("--filename", good)
            self.assertEqual(res.returncode, 0, res.stderr)
            obj = json.loads(res.stdout)
            self.assertEqual(client.retrieve(obj["id"]).json()["filename"], good)

    def test_import_from_stdin_validates_like_an_upload(self):
        client = STACK.new_client()
        cmd = STACK.filesctl_prefix() + ["--data-dir", STACK.data_dir, "files", "import",
               "--account", client.account, "--purpose", "batch", "-"]
        bad = subprocess.run(cmd, input=batch_jsonl(1) + b'{"custom_id":"req-0","method":"POST",'
                             b'"url":"/v1/chat/completions","body":{}}\n', capture_output=True)
        self.assertEqual(bad.returncode, 1)
        self.assertIn(b"INFERENCE_3303", bad.stderr)
        self.assertIn(b"line 2", bad.stderr)
        good = subprocess.run(cmd, input=batch_jsonl(3), capture_output=True)
        self.assertEqual(good.returncode, 0, good.stderr)
        obj = json.loads(good.stdout)
        self.assertEqual(obj["filename"], "stdin.jsonl")
        self.assertEqual(client.content(obj["id"]).body, batch_jsonl(3))
        unknown = subprocess.run(cmd[:-5] + ["--account", "no-such-account", "--purpose", "batch",
                                             "-"], input=batch_jsonl(1), capture_output=True)
        self.assertEqual(unknown.returncode, 1)
        self.assertIn(b"no account no-such-account", unknown.stderr)

    def test_list_show_rm(self):
        client = STACK.new_client()
        file_id = client.upload_ok(batch_jsonl(2), filename="ops.jsonl")["id"]
        other = STACK.new_client().upload_ok(batch_jsonl(1))["id"]
        listing = STACK.filesctl("files", "list", "--account", client.account).stdout
        self.assertIn(file_id, listing)
        self.assertIn("ops.jsonl", listing)
        self.assertNotIn(other, listing)  # --account: that account's files only
        self.assertIn(file_id, STACK.filesctl("files", "list", "--purpose", "batch").stdout)
        for purpose in ("batches", "", "Batch"):  # not an empty list, as if there were none
            res = STACK.filesctl("files", "list", "--purpose", purpose, check=False)
            self.assertEqual((res.returncode, res.stdout), (2, ""), purpose)
            self.assertIn("purpose must be batch or batch_output", res.stderr)
        shown = json.loads(STACK.filesctl("files", "show", file_id).stdout)
        self.assertEqual(shown["id"], file_id)
        self.assertRegex(shown["content_hash"], r"^[0-9a-f]{32}$")
        STACK.filesctl("files", "rm", file_id)
        self.assertError(client.retrieve(file_id), 404, "INFERENCE_3302")
        self.assertEqual(STACK.filesctl("files", "rm", file_id, check=False).returncode, 1)
        self.assertEqual(STACK.filesctl("files", "show", file_id, check=False).returncode, 1)


    def test_files_list_lines_up_its_columns_for_a_long_account_name(self):
        long_account = "tenant-" + "y" * 41
        mine = STACK.client(STACK.create_key(long_account, "*")).upload_ok(batch_jsonl(1))["id"]
        theirs = STACK.new_client().upload_ok(batch_jsonl(1))["id"]
        for args in ((), ("--purpose", "batch")):
            with self.subTest(args=args):
                lines = STACK.filesctl("files", "list", *args).stdout.splitlines()
                rows = [l for l in lines[1:] if mine in l or theirs in l]
                self.assertEqual(len(rows), 2, lines)
                self.assertEqual({row.index(" batch ") + 1 for row in rows},
                                 {lines[0].index("PURPOSE")})
                self.assertIn(long_account + "  batch", "\n".join(rows))

@once_is_enough
class ExpiryTest(ApiTestCase):
    def upload_expiring(self, client, anchor="created_at", seconds="3600"):
        parts = []
        extra = []
        if anchor is not None:
            extra.append(("expires_after[anchor]", anchor))
        if seconds is not None:
            extra.append(("expires_after[seconds]", seconds))
        from harness import field_part
        return client.upload(batch_jsonl(2), extra_parts=[field_part(k, v) for k, v in extra])

    def test_expires_after_sets_expires_at(self):
        client = STACK.new_client()
        for seconds in ("3600", "2592000"):
            resp = self.upload_expiring(client, seconds=seconds)
            self.assertEqual(resp.status, 200, resp.body[:300])
            obj = resp.json()
            self.assertEqual(obj["expires_at"], obj["created_at"] + int(seconds))
            self.assertEqual(client.retrieve(obj["id"]).json()["expires_at"], obj["expires_at"])

    def test_a_field_value_is_kept_up_to_63_bytes(self):
        # UPLOAD_MAX_FIELD_VALUE: a value of 63 bytes is read whole, one of 64
        # is refused (no valid value is that long).
        client = STACK.new_client()
        at_limit = "3600".rjust(63, "0")
        resp = self.upload_expiring(client, seconds=at_limit)
        self.assertEqual(resp.status, 200, resp.body[:300])
        self.assertEqual(resp.json()["expires_at"], resp.json()["created_at"] + 3600)
        self.assertError(self.upload_expiring(client, seconds="0" + at_limit), 400,
                         "VALIDATION_4002", param="expires_after[seconds]")

    def test_expires_after_as_one_field_is_4002_not_ignored(self):
        # Ignored as an unknown field, the file was stored with no expiry.
        from harness import field_part
        client = STACK.new_client()
        for value in ('{"anchor":"created_at","seconds":3600}', "3600"):
            resp = client.upload(batch_jsonl(2), extra_parts=[field_part("expires_after", value)])
            self.assertError(resp, 400, "VALIDATION_4002", param="expires_after",
                             message="two fields")
        self.assertEqual(client.all_ids(), [])

    def test_default_expiry_for_batch_uploads_and_imports(self):
        # README: default_expiry_seconds is the expiry of batch uploads sent
        # without expires_after; a filesctl import of a batch file is one too.
        stack = Stack(workers=1, name="defexpiry", config="default_expiry_seconds = 7200\n")
        stack.start()
        self.addCleanup(stack.stop)
        client = stack.new_client()
        f = client.upload_ok(batch_jsonl(1))
        self.assertEqual(f["expires_at"], f["created_at"] + 7200)
        f = self.upload_expiring(client, seconds="3600").json()
        self.assertEqual(f["expires_at"], f["created_at"] + 3600)
        path = os.path.join(stack.tmp, "in.jsonl")
        with open(path, "wb") as out:
            out.write(batch_jsonl(2))
        os.chmod(path, 0o644)
        for purpose, expiry in (("batch", 7200), ("batch_output", None)):
            obj = json.loads(stack.filesctl("files", "import", "--account", client.account,
                                            "--purpose", purpose, path).stdout)
            self.assertEqual(obj["expires_at"],
                             None if expiry is None else obj["created_at"] + expiry, purpose)

    def test_out_of_range_or_unknown_anchor_is_4002(self):
        client = STACK.new_client()
        for anchor, seconds, param in (("created_at", "3599", "expires_after[seconds]"),
                                       ("created_at", "2592001", "expires_after[seconds]"),
                                       ("created_at", "1h", "expires_after[seconds]"),
                                       ("created_at", "+3600", "expires_after[seconds]"),
                                       ("created_at", " 3600", "expires_after[seconds]"),
                                       ("created_at", None, "expires_after[seconds]"),
                                       ("created_at", "3600\x00 bogus", "expires_after[seconds]"),
                                       ("created_at\x00junk", "3600", "expires_after[anchor]"),
                                       ("last_active_at", "3600", "expires_after[anchor]"),
                                       (None, "3600", "expires_after[anchor]")):
            with self.subTest(anchor=anchor, seconds=seconds):
                self.assertError(self.upload_expiring(client, anchor, seconds), 400,
                                 "VALIDATION_4002", param=param)
        self.assertEqual(client.all_ids(), [])

    def test_expired_files_vanish_and_gc_deletes_them(self):
        client = STACK.new_client()
        kept = client.upload_ok(batch_jsonl(2))["id"]
        gone = self.upload_expiring(client).json()["id"]
        expire_now(gone)
        self.assertError(client.retrieve(gone), 404, "INFERENCE_3302")
        self.assertError(client.content(gone), 404, "INFERENCE_3302")
        self.assertEqual(client.all_ids(), [kept])
        path = STACK.content_path(gone)
        self.assertTrue(os.path.exists(path))
        out = STACK.filesctl("gc").stdout
        self.assertRegex(out, r"gc: expired files deleted: [1-9]\d*")
        self.assertFalse(os.path.exists(path))
        self.assertEqual(client.all_ids(), [kept])
        res = STACK.filesctl("fsck")
        self.assertEqual(res.returncode, 0)
        self.assertRegex(res.stdout, r"(?m)^fsck: rows checked: [1-9]\d*, problems: 0, "
                                     r"repaired: 0, pending: 0$")

    def test_content_that_cannot_be_removed_is_a_failure(self):
        # A directory in the content file's place: unlink fails. The row goes
        # all the same; rm and gc said "deleted" and exited 0.
        client = STACK.new_client()
        by_rm = client.upload_ok(batch_jsonl(2))["id"]
        by_gc = self.upload_expiring(client).json()["id"]
        expire_now(by_gc)
        paths = [STACK.content_path(i) for i in (by_rm, by_gc)]
        for path in paths:
            os.unlink(path)
            os.mkdir(path)
            self.addCleanup(os.rmdir, path)
        res = STACK.filesctl("files", "rm", by_rm, check=False)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("deleted %s, but removing its content failed" % by_rm, res.stderr)
        res = STACK.filesctl("gc", check=False)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("gc: expired files deleted: 1", res.stdout)
        self.assertIn("the content of 1 deleted file(s) remains", res.stderr)
        self.assertEqual(client.all_ids(), [])

    def test_content_already_gone_is_no_failure(self):
        # An expired file whose content is missing (fsck --repair took it as
        # damaged, a crash): gc deletes the row and there is nothing left over.
        client = STACK.new_client()
        gone = self.upload_expiring(client).json()["id"]
        expire_now(gone)
        os.unlink(STACK.content_path(gone))
        res = STACK.filesctl("gc", check=False)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("gc: expired files deleted: 1", res.stdout)
        self.assertNotIn("remains", res.stderr)

    def test_serve_sh_runs_gc_every_gc_interval_and_stops_it(self):
        # Without it, expired files stayed on disk for good under serve.sh
        # (make run), and each list page stepped over all of them.
        stack = Stack(workers=1, name="gcloop", serve_args=["--gc-interval", "1"]).start()
        self.addCleanup(stack.stop)
        gc = processes_with("gc", "--every", "1", stack.data_dir)
        self.assertEqual(len(gc), 1, "serve.sh runs one gc")
        client = stack.new_client()
        kept = client.upload_ok(batch_jsonl(2))["id"]
        gone = self.upload_expiring(client).json()["id"]
        path = stack.content_path(gone)
        expire_now(gone, stack)
        stack.wait_for_log(lambda t: "gc: expired files deleted: 1" in t, timeout=10)
        self.assertFalse(os.path.exists(path))
        self.assertEqual(client.all_ids(), [kept])
        self.assertNotIn("gc: expired files deleted: 0", stack.log_text())  # quiet when idle
        stack.stop()
        self.assertFalse(any(os.path.exists("/proc/%d" % pid) for pid in gc))


@once_is_enough
class FsckTest(ApiTestCase):
    def one_worker_stack(self, name):
        """A one-worker stack of its own, stopped with the test, and a client of it."""
        stack = Stack(workers=1, name=name).start()
        self.addCleanup(stack.stop)
        return stack, stack.new_client()

    @staticmethod
    def give_to_the_service(stack, *paths):
        """What a test made in the data directory, owned as the service's own
        (www-data's under mod_fcgid)."""
        owner = os.stat(stack.data_dir)
        for path in paths:
            os.chown(path, owner.st_uid, owner.st_gid)

    def assert_fsck_reports(self, stack, *problems):
        """fsck (no grace) exits 1 and reports each problem; returns its result."""
        res = stack.filesctl("fsck", "--grace", "0", check=False)
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        for problem in problems:
            self.assertIn(problem, res.stdout)
        return res

    def test_content_whose_size_differs_from_its_row_is_500(self):
        # Served as it is, a truncated file would go out under the row's
        # Content-Length (or the web server's, with a hand-off): never.
        client = STACK.new_client()
        content = batch_jsonl(3)
        file_id = client.upload_ok(content)["id"]
        path = STACK.content_path(file_id)
        os.truncate(path, len(content) - 1)
        self.assertError(client.content(file_id), 500, "SYSTEM_9001")
        self.assertEqual(client.request("HEAD", "/v1/files/%s/content" % file_id).status, 500)
        self.assertEqual(client.retrieve(file_id).status, 200)  # the row is there
        self.assertEqual(client.delete(file_id).status, 200)

    def test_fsck_finds_and_repairs_damage(self):
        stack, client = self.one_worker_stack("fsck")
        damaged = client.upload_ok(batch_jsonl(3))["id"]
        missing = client.upload_ok(batch_jsonl(4))["id"]
        intact = client.upload_ok(batch_jsonl(5))["id"]
        with open(stack.content_path(damaged), "r+b") as f:
            f.write(b"X")  # same size, different bytes: only the hash tells
        os.unlink(stack.content_path(missing))
        stray = stack.content_path("file_" + "Q" * 22 + "zz")
        os.makedirs(os.path.dirname(stray), exist_ok=True)
        with open(stray, "wb") as f:
            f.write(b"{}\n")
        self.give_to_the_service(stack, stray, os.path.dirname(stray))
        self.assert_fsck_reports(stack, "content hash differs", "content file missing",
                                 "without a live row")
        res = stack.filesctl("fsck", "--repair", "--grace", "0", check=False)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertEqual(stack.filesctl("fsck").returncode, 0)
        self.assertFalse(os.path.exists(stray))
        self.assertEqual(client.all_ids(), [intact])
        self.assertError(client.retrieve(damaged), 404, "INFERENCE_3302")

    def test_a_tombstoned_rows_damaged_content_goes_with_it_without_waiting_the_grace(self):
        # The content just damaged is young: as a stray it would be pending for
        # the grace period. Tombstoning the row removes it at once.
        stack, client = self.one_worker_stack("fsck-size")
        content = batch_jsonl(3)
        short = client.upload_ok(content)["id"]
        path = stack.content_path(short)
        os.truncate(path, len(content) - 1)
        res = stack.filesctl("fsck", check=False)
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("problem: row %s: size differs from the row" % short, res.stdout)
        res = stack.filesctl("fsck", "--repair", check=False)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertIn("repaired: tombstoned row %s (size differs from the row)" % short,
                      res.stdout)
        self.assertIn(", problems: 0, repaired: 1, pending: 0\n", res.stdout)
        self.assertFalse(os.path.exists(path))
        self.assertError(client.retrieve(short), 404, "INFERENCE_3302")

    def test_a_live_files_content_in_another_shard_is_a_stray(self):
        # Only the shard named by the id's last two characters holds its
        # content: a copy anywhere else (a misplaced restore) is reported and
        # removed, the file itself untouched.
        stack, client = self.one_worker_stack("fsck-shard")
        content = batch_jsonl(2)
        file_id = client.upload_ok(content)["id"]
        files = os.path.join(stack.data_dir, "files")
        other = "zz" if file_id[-2:] != "zz" else "yy"
        copy = os.path.join(files, other, file_id)
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        shutil.copyfile(stack.content_path(file_id), copy)
        self.give_to_the_service(stack, copy, os.path.dirname(copy))
        self.assert_fsck_reports(stack, "problem: %s: content file without a live row" % copy)
        res = stack.filesctl("fsck", "--repair", "--grace", "0", check=False)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertFalse(os.path.exists(copy))
        self.assertEqual(client.content(file_id).body, content)

    def test_fsck_without_repair_removes_nothing_not_even_old_temp_files(self):
        stack = Stack(workers=1, name="fsck-temps").start()
        self.addCleanup(stack.stop)
        old = os.path.join(stack.data_dir, "tmp", "1-2-0.upload")  # a dead worker's
        with open(old, "wb") as f:
            f.write(b"{}")
        self.give_to_the_service(stack, old)
        two_hours_ago = time.time() - 7200  # past the sweep's hour (ctime is fsck's)
        os.utime(old, (two_hours_ago, two_hours_ago))
        for args, status in ((["fsck", "--grace", "0"], 1), (["files", "list"], 0),
                             (["keys", "list"], 0)):
            res = stack.filesctl(*args, check=False)
            self.assertEqual(res.returncode, status, (args, res.stdout, res.stderr))
            self.assertTrue(os.path.exists(old), args)
        self.assert_fsck_reports(stack, "problem: %s: stray temporary file" % old)
        res = stack.filesctl("fsck", "--repair", "--grace", "0", check=False)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertFalse(os.path.exists(old))

    def test_fsck_reports_what_is_not_a_content_file_and_never_removes_a_tree(self):
        stack, client = self.one_worker_stack("fsck-layout")
        kept = client.upload_ok(batch_jsonl(2))["id"]
        files = os.path.join(stack.data_dir, "files")
        shard = os.path.join(files, kept[-2:])
        loose = os.path.join(files, "notes.txt")         # outside any shard
        hidden = os.path.join(shard, ".hidden")          # a dot does not hide it
        empty_dirs = [os.path.join(files, "not-a-shard"), os.path.join(shard, "subdir")]
        tree = os.path.join(files, "backup")             # a directory with something in it
        for d in empty_dirs + [tree]:
            os.makedirs(d)
        for path in (loose, hidden, os.path.join(tree, "x")):
            with open(path, "wb") as f:
                f.write(b"{}\n")
        self.give_to_the_service(stack, loose, hidden, tree, os.path.join(tree, "x"), *empty_dirs)
        self.assert_fsck_reports(stack, *("problem: %s: %s" % (path, kind) for path, kind in (
            (loose, "file outside any shard"),
            (hidden, "content file without a live row"),
            (empty_dirs[0], "directory that is not a shard"),
            (empty_dirs[1], "directory inside a shard"),
            (tree, "directory that is not a shard"))))
        res = stack.filesctl("fsck", "--repair", "--grace", "0", check=False)
        self.assertEqual(res.returncode, 1, res.stdout)  # the tree is left alone
        self.assertIn("problem: %s: directory that is not a shard" % tree, res.stdout)
        self.assertTrue(os.path.exists(os.path.join(tree, "x")))
        for path in (loose, hidden, *empty_dirs):
            self.assertFalse(os.path.exists(path), path)
        shutil.rmtree(tree)
        self.assertEqual(stack.filesctl("fsck", "--grace", "0").returncode, 0)
        self.assertEqual(client.content(kept).body, batch_jsonl(2))


    def stack(self, name, **kw):
        stack = Stack(workers=1, name=name, **kw).start()
        self.addCleanup(stack.stop)
        return stack

    def test_a_stray_just_linked_is_pending_however_old_its_writes(self):
        # An upload whose last write was long ago, caught between its link into
        # place and its row commit: its age counts from the link (ctime).
        stack = self.stack("fsckslow")
        stray = os.path.join(stack.data_dir, "files", "zy", "file_" + "R" * 22 + "zy")
        os.makedirs(os.path.dirname(stray), exist_ok=True)
        with open(stray, "wb") as f:
            f.write(b"{}\n")
        old = time.time() - 3600
        os.utime(stray, (old, old))
        res = stack.filesctl("fsck", "--repair", check=False)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertIn("pending: content file without a live row " + stray, res.stdout)
        self.assertTrue(os.path.exists(stray))

    def test_content_that_cannot_be_opened_is_reported_not_repaired(self):
        stack = self.stack("fsckloop")
        client = stack.new_client()
        file_id = client.upload_ok(batch_jsonl(2))["id"]
        path = stack.content_path(file_id)
        os.rename(path, path + ".kept")
        os.symlink(os.path.basename(path), path)  # a loop: open() fails with ELOOP
        res = stack.filesctl("fsck", "--repair", check=False)
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertIn("problem: row %s: content file cannot be opened (not checked)" % file_id,
                      res.stdout)
        self.assertEqual(client.retrieve(file_id).status, 200)  # no tombstone
        os.unlink(path)
        os.rename(path + ".kept", path)
        self.assertEqual(stack.filesctl("fsck", check=False).returncode, 0)

    @unittest.skipIf(os.geteuid() != 0, "needs root")
    def test_a_store_directory_it_cannot_read_is_a_problem_not_clean(self):
        # fsck works as the database's owner: tmp/ or files/ that owner cannot
        # list was skipped without a word, and an unchecked store passed clean.
        with tempfile.TemporaryDirectory() as cwd:
            data = service_users_data_dir(cwd)
            for name in ("tmp", "files"):
                with self.subTest(directory=name):
                    os.chmod(os.path.join(data, name), 0)
                    res = filesctl_at(data, "fsck")
                    os.chmod(os.path.join(data, name), 0o700)
                    self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
                    self.assertIn("problem: %s/%s: directory cannot be read (Permission denied; "
                                  "not checked)" %
                                  (data, name), res.stdout)
            res = filesctl_at(data, "fsck")
            self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

    def start_paused(self, stack, point, *args):
        """Runs filesctl ARGS paused 1 s at point; returns the process once it is there."""
        env = dict(stack._env(), FILES_API_PAUSE_AT=point)
        proc = subprocess.Popen(stack.filesctl_prefix() + ["--data-dir", stack.data_dir] +
                                list(args), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.assertIn("pausing 1 s at " + point, proc.stderr.readline())
        return proc

    def test_keys_create_beside_a_lone_write_ahead_log_refuses_and_makes_nothing(self):
        # The database was moved away while in use: its log is left. keys
        # create refuses (a new database would take that log for its own), and
        # leaves the directory as it found it, without the store's folders.
        data = tempfile.mkdtemp(prefix="files-api-ctl-lonewal.")
        self.addCleanup(shutil.rmtree, data, True)
        with open(os.path.join(data, "files.db-wal"), "wb") as wal:
            wal.write(b"\0" * 32)
        res = subprocess.run([str(BIN_DIR / "filesctl"), "--data-dir", data, "keys", "create",
                              "--account", "acme", "--scopes", "*"], capture_output=True, text=True)
        self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
        self.assertIn("files.db is missing, but its write-ahead log", res.stderr)
        self.assertEqual(res.stdout, "")
        self.assertEqual(os.listdir(data), ["files.db-wal"])

    def test_an_emptied_database_beside_stored_content_is_refused_not_made_new(self):
        # An empty files.db (truncated, or a restore that wrote nothing) is a
        # new database to SQLite: taken for one, every file lost its row, and
        # fsck --repair then removed all the content as strays.
        with tempfile.TemporaryDirectory() as cwd:
            data = os.path.join(cwd, "data")
            file_id = data_dir_with_a_file(data)
            content = os.path.join(data, "files", file_id[-2:], file_id)
            self.assertTrue(os.path.exists(content))
            open(os.path.join(data, "files.db"), "wb").close()
            for args in (["fsck", "--repair", "--grace", "0"], ["keys", "list"],
                         ["keys", "create", "--account", "b", "--scopes", "*"]):
                with self.subTest(args=args):
                    res = filesctl_at(data, *args)
                    self.assertEqual((res.returncode, res.stdout), (1, ""), res.stderr)
                    self.assertIn("files.db has no tables, but %s/files holds content" % data,
                                  res.stderr)
            self.assertTrue(os.path.exists(content))
            self.assertEqual(os.path.getsize(os.path.join(data, "files.db")), 0)  # as found
            # gone altogether (its log too): none is made beside the content
            os.unlink(os.path.join(data, "files.db"))
            for name in ("files.db-wal", "files.db-shm"):
                if os.path.exists(os.path.join(data, name)):
                    os.unlink(os.path.join(data, name))
            res = filesctl_at(data, "keys", "create", "--account", "b", "--scopes", "*")
            self.assertEqual((res.returncode, res.stdout), (1, ""), res.stderr)
            self.assertIn("files.db is missing, but %s/files holds content" % data, res.stderr)
            self.assertEqual(sorted(os.listdir(data)), ["files", "tmp"])

    def test_a_store_holding_only_empty_shards_is_no_content(self):
        # A shard directory stays when its last file is deleted: it holds
        # nothing a new database would disown.
        with tempfile.TemporaryDirectory() as cwd:
            data = os.path.join(cwd, "data")
            file_id = data_dir_with_a_file(data)
            filesctl_at(data, "files", "rm", file_id, check=True)
            self.assertEqual(os.listdir(os.path.join(data, "files", file_id[-2:])), [])
            for name in ("files.db", "files.db-wal", "files.db-shm"):
                if os.path.exists(os.path.join(data, name)):
                    os.unlink(os.path.join(data, name))
            res = filesctl_at(data, "keys", "create", "--account", "b", "--scopes", "*")
            self.assertEqual(res.returncode, 0, res.stderr)

    @unittest.skipUnless(PAUSES_BUILT, "pause points are compiled only into the test build")
    def test_a_database_another_process_creates_meanwhile_is_not_taken_for_a_moved_one(self):
        # filesctl finds no files.db; before it looks for a write-ahead log,
        # another process creates the database and its log. That log has its
        # database: it must open it, not refuse as for one moved away.
        data = tempfile.mkdtemp(prefix="files-api-ctl-create.")
        self.addCleanup(shutil.rmtree, data, True)
        env = dict(STACK._env(), FILES_API_PAUSE_AT="db_open_missing")
        proc = subprocess.Popen([str(BIN_DIR / "filesctl"), "--data-dir", data, "keys", "create",
                                 "--account", "acme", "--scopes", "*"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.assertIn("pausing 1 s at db_open_missing", proc.stderr.readline())
        other = sqlite3.connect(os.path.join(data, "files.db"), isolation_level=None)
        self.addCleanup(other.close)
        other.execute("PRAGMA journal_mode = WAL")
        other.execute("CREATE TABLE other_process (x)")
        self.assertTrue(os.path.exists(os.path.join(data, "files.db-wal")))
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, out + err)
        self.assertNotIn("is missing", err)

    @unittest.skipUnless(PAUSES_BUILT, "pause points are compiled only into the test build")
    def test_a_row_deleted_while_fsck_runs_is_no_problem(self):
        stack = self.stack("fsckrace")
        client = stack.new_client()
        file_id = client.upload_ok(batch_jsonl(2))["id"]
        fsck = self.start_paused(stack, "fsck_row_read", "fsck", "--repair")
        self.assertEqual(client.delete(file_id).status, 200)
        out, err = fsck.communicate(timeout=30)
        self.assertEqual(fsck.returncode, 0, out + err)
        self.assertIn(", problems: 0,", out)

    @unittest.skipUnless(PAUSES_BUILT, "pause points are compiled only into the test build")
    def test_gc_skips_a_file_another_gc_deleted(self):
        stack = self.stack("gcrace")
        client = stack.new_client()
        file_id = client.upload_ok(batch_jsonl(2))["id"]
        expire_now(file_id, stack)
        first = self.start_paused(stack, "gc_after_listing", "gc")
        self.assertIn("gc: expired files deleted: 1\n", stack.filesctl("gc").stdout)
        out, err = first.communicate(timeout=30)
        self.assertEqual(first.returncode, 0, out + err)
        self.assertIn("gc: expired files deleted: 0\n", out)

    @unittest.skipUnless(PAUSES_BUILT, "pause points are compiled only into the test build")
    def test_gc_every_stops_between_files_not_after_the_pass(self):
        # A stop used to wait for the whole pass: minutes over a million
        # expired files, with serve.sh waiting on it.
        stack = self.stack("gcstop")
        client = stack.new_client()
        ids = [client.upload_ok(batch_jsonl(2))["id"] for _ in range(3)]
        conn = sqlite3.connect(os.path.join(stack.data_dir, "files.db"), timeout=10,
                               isolation_level=None)
        self.addCleanup(conn.close)
        conn.execute("UPDATE files SET expires_at = ?", (int(time.time()) - 1,))
        gc = self.start_paused(stack, "gc_after_listing", "gc", "--every", "3600")
        gc.send_signal(signal.SIGTERM)
        out, err = gc.communicate(timeout=30)
        self.assertEqual(gc.returncode, 0, out + err)
        self.assertEqual(out, "gc: expired files deleted: 0 (stopped before the rest)\n")
        left = conn.execute("SELECT count(*) FROM files WHERE deleted_at IS NULL").fetchone()[0]
        self.assertEqual(left, len(ids))

    def test_a_busy_database_is_said_so(self):
        stack = self.stack("ctlbusy", config="db_busy_timeout_ms = 300\n")
        client = stack.new_client()
        file_id = client.upload_ok(batch_jsonl(2))["id"]
        broken = client.upload_ok(batch_jsonl(1))["id"]
        os.unlink(stack.content_path(broken))
        with stack.write_lock_held():
            res = stack.filesctl("files", "rm", file_id, check=False)
            made = stack.filesctl("keys", "create", "--account", "busy", "--scopes", "*",
                                  check=False)
            # a repair not done says why, not only what was found
            fsck = stack.filesctl("fsck", "--repair", "--grace", "0", check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("the database is busy", res.stderr)
        self.assertEqual((made.returncode, made.stdout), (1, ""))
        self.assertIn("storing the key: the database is busy", made.stderr)
        self.assertEqual(client.retrieve(file_id).status, 200)
        self.assertEqual(fsck.returncode, 1, fsck.stdout + fsck.stderr)
        self.assertIn("problem: row %s: content file missing; not repaired: the database is busy"
                      % broken, fsck.stdout)
        self.assertIn("tombstoned row " + broken,
                      stack.filesctl("fsck", "--repair", "--grace", "0").stdout)


LONG_MAX = 2 ** 63 - 1


@once_is_enough
class ArgumentsTest(ApiTestCase):
    def test_the_most_seconds_a_long_holds_are_taken(self):
        ctl = str(BIN_DIR / "filesctl")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FILES_API_")}
        with tempfile.TemporaryDirectory() as data:
            def filesctl(*args):
                return subprocess.run([ctl, "--data-dir", data] + list(args), env=env,
                                      capture_output=True, text=True)
            self.assertEqual(filesctl("keys", "create", "--account", "a", "--scopes", "")
                             .returncode, 0)
            stray = os.path.join(data, "files", "zz", "file_" + "Q" * 22 + "zz")
            os.makedirs(os.path.dirname(stray))
            with open(stray, "wb") as f:
                f.write(b"{}\n")
            res = filesctl("fsck", "--grace", str(LONG_MAX))  # never old enough
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn("(younger than %d s)" % LONG_MAX, res.stdout)
            self.assertEqual(filesctl("fsck", "--grace", "0").returncode, 1)
            gc = subprocess.Popen([ctl, "--data-dir", data, "gc", "--every", str(LONG_MAX)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
            self.addCleanup(gc.kill)
            time.sleep(1)  # a pass (silent: nothing expired), then the wait
            self.assertIsNone(gc.poll(), "gc --every %d did not wait" % LONG_MAX)
            with open("/proc/%d/stat" % gc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
            self.assertLess(cpu, 0.5, "gc --every %d does not sleep between passes" % LONG_MAX)
            gc.send_signal(signal.SIGTERM)
            out, err = gc.communicate(timeout=10)
            self.assertEqual((gc.returncode, out, err), (0, "", ""))

    def test_wrong_arguments_are_refused_before_anything_is_created(self):
        ctl = str(BIN_DIR / "filesctl")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FILES_API_")}
        cases = {
            ("fsck", "--data-dir", "/elsewhere"): "unknown option --data-dir",
            ("fsck", "--repiar"): "unknown option --repiar",
            ("fsck", "--grace"): "--grace needs a value",
            ("fsck", "--grace", ""): "--grace takes a number",
            ("fsck", "--grace", "99999999999999999999999"): "--grace takes a number",
            ("files", "list", "--acount", "x"): "unknown option --acount",
            ("files", "show"): "files show needs ID",
            ("files", "import", "--account", "a", "--purpose", "batch", "a", "b"):
                "unexpected argument b",
            ("keys", "create", "--account", "a", "--scopes", "", "extra"):
                "unexpected argument extra",
            ("gc", "now"): "unexpected argument now",
            ("gc", "--every", "-1"): "--every takes a number of seconds",
            ("gc", "--every", "10m"): "--every takes a number of seconds",
            # digits only (strtol took leading blanks and a sign, not trailing ones)
            ("gc", "--every", " 5"): "--every takes a number of seconds",
            ("gc", "--every", "+5"): "--every takes a number of seconds",
            ("fsck", "--grace", " 5"): "--grace takes a number of seconds",
            ("gc", "--every", str(LONG_MAX + 1)): "--every takes a number of seconds",
            ("fsck", "--grace", str(LONG_MAX + 1)): "--grace takes a number of seconds",
            ("keys", "create", "--account", "a", "--account", "b"): "--account given twice",
            ("fsck", "--repair", "--repair"): "--repair given twice",
            ("--data-dir", "d1", "--data-dir", "d2", "gc"): "--data-dir given twice",
            ("--config", "c1", "--config", "c2", "gc"): "--config given twice",
            # a value that is another option, or help, is a value left out
            ("keys", "create", "--account", "--scopes", "--scopes", "x"): "--account needs a value",
            ("keys", "create", "--account", "-h", "--scopes", "x"): "--account needs a value",
            ("keys", "create", "--account", "--", "--scopes", "x"): "--account needs a value",
            ("keys", "create", "--account", "a", "--scopes", "x", "--name", "--help"):
                "--name needs a value",
            ("--data-dir",): "--data-dir needs a value",
            ("--data-dir", "", "gc"): "--data-dir needs a value",
            ("--data-dir", "--help", "keys", "list"): "--data-dir needs a value",
            ("--config", "--data-dir", "x", "gc"): "--config needs a value",
            ("--verbose", "gc"): "unknown option --verbose",
            ("bogus",): "unknown command bogus",
            ("keys",): "keys needs a command",
            ("keys", "make"): "unknown command keys make",
            # values keys create refuses: no new data directory for a key not made
            ("keys", "create", "--account", "a", "--scopes", "a,,b"): "--scopes has an empty item",
            ("keys", "create", "--account", "a b", "--scopes", ""): "an account name is",
            ("keys", "create", "--account", "a" * 128, "--scopes", ""): "too long",
            ("keys", "create", "--account", "a", "--scopes", "a b"): "a scope is",
            ("keys", "create", "--account", "a", "--scopes", "", "--name", "a\x01"): "bad --name",
        }
        for args, message in cases.items():
            with self.subTest(args=args), tempfile.TemporaryDirectory() as cwd:
                valued = args[:2] in (("fsck", "--grace"), ("gc", "--every"))
                if valued:  # a value's meaning is the command's:
                    subprocess.run([ctl, "keys", "create", "--account", "a", "--scopes", ""],
                                   cwd=cwd, env=env, capture_output=True, check=True)
                res = subprocess.run([ctl] + list(args), cwd=cwd, env=env, capture_output=True,
                                     text=True)
                self.assertEqual(res.returncode, 2, res.stderr)
                self.assertIn(message, res.stderr)
                if not valued:
                    self.assertEqual(os.listdir(cwd), [], "the default data directory appeared")

    def test_the_path_of_an_import_may_stand_anywhere(self):
        stack = Stack(workers=1, name="import-order").start()
        self.addCleanup(stack.stop)
        client = stack.new_client()
        path = os.path.join(stack.tmp, "in.jsonl")
        with open(path, "wb") as f:
            f.write(batch_jsonl(2))
        res = stack.filesctl("files", "import", path, "--account", client.account,
                             "--purpose", "batch")
        file_id = json.loads(res.stdout)["id"]
        self.assertEqual(client.content(file_id).body, batch_jsonl(2))
        # after "--" an argument is a path even if it looks like an option
        dashed = os.path.join(stack.tmp, "-d.jsonl")
        shutil.copy(path, dashed)
        res = subprocess.run(stack.filesctl_prefix() + [
            "--data-dir", stack.data_dir, "files", "import", "--account", client.account,
            "--purpose", "batch", "--", "-d.jsonl"], cwd=stack.tmp, capture_output=True,
            text=True, env=stack._env())
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(json.loads(res.stdout)["filename"], "-d.jsonl")
        # (--purpose is the path there, and batch one argument too many)
        for args, message in ((["--account", "x", "--", "--purpose", "batch"],
                               "unexpected argument batch"),
                              (["--account", "x", "--purpose", "batch", "--", "a", "--"],
                               "unexpected argument --")):
            res = stack.filesctl("files", "import", *args, check=False)
            self.assertEqual(res.returncode, 2, res.stderr)
            self.assertIn(message, res.stderr)

    def test_help_is_a_flag_only_where_an_option_may_stand(self):
        ctl = str(BIN_DIR / "filesctl")
        for args in (["keys", "create", "--help"], ["keys", "create", "--account", "a", "-h"],
                     ["keys", "--help"], ["fsck", "-h"], ["--help"]):
            with self.subTest(args=args), tempfile.TemporaryDirectory() as cwd:
                res = subprocess.run([ctl] + args, cwd=cwd, capture_output=True, text=True)
                self.assertEqual(res.returncode, 0, res.stderr)
                self.assertIn("usage: filesctl", res.stdout)
                self.assertEqual(os.listdir(cwd), [])
        res = subprocess.run([ctl, "keys", "--help"], capture_output=True, text=True)
        self.assertIn("keys create", res.stdout)
        self.assertNotIn("files import", res.stdout)

    @unittest.skipIf(os.geteuid() != 0, "needs root")
    def test_as_root_it_works_as_the_data_directorys_owner(self):
        # What root's filesctl creates (a shard, content, the database's WAL)
        # stays the service user's, or the service could not read or delete it.
        ctl = str(BIN_DIR / "filesctl")
        www = pwd.getpwnam("www-data")
        with tempfile.TemporaryDirectory() as cwd:
            data = service_users_data_dir(cwd)
            # The directory itself may stay root's (serve.sh leaves one holding
            # other things as it is): the service's user is the database's owner.
            os.chown(data, 0, 0)
            os.chmod(data, 0o1777)
            path = os.path.join(cwd, "in.jsonl")
            with open(path, "wb") as f:
                f.write(batch_jsonl(2))
            os.chmod(path, 0o600)  # root's alone: read as root, before becoming www-data
            res = subprocess.run([ctl, "--data-dir", data, "files", "import", "--account", "a",
                                  "--purpose", "batch", path], capture_output=True, text=True)
            self.assertEqual(res.returncode, 0, res.stderr)
            file_id = json.loads(res.stdout)["id"]
            subprocess.run([ctl, "--data-dir", data, "keys", "create", "--account", "b",
                            "--scopes", "*"], capture_output=True, check=True)
            for root, dirs, names in os.walk(data):
                for name in dirs + names:
                    st = os.lstat(os.path.join(root, name))
                    self.assertEqual((st.st_uid, st.st_gid), (www.pw_uid, www.pw_gid),
                                     os.path.join(root, name))
            self.assertTrue(os.path.exists(os.path.join(data, "files", file_id[-2:], file_id)))

    @unittest.skipIf(os.geteuid() != 0, "needs root")
    def test_as_root_it_refuses_a_database_that_is_a_link(self):
        # Root works as files.db's owner: a link there, which the service's
        # user can make, had root's filesctl open (and write) what it named.
        ctl = str(BIN_DIR / "filesctl")
        with tempfile.TemporaryDirectory() as cwd:
            roots = os.path.join(cwd, "roots")
            subprocess.run([ctl, "--data-dir", roots, "keys", "create", "--account", "root",
                            "--scopes", "*"], capture_output=True, check=True)
            data = os.path.join(cwd, "data")
            os.mkdir(data)
            os.symlink(os.path.join(roots, "files.db"), os.path.join(data, "files.db"))
            subprocess.run(["chown", "-h", "-R", "www-data:www-data", data], check=True)
            before = os.stat(os.path.join(roots, "files.db")).st_mtime_ns
            res = subprocess.run([ctl, "--data-dir", data, "keys", "create", "--account", "x",
                                  "--scopes", "*"], capture_output=True, text=True)
            self.assertEqual((res.returncode, res.stdout), (1, ""))
            self.assertIn("is a symbolic link", res.stderr)
            self.assertEqual(os.stat(os.path.join(roots, "files.db")).st_mtime_ns, before)
            listed = subprocess.run([ctl, "--data-dir", roots, "keys", "list"],
                                    capture_output=True, text=True, check=True).stdout
            self.assertNotIn(" x ", listed)

    def test_a_directory_that_is_no_data_directory_is_refused_not_created(self):
        ctl = str(BIN_DIR / "filesctl")
        with tempfile.TemporaryDirectory() as cwd:
            typo = os.path.join(cwd, "typo")
            for args in (["fsck"], ["files", "list"], ["keys", "list"], ["gc"],
                         ["keys", "revoke", "key_x"], ["files", "show", "file_x"]):
                with self.subTest(args=args):
                    res = subprocess.run([ctl, "--data-dir", typo] + args, capture_output=True,
                                         text=True)
                    self.assertEqual(res.returncode, 1, res.stderr)
                    self.assertIn("%s is not a data directory" % typo, res.stderr)
                    self.assertFalse(os.path.exists(typo))
            # the first key makes one (make run does this before the service starts)
            res = subprocess.run([ctl, "--data-dir", typo, "keys", "create", "--account", "a",
                                  "--scopes", "*"], capture_output=True, text=True)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertTrue(os.path.exists(os.path.join(typo, "files.db")))
            res = subprocess.run([ctl, "--data-dir", typo, "fsck"], capture_output=True, text=True)
            self.assertEqual(res.returncode, 0, res.stderr)


    def test_a_misspelled_setting_in_the_environment_is_warned_about(self):
        ctl = str(BIN_DIR / "filesctl")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FILES_API_")}
        env.update(FILES_API_MAX_FILE_BYTE="5", FILES_API_MAX_REQUESTS="9")
        res = subprocess.run([ctl, "config", "get", "max_requests"], env=env,
                             capture_output=True, text=True)
        self.assertEqual((res.returncode, res.stdout), (0, "9\n"))
        self.assertEqual(res.stderr, "filesctl: warning: $FILES_API_MAX_FILE_BYTE is not a "
                         "setting and is ignored (a setting is FILES_API_ and a config key "
                         "in capitals)\n")


    def test_config_unknown_env_lists_the_names_it_would_warn_of(self):
        ctl = str(BIN_DIR / "filesctl")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FILES_API_")}
        env.update(FILES_API_MAX_FILE_BYTE="5", FILES_API_MAX_REQUESTS="9", FILES_API_BIN="/x",
                   FILES_API_ZZ_TOP="")
        res = subprocess.run([ctl, "config", "unknown-env"], env=env, capture_output=True,
                             text=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(sorted(res.stdout.splitlines()),
                         ["FILES_API_MAX_FILE_BYTE", "FILES_API_ZZ_TOP"])
        self.assertEqual(res.stderr, "")  # listed, not warned of


@once_is_enough
class HelpTest(ApiTestCase):
    def test_help_that_cannot_be_written_out_is_a_failure(self):
        with open("/dev/full", "w") as full:
            for args in (["--help"], ["keys", "--help"], ["gc", "--help"]):
                with self.subTest(args=args):
                    res = subprocess.run([str(BIN_DIR / "filesctl")] + args, stdout=full,
                                         stderr=subprocess.PIPE, text=True)
                    self.assertEqual(res.returncode, 1, res.stderr)
                    self.assertIn("writing the output", res.stderr)

    def test_every_subcommand_has_help_and_errors_exit_nonzero(self):
        ctl = str(BIN_DIR / "filesctl")
        top = subprocess.run([ctl, "--help"], capture_output=True, text=True)
        self.assertEqual(top.returncode, 0)
        commands = re.findall(r"^  (\w+(?: [\w-]+)?)(?: |$)", top.stdout, re.M)
        self.assertGreaterEqual(len(commands), 10, top.stdout)
        self.assertTrue({"gc", "keys list", "config show", "fsck"} <= set(commands), commands)
        self.assertNotRegex(top.stdout, r"[ \t]\n", "no line ends in white space")
        for command in commands:
            res = subprocess.run([ctl] + command.split() + ["--help"], capture_output=True,
                                 text=True)
            self.assertEqual(res.returncode, 0, command)
            self.assertIn(command, res.stdout)
        bad = subprocess.run([ctl, "nonsense"], capture_output=True, text=True)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("usage", bad.stderr)
        self.assertEqual(bad.stdout, "")

