"""Faults lose nothing: a worker that dies at any step of an upload or a delete
leaves the file either whole or absent, never partial; workers SIGKILLed at
random during concurrent uploads lose no acknowledged file; fsck --repair then
fsck come out clean.

The crash points need the test build (make SANITIZE=1, which `make test`
runs): in a release build they are compiled out and those tests are skipped."""

import hashlib
import os
import random
import resource
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

from harness import (BIN_DIR, ApiTestCase, Response, Stack, StackError, batch_jsonl, once_is_enough,
                     raw_request)

HOOKS_BUILT = b"FILES_API_CRASH_AT" in (BIN_DIR / "files-fcgi").read_bytes()
WEB_SERVER_SPAWNS = os.environ.get("FILES_API_SERVER") in ("lighttpd-spawn", "apache-fcgid")


def sha(data):
    return hashlib.sha256(data).hexdigest()


class FaultCase(ApiTestCase):
    def start(self, **kw):
        stack = Stack(**kw).start()
        self.addCleanup(stack.stop)
        return stack

    def assert_clean_after_repair(self, stack):
        """fsck --repair (no grace: nothing is in flight), then fsck exits 0."""
        stack.filesctl("fsck", "--repair", "--grace", "0", check=False)
        res = stack.filesctl("fsck", "--grace", "0", check=False)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

    def assert_whole_or_absent(self, client, content):
        """Every listed file is byte-identical to what was sent; returns the ids."""
        ids = client.all_ids()
        for file_id in ids:
            resp, digest, size = client.download_sha256(file_id)
            self.assertEqual(resp.status, 200)
            self.assertEqual((digest, size), (sha(content), len(content)))
        return ids


@unittest.skipUnless(HOOKS_BUILT, "crash points are compiled only into the test build")
class CrashPointTest(FaultCase):
    UPLOAD_POINTS = {
        # point: is the file there afterwards?
        "upload_after_write": False,
        "upload_after_fsync": False,
        "upload_after_link": False,
        "upload_after_dir_fsync": False,
        "upload_after_commit": True,
        "upload_before_response": True,
    }

    def test_upload_crash_points(self):
        for point, present in self.UPLOAD_POINTS.items():
            with self.subTest(point=point):
                stack = self.start(workers=1, name="crash", env={"FILES_API_CRASH_AT": point})
                client = stack.new_client()
                content = batch_jsonl(50, tag="-" + point)
                resp = client.upload(content)
                self.assertGreaterEqual(resp.status, 500, "%s: %r" % (point, resp.body[:200]))
                self.assertIn("crashing at " + point, stack.wait_for_log(
                    lambda t: "crashing at " + point in t))
                # The next requests succeed (a fresh worker) and see whole or nothing.
                ids = self.assert_whole_or_absent(client, content)
                self.assertEqual(len(ids), 1 if present else 0, point)
                self.assert_clean_after_repair(stack)
                self.assertEqual(len(client.all_ids()), len(ids), point)
                stack.stop()

    def test_delete_crash_points(self):
        for point in ("delete_after_commit", "delete_after_unlink"):
            with self.subTest(point=point):
                stack = self.start(workers=1, name="crash", env={"FILES_API_CRASH_AT": point})
                client = stack.new_client()
                file_id = client.upload_ok(batch_jsonl(3))["id"]
                resp = client.delete(file_id)
                self.assertGreaterEqual(resp.status, 500)
                # The row went first: the file is gone for the API either way.
                self.assertError(client.retrieve(file_id), 404, "INFERENCE_3302")
                self.assertError(client.content(file_id), 404, "INFERENCE_3302")
                self.assertEqual(client.all_ids(), [])
                self.assert_clean_after_repair(stack)
                stack.stop()


@unittest.skipUnless(HOOKS_BUILT, "pause points are compiled only into the test build")
class DeleteDuringDownloadTest(FaultCase):
    def test_content_deleted_after_its_lookup_is_404(self):
        stack = self.start(workers=2, name="racedl",
                           env={"FILES_API_PAUSE_AT": "content_after_lookup"})
        client = stack.new_client()
        file_id = client.upload_ok(batch_jsonl(3))["id"]
        got = {}
        download = threading.Thread(target=lambda: got.update(resp=client.content(file_id)))
        download.start()
        stack.wait_for_log(lambda t: "pausing 1 s at content_after_lookup" in t)
        # The other worker deletes the file while the first holds its lookup.
        self.assertEqual(stack.client(client.key).delete(file_id).status, 200)
        download.join(30)
        self.assertError(got["resp"], 404, "INFERENCE_3302")
        self.assertNotIn("missing or damaged", stack.log_text())


@once_is_enough  # the worker and its database
class MovedDatabaseTest(FaultCase):
    def test_writes_are_refused_while_the_database_is_not_at_its_path(self):
        # A worker keeps files.db open: moved away, it would take writes into
        # a file the service never opens again, and answer 200.
        stack = self.start(workers=2, name="dbmoved")
        client = stack.new_client()
        kept = client.upload_ok(batch_jsonl(2))["id"]
        db = os.path.join(stack.data_dir, "files.db")
        os.rename(db, db + ".moved")
        try:
            self.assertError(client.upload(batch_jsonl(2, tag="-lost")), 500, "SYSTEM_9001")
            self.assertError(client.delete(kept), 500, "SYSTEM_9001")
            self.assertEqual(client.request("GET", "/healthz", auth="none").status, 503)
            self.assertIn("is no longer at its path", stack.log_text())
        finally:
            os.rename(db + ".moved", db)
        # Back in place: nothing was written while it was away, and writes go on.
        self.assertEqual(client.request("GET", "/healthz", auth="none").status, 200)
        self.assertEqual(client.all_ids(), [kept])
        again = client.upload_ok(batch_jsonl(2, tag="-after"))["id"]
        self.assertEqual(client.all_ids(), [again, kept])
        self.assert_clean_after_repair(stack)


@once_is_enough  # the worker and its database
class DamagedDatabaseTest(FaultCase):
    def test_healthz_reports_a_damaged_database_until_fsck_finds_it_whole(self):
        # A damaged page of the files table failed every list with a 500
        # while /healthz, which reads only the key table, said 200.
        stack = self.start(workers=2, name="dbdamage", serve_args=["--start-timeout", "3"])
        client = stack.new_client()
        for i in range(40):  # a files table of several pages
            client.upload_ok(batch_jsonl(1, tag="-%d" % i), filename="f%d.jsonl" % i)
        stack._stop_process()  # the log is checkpointed into files.db
        path = os.path.join(stack.data_dir, "files.db")
        conn = sqlite3.connect(path)
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'files'").fetchone()[0]
        conn.close()
        with open(path, "r+b") as f:
            f.seek((root - 1) * page_size)
            intact = f.read(page_size)
            f.seek((root - 1) * page_size)
            f.write(b"\x00" * page_size)  # no valid b-tree page type
        stack.restart()
        marker = path + ".damaged"
        self.assertEqual(client.request("GET", "/healthz", auth="none").status, 200)
        # Found by another process (here filesctl): every worker says so.
        res = stack.filesctl("files", "list", check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("the database is damaged (", res.stderr)
        self.assertTrue(os.path.exists(marker))
        for _ in range(6):
            resp = client.request("GET", "/healthz", auth="none")
            self.assertEqual((resp.status, resp.json()), (503, {"status": "unavailable"}))
        self.assertError(client.list(), 500, "SYSTEM_9001")
        self.assertNotIn("cannot rollback", stack.log_text())  # SQLite had, already
        res = stack.filesctl("fsck", check=False)
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertTrue(os.path.exists(marker))
        # A start with the mark there says why it does not come up.
        stack._stop_process()
        with self.assertRaises(StackError):
            stack._start_once()
        log = stack.log_text()
        self.assertIn("files.db.damaged is there", log)
        self.assertIn("SQLite found the database damaged", log)
        self.assertNotIn("the workers cannot start", log)
        stack._stop_process()
        with open(path, "r+b") as f:  # the operator's restore
            f.seek((root - 1) * page_size)
            f.write(intact)
        res = stack.filesctl("fsck", check=False)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertIn("the database is whole again", res.stdout)
        self.assertFalse(os.path.exists(marker))
        stack.restart()
        self.assertEqual(client.request("GET", "/healthz", auth="none").status, 200)
        self.assertEqual(len(client.all_ids()), 40)


@once_is_enough  # the worker's own descriptors
class OutOfDescriptorsTest(FaultCase):
    def test_a_worker_short_of_descriptors_answers_503_and_keeps_serving(self):
        # Out of descriptors (RLIMIT_NOFILE, or the system's table full) was a
        # 500 for an upload or a download, and at accept it ended the worker.
        stack = self.start(workers=1, name="nofile")
        client = stack.new_client()
        kept = client.upload_ok(batch_jsonl(2))["id"]
        [pid] = stack.worker_pids()
        open_fds = self.fds_between_requests(pid)
        first_free = min(set(range(len(open_fds) + 1)) - open_fds)
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        self.addCleanup(self.set_nofile, pid, (soft, hard))
        # Room for the request's connection, none for a file.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (first_free + 1, hard))
        for resp in (client.upload(batch_jsonl(2, tag="-refused")), client.content(kept)):
            self.assertError(resp, 503, "SYSTEM_9003")
            self.assertEqual(resp.header("Retry-After"), "1")
            self.assertIn("short of open files", resp.json()["error"]["message"])
        self.assertIn("Too many open files (answered 503)", stack.log_text())
        # No room for the connection either: the request waits, the worker stays.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (first_free, hard))
        answer = {}
        waiting = threading.Thread(target=lambda: answer.setdefault("r", client.retrieve(kept)))
        waiting.start()
        stack.wait_for_log(lambda t: "accepting a request: Too many open files (trying again"
                           in t, timeout=10)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        waiting.join(30)
        self.assertEqual(answer["r"].status, 200)
        self.assertEqual(stack.worker_pids(), [pid])
        self.assertEqual(client.all_ids(), [kept])
        self.assertEqual(client.content(kept).status, 200)
        # Short of them again, a stop still stops it (the queued connection
        # kept its wait for a request from ever taking the stop signal), and
        # the worker that replaces it answers the request.
        self.fds_between_requests(pid)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (first_free, hard))
        answer.clear()
        waiting = threading.Thread(target=lambda: answer.setdefault("r", client.retrieve(kept)))
        waiting.start()
        stack.wait_for_log(lambda t: t.count("accepting a request: Too many open files") == 2,
                           timeout=10)
        os.kill(pid, signal.SIGUSR1)  # multiwatch's graceful stop
        waiting.join(10)
        self.assertIn("r", answer, "the stopped worker still holds its place")
        self.assertEqual(answer["r"].status, 200)
        self.assertNotIn(pid, stack.worker_pids())

    @unittest.skipIf(WEB_SERVER_SPAWNS, "the web server starts the workers: no multiwatch to limit")
    def test_a_worker_started_with_no_descriptor_to_spare_says_so_and_answers(self):
        # Started under an RLIMIT_NOFILE that its own descriptors fill, a
        # worker waited at accept for room that never came: every request, a
        # health check too, hung for as long as the limit stood. With fewer
        # than the four an upload may need, it started and refused uploads.
        stack = self.start(workers=1, name="nofilestart")
        client = stack.new_client()
        [pid] = stack.worker_pids()
        held = len(self.fds_between_requests(pid))
        with open("/proc/%d/stat" % pid) as f:
            multiwatch = int(f.read().rsplit(")", 1)[1].split()[1])
        limits = resource.prlimit(multiwatch, resource.RLIMIT_NOFILE)
        self.addCleanup(self.set_nofile, multiwatch, limits)
        refusal, started = "leaves fewer than 4 descriptors", " started, data in "
        for spare in (-1, 3, 4):
            with self.subTest(spare=spare):
                text = stack.log_text()
                counts = (text.count(refusal), text.count(started))
                resource.prlimit(multiwatch, resource.RLIMIT_NOFILE, (held + spare, limits[1]))
                for worker in stack.worker_pids():
                    os.kill(worker, signal.SIGKILL)  # its replacement starts under the limit
                stack.wait_for_log(lambda t: (t.count(refusal), t.count(started)) != counts)
                if spare < 4:
                    raw = raw_request(stack, b"GET /v1/files HTTP/1.1\r\nHost: x\r\n"
                                      b"Authorization: Bearer " + client.key.encode() +
                                      b"\r\nConnection: close\r\n\r\n", timeout=5)
                    self.assertError(Response.from_wire(raw), 503, "SYSTEM_9003",
                                     message="cannot start")
                else:
                    client.upload_ok(batch_jsonl(2))
        self.set_nofile(multiwatch, limits)
        deadline = time.monotonic() + 5
        while client.list().status != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(client.list().status, 200)

    @staticmethod
    def set_nofile(pid, limits):
        try:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
        except ProcessLookupError:
            pass

    def fds_between_requests(self, pid):
        """The worker's descriptors once it holds no connection (the last
        request's may close a moment after its answer)."""
        deadline = time.monotonic() + 5
        while True:
            fds = {}
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    fds[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except FileNotFoundError:
                    fds[int(fd)] = "socket:"  # closed meanwhile: look again
            if not any(int(fd) and target.startswith("socket:") for fd, target in fds.items()):
                return set(fds)
            self.assertLess(time.monotonic(), deadline, "a connection stays open: %r" % fds)
            time.sleep(0.05)


@unittest.skipUnless(HOOKS_BUILT, "pause points are compiled only into the test build")
class FsckDuringUploadTest(FaultCase):
    def start_paused_upload(self, point, workers):
        """A stack whose workers pause at point, and an upload paused there;
        returns the stack, the client, the upload's thread and its response's dict."""
        stack = self.start(workers=workers, name="race" + point[-6:],
                           env={"FILES_API_PAUSE_AT": point})
        client = stack.new_client()
        got = {}
        upload = threading.Thread(target=lambda: got.update(resp=client.upload(batch_jsonl(3))))
        upload.start()
        stack.wait_for_log(lambda t: "pausing 1 s at " + point in t)
        return stack, client, upload, got

    def assert_fsck_clean(self, stack):
        res = stack.filesctl("fsck", "--grace", "0", check=False)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

    def test_content_fsck_removed_before_the_row_fails_the_upload(self):
        # An upload stalled between linking its content and committing its row
        # (past fsck's grace: 0 here) meets fsck --repair, which looks for the
        # row and removes the content holding the write lock. The upload's row
        # must then not stand: without the lock, or without the upload's check
        # after its commit, it answered 200 for content that was gone.
        stack, client, upload, got = self.start_paused_upload("upload_before_insert", 1)
        fsck = subprocess.Popen(stack.filesctl_prefix() +
                                ["--data-dir", stack.data_dir, "fsck", "--repair", "--grace", "0"],
                                env=dict(stack._env(), FILES_API_PAUSE_AT="fsck_before_unlink"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = fsck.communicate(timeout=30)
        upload.join(30)
        self.assertIn("pausing 1 s at fsck_before_unlink", err)
        self.assertIn("removed", out)
        self.assertError(got["resp"], 500, "SYSTEM_9001")
        self.assertEqual(client.all_ids(), [])
        self.assertIn("was removed before its row was written", stack.log_text())
        self.assert_fsck_clean(stack)

    def test_a_file_deleted_as_soon_as_listed_was_still_uploaded(self):
        # The upload's check that its content is still there must not take a
        # DELETE of the row it has just committed (listed by another request)
        # for fsck's removal: the upload succeeded, and says so.
        stack, client, upload, got = self.start_paused_upload("upload_after_insert", 2)
        (file_id,) = client.all_ids()
        self.assertEqual(client.delete(file_id).status, 200)
        upload.join(30)
        self.assertEqual(got["resp"].status, 200, got["resp"].body[:300])
        self.assertEqual(got["resp"].json()["id"], file_id)
        self.assertEqual(client.all_ids(), [])
        self.assertNotIn("was removed before its row was written", stack.log_text())
        self.assert_fsck_clean(stack)


@unittest.skipIf(WEB_SERVER_SPAWNS, "the web server supervises the workers")
class KillLoopTest(FaultCase):
    def test_random_kills_during_concurrent_uploads(self):
        stack = self.start(workers=3, name="killloop")
        client = stack.new_client()
        sent = {}          # sha -> size of every content attempted
        acknowledged = {}  # id -> sha of every 200
        refused = []       # (status, body) of every answer that was neither 200 nor 5xx
        errors = []        # what an uploader thread raised: lost with the thread otherwise
        lock = threading.Lock()
        stop = threading.Event()

        def uploader(n):
            i = 0
            try:
                while not stop.is_set():
                    lines = random.randint(20, 4000)
                    content = batch_jsonl(lines, prefix="u%d-%d" % (n, i))
                    with lock:
                        sent[sha(content)] = len(content)
                    resp = client.upload(content)
                    with lock:
                        if resp.status == 200:
                            acknowledged[resp.json()["id"]] = sha(content)
                        elif resp.status < 500:
                            refused.append((resp.status, resp.body[:200]))
                    i += 1
            except Exception as e:  # noqa: BLE001 - reported by the test's thread
                with lock:
                    errors.append(e)

        threads = [threading.Thread(target=uploader, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        kills = 0
        try:
            while kills < 24:
                time.sleep(random.uniform(0.05, 0.25))
                pids = stack.worker_pids()
                if pids:
                    try:
                        os.kill(random.choice(pids), signal.SIGKILL)
                        kills += 1
                    except ProcessLookupError:
                        pass
        finally:
            stop.set()
            for t in threads:
                t.join(120)
        self.assertFalse([t for t in threads if t.is_alive()], "an uploader never finished")
        self.assertEqual(errors, [])
        self.assertEqual(refused, [], "a killed worker's upload must fail with a 5xx")
        self.assertGreaterEqual(kills, 20)
        self.assertGreater(len(acknowledged), 0)
        listed = client.all_ids()
        for file_id, digest in acknowledged.items():
            self.assertIn(file_id, listed, "acknowledged upload lost")
        for file_id in listed:
            resp, digest, size = client.download_sha256(file_id)
            self.assertEqual(resp.status, 200)
            self.assertIn(digest, sent, "a listed file is not any content that was sent")
            self.assertEqual(size, sent[digest])
            if file_id in acknowledged:
                self.assertEqual(digest, acknowledged[file_id])
        self.assert_clean_after_repair(stack)
        self.assertEqual(sorted(client.all_ids()), sorted(listed))
