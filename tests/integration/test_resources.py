"""Resources run out and the service says so without losing anything: a full
disk is 507 SYSTEM_9007 with nothing left behind and works again once space is
freed; a full web-server spool is a clear error; another process holding the
database's write lock makes writes 503 SYSTEM_9003 with Retry-After while reads
go on; the WAL stays bounded under constant reads; files are private; a worker's
peak memory is the same after a 1 MiB upload as after a 105 MiB one."""

import os
import re
import signal
import sqlite3
import stat
import subprocess
import threading
import time
import unittest

from harness import (BIN_DIR, DEFAULT_MAX_FILE_BYTES, ApiTestCase, ContentGen, Stack, batch_jsonl,
                     once_is_enough)

MIB = 1024 * 1024


def can_mount():
    if os.geteuid() != 0:
        return False
    probe = "/tmp/files-api-mount-probe"
    os.makedirs(probe, exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
                        capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", probe])
    os.rmdir(probe)
    return ok


CAN_MOUNT = can_mount()


def mount_tmpfs(path, size_mib, options=""):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700%s" % (size_mib, options),
                    "tmpfs", path], check=True)


def fill_disk(path, leave_bytes=0):
    """Fills the file system of path with a file (returned) but leave_bytes."""
    filler = os.path.join(path, "filler")
    with open(filler, "wb", buffering=0) as f:
        for piece in (1 << 20, 4096):
            try:
                while True:
                    f.write(b"\0" * piece)
            except OSError:
                pass
    if leave_bytes:
        os.truncate(filler, os.path.getsize(filler) - leave_bytes)
    return filler


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def used_bytes(path):
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


class ResourceCase(ApiTestCase):
    def run_stack(self, mounts=(), spool_outside=False, **kw):
        """Starts a stack whose data dir (and/or spool) sit on small tmpfs mounts."""
        mounted = []

        def before_start(stack):
            if spool_outside:
                spool = os.path.join(stack.tmp, "spool-outside")
                os.mkdir(spool, 0o700)
                stack.extra_env["FILES_API_SPOOL_DIR"] = spool
            for sub, size, *options in mounts:
                path = os.path.join(stack.tmp, sub)
                mount_tmpfs(path, size, *options)
                mounted.append(path)
                if sub == "spool":
                    stack.extra_env["FILES_API_SPOOL_DIR"] = path

        stack = Stack(before_start=before_start, **kw)

        def cleanup():
            stack._stop_process()
            for path in mounted:
                subprocess.run(["umount", "-l", path])
            stack.stop()

        self.addCleanup(cleanup)
        return stack.start()


@unittest.skipUnless(CAN_MOUNT, "mounting a tmpfs needs root (and a kernel that allows it)")
class UnusableDataDirTest(unittest.TestCase):
    @once_is_enough  # filesctl alone
    def test_a_full_or_read_only_disk_is_named_when_the_database_cannot_open(self):
        # SQLite says only "disk I/O error" or "unable to open database file".
        mount = "/tmp/files-api-unusable-%d" % os.getpid()
        mount_tmpfs(mount, 1)
        self.addCleanup(lambda: (subprocess.run(["umount", "-l", mount]), os.rmdir(mount)))
        data = os.path.join(mount, "data")

        def keys_list():
            res = subprocess.run([str(BIN_DIR / "filesctl"), "--data-dir", data, "keys", "list"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(res.returncode, 1, res.stderr)
            return res.stderr

        subprocess.run([str(BIN_DIR / "filesctl"), "--data-dir", data, "keys", "create",
                        "--account", "a", "--scopes", "files:read"], check=True,
                       capture_output=True)
        subprocess.run(["mount", "-o", "remount,ro", mount], check=True)
        self.assertIn("%s cannot be written: Read-only file system" % data, keys_list())
        subprocess.run(["mount", "-o", "remount,rw", mount], check=True)
        for log in ("files.db-wal", "files.db-shm"):  # so that opening it must write
            if os.path.exists(os.path.join(data, log)):
                os.unlink(os.path.join(data, log))
        fill_disk(mount)
        self.assertIn("switching to WAL: disk I/O error (No space left on device)", keys_list())


@unittest.skipUnless(CAN_MOUNT, "mounting a tmpfs needs root (and a kernel that allows it)")
class DiskFullTest(ResourceCase):
    @once_is_enough  # the worker and the disk
    def test_upload_that_does_not_fit_is_507_and_leaves_nothing(self):
        # The spool stays off the small tmpfs: here only the data runs out of room.
        # No space kept free (keep_free_bytes, below): the write itself fails.
        stack = self.run_stack(mounts=[("data", 24)], name="diskfull", workers=2,
                               spool_outside=True, config="keep_free_bytes = 0\n")
        client = stack.new_client()
        first = client.upload_stream(ContentGen(12 * MIB))
        self.assertEqual(first.status, 200, first.body[:300])
        before = used_bytes(stack.data_dir)
        resp = client.upload_stream(ContentGen(16 * MIB))
        self.assertError(resp, 507, "SYSTEM_9007")
        self.assertLessEqual(used_bytes(stack.data_dir), before + 256 * 1024,
                             "the failed upload left bytes behind")
        self.assertEqual(client.all_ids(), [first.json()["id"]])
        # Space freed: the same upload now fits.
        self.assertEqual(client.delete(first.json()["id"]).status, 200)
        again = client.upload_stream(ContentGen(16 * MIB))
        self.assertEqual(again.status, 200, again.body[:300])
        resp, digest, size = client.download_sha256(again.json()["id"])
        self.assertEqual(size, 16 * MIB)
        fsck = stack.filesctl("fsck", "--grace", "0", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.stdout)

    @once_is_enough  # the worker and the disk
    def test_full_disk_at_the_database_commit_is_507_and_leaves_nothing(self):
        # The content fits but the database cannot grow its WAL: still 507.
        stack = self.run_stack(mounts=[("data", 8)], name="dbfull", workers=1,
                               spool_outside=True, config="keep_free_bytes = 0\n")
        client = stack.new_client()
        # Two pages free: the upload's content (one page) fits, the WAL's
        # frames for its row (4 KiB each, several) do not.
        filler = fill_disk(stack.data_dir, leave_bytes=2 * 4096)
        resp = client.upload(batch_jsonl(2))
        self.assertError(resp, 507, "SYSTEM_9007")
        self.assertIn("database or disk is full",
                      stack.wait_for_log(lambda text: "database or disk is full" in text))
        os.unlink(filler)
        self.assertEqual(client.all_ids(), [])
        again = client.upload_ok(batch_jsonl(2))
        self.assertEqual(client.all_ids(), [again["id"]])
        fsck = stack.filesctl("fsck", "--grace", "0", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.stdout)

    def keep_free_stack(self, name, keep):
        """A stack on a 12 MiB data tmpfs that keeps keep bytes free, and a client."""
        stack = self.run_stack(mounts=[("data", 12)], name=name, workers=1, spool_outside=True,
                               config="keep_free_bytes = %d\n" % keep)
        return stack, stack.new_client()

    @once_is_enough  # the worker and the disk
    def test_an_upload_leaves_the_space_kept_free_so_a_delete_can_still_free_space(self):
        # Filled to the last block, the disk had no room for SQLite to record
        # a delete (507 every time), and nothing could free space.
        keep = 4 * MIB
        stack, client = self.keep_free_stack("keepfree", keep)
        first = client.upload_stream(ContentGen(4 * MIB))
        self.assertEqual(first.status, 200, first.body[:300])
        before = used_bytes(stack.data_dir)
        resp = client.upload_stream(ContentGen(5 * MIB))  # would leave ~3 MiB
        self.assertError(resp, 507, "SYSTEM_9007", message="keeps %d bytes" % keep)
        self.assertLessEqual(used_bytes(stack.data_dir), before + 256 * 1024)
        self.assertGreaterEqual(free_bytes(stack.data_dir), keep)
        self.assertEqual(client.all_ids(), [first.json()["id"]])
        # filesctl's import keeps the same room.
        path = os.path.join(stack.tmp, "five.jsonl")
        with open(path, "wb") as f:
            for piece in ContentGen(5 * MIB).chunks():
                f.write(piece)
        imported = stack.filesctl("files", "import", "--account", client.account, "--purpose", "batch",
                                  path, check=False)
        self.assertNotEqual(imported.returncode, 0)
        self.assertIn("keeps %d bytes" % keep, imported.stderr)
        self.assertEqual(client.delete(first.json()["id"]).status, 200)
        again = client.upload_stream(ContentGen(5 * MIB))
        self.assertEqual(again.status, 200, again.body[:300])
        fsck = stack.filesctl("fsck", "--grace", "0", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.stdout)

    @once_is_enough  # the worker and the disk
    def test_the_space_kept_free_at_the_limit_and_one_page_past_it(self):
        # tmpfs counts whole pages: content of a multiple of 4 KiB takes that much.
        keep = 4 * MIB
        stack, client = self.keep_free_stack("keepexact", keep)
        client.upload_ok(batch_jsonl(2))  # the database and its log have their pages
        free = free_bytes(stack.data_dir)
        at_limit = client.upload_stream(ContentGen(free - keep))  # leaves exactly keep
        self.assertEqual(at_limit.status, 200, at_limit.body[:300])
        self.assertEqual(client.delete(at_limit.json()["id"]).status, 200)
        free = free_bytes(stack.data_dir)
        past = client.upload_stream(ContentGen(free - keep + 4096))  # one page short
        self.assertError(past, 507, "SYSTEM_9007", message="keeps %d bytes" % keep)

    @once_is_enough  # the worker and the disk
    def test_deletes_on_a_nearly_full_disk_do_not_fill_it_with_their_log(self):
        # Each delete frees a page of content and logs three or four in the
        # WAL, which started over only at 1,000 pages (~4 MiB): with less
        # free than that, deletes took the space kept free to the last block,
        # and then every delete was 507 and nothing could free space.
        keep = 256 * 1024
        stack, client = self.keep_free_stack("walroom", keep)
        ids = [client.upload_ok(batch_jsonl(1, tag="-%d" % i))["id"] for i in range(40)]
        fill_disk(stack.data_dir, leave_bytes=keep + 8192)
        for file_id in ids[:20]:
            self.assertEqual(client.delete(file_id).status, 200)
        self.assertGreaterEqual(free_bytes(stack.data_dir), keep)
        # Another process fills the disk to the last block: the WAL, started
        # over in the blocks it has (not truncated), still records deletes.
        fill_disk(stack.data_dir)
        for file_id in ids[20:]:
            self.assertEqual(client.delete(file_id).status, 200)
        self.assertEqual(client.all_ids(), [])

    @once_is_enough  # the worker and the disk
    def test_content_that_could_never_be_accepted_is_told_so_on_a_full_disk(self):
        # A full disk stops the storing, not the validation: a 507 would have
        # the SDK send the file again, to be refused once there is room.
        stack = self.run_stack(mounts=[("data", 8)], name="fullbad", workers=1,
                               spool_outside=True)
        client = stack.new_client()
        filler = fill_disk(stack.data_dir)
        resp = client.upload(batch_jsonl(2) + b'{"custom_id":"x"')  # ends inside an object
        self.assertError(resp, 400, "INFERENCE_3303")
        self.assertEqual(resp.json()["error"]["details"]["line"], 3)
        # past 16,384 lines the validator's own scratch file (on the same full
        # disk) fails too: the rest is still validated
        lines = batch_jsonl(30000).split(b"\n")
        lines[24999] = lines[24999][:-1]  # line 25,000 does not close its object
        resp = client.upload(b"\n".join(lines))
        self.assertError(resp, 400, "INFERENCE_3303")
        self.assertEqual(resp.json()["error"]["details"]["line"], 25000)
        resp = client.upload(batch_jsonl(2))
        self.assertError(resp, 507, "SYSTEM_9007")
        os.unlink(filler)
        self.assertEqual(client.all_ids(), [])

    @once_is_enough  # the worker and the disk
    def test_content_that_could_never_be_accepted_is_told_so_when_inodes_run_out(self):
        # Out of inodes, the upload's temporary file cannot be made: that was
        # 507 at once, whatever the content, and an SDK sent a bad file again.
        stack = self.run_stack(mounts=[("data", 8, ",nr_inodes=64")], name="noinode", workers=1,
                               spool_outside=True, config="keep_free_bytes = 0\n")
        client = stack.new_client()
        fillers = []
        try:
            while True:
                fillers.append(os.path.join(stack.data_dir, "filler%d" % len(fillers)))
                open(fillers[-1], "wb").close()
        except OSError:
            fillers.pop()
        resp = client.upload(batch_jsonl(2) + b'{"custom_id":"x"')  # ends inside an object
        self.assertError(resp, 400, "INFERENCE_3303")
        self.assertEqual(resp.json()["error"]["details"]["line"], 3)
        self.assertError(client.upload(batch_jsonl(2)), 507, "SYSTEM_9007")
        for path in fillers:
            os.unlink(path)
        self.assertEqual(client.upload(batch_jsonl(2)).status, 200)

    @unittest.skipIf((os.environ.get("FILES_API_SERVER") or "").startswith("apache"),
                     "Apache passes bodies to the worker as they arrive: it has no spool to fill")
    def test_full_web_server_spool_is_a_clear_error(self):
        stack = self.run_stack(mounts=[("spool", 2)], name="spoolfull", workers=1)
        client = stack.new_client()
        resp = client.upload_stream(ContentGen(4 * MIB))
        # lighttpd cannot spool the body: it answers 500 itself, in the API's format.
        self.assertError(resp, 500, "SYSTEM_9001", message="spool")
        self.assertEqual(client.all_ids(), [])
        small = client.upload(batch_jsonl(3))
        self.assertEqual(small.status, 200, small.body[:300])


@unittest.skipUnless(CAN_MOUNT, "mounting a tmpfs needs root (and a kernel that allows it)")
class ReadOnlyDatabaseTest(ResourceCase):
    @once_is_enough  # the worker's start
    def test_a_worker_that_can_only_read_the_database_does_not_start(self):
        # SQLite opens a database it may not write read-only, without an
        # error: the worker started, and every write was a 500 for as long as
        # it lived, also once the database could be written again (while
        # /healthz said ok).
        stack = self.run_stack(mounts=[("data", 8)], name="rodb", workers=1,
                               config="keep_free_bytes = 0\n")
        client = stack.new_client()
        database = os.path.join(stack.data_dir, "files.db")
        if subprocess.run(["chattr", "+i", database], capture_output=True).returncode != 0:
            self.skipTest("chattr +i does not work here")
        self.addCleanup(subprocess.run, ["chattr", "-i", database], capture_output=True)
        [pid] = stack.worker_pids()
        os.kill(pid, signal.SIGKILL)
        # (its replacement refuses to start, saying why; before, it started)
        stack.wait_for_log(lambda t: "files.db can only be read" in t or
                           t.count(" started, data in ") == 2)
        self.assertError(client.upload(batch_jsonl(2)), 503, "SYSTEM_9003", message="cannot start")
        subprocess.run(["chattr", "-i", database], check=True)
        deadline = time.monotonic() + 5
        while client.list().status != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(client.upload(batch_jsonl(2)).status, 200)


@unittest.skipUnless(CAN_MOUNT, "mounting a tmpfs needs root (and a kernel that allows it)")
class SplitVolumeTest(ResourceCase):
    @once_is_enough  # the worker's start and filesctl, whatever the web server
    def test_content_on_another_filesystem_than_tmp_is_refused_with_the_reason(self):
        # An upload is made in tmp/ and linked into files/: with files/ on a
        # volume of its own, every upload was a 500 while /healthz said ok.
        stack = self.run_stack(name="split", workers=1)
        client = stack.new_client()
        files = os.path.join(stack.data_dir, "files")
        mount_tmpfs(files, 8)
        try:
            self.assertEqual(client.request("GET", "/healthz", auth="none").status, 503)
            fsck = stack.filesctl("fsck", check=False)
            self.assertEqual(fsck.returncode, 1)
            self.assertIn("its tmp/ and files/ are on different mounts", fsck.stderr)
            for pid in stack.worker_pids():
                os.kill(pid, signal.SIGKILL)
            stack.wait_for_log(lambda t: "are on different mounts" in t)
            self.assertError(client.list(), 503, "SYSTEM_9003", message="cannot start")
        finally:
            subprocess.run(["umount", files], check=True)
        deadline = time.monotonic() + 15
        while client.list().status != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(client.upload(batch_jsonl(2)).status, 200)


    @once_is_enough
    def test_tmp_and_files_bind_mounted_from_one_volume_are_refused_too(self):
        # Two bind mounts of one filesystem share a device, but a link never
        # crosses a mount: every upload was a 500 while /healthz said ok.
        stack = self.run_stack(name="bind", workers=1)
        client = stack.new_client()
        volume = os.path.join(stack.tmp, "volume")
        mount_tmpfs(volume, 8)
        mounted = []
        try:
            for sub in ("tmp", "files"):
                os.mkdir(os.path.join(volume, sub), 0o700)
                target = os.path.join(stack.data_dir, sub)
                subprocess.run(["mount", "--bind", os.path.join(volume, sub), target], check=True)
                mounted.append(target)
            self.assertEqual(client.request("GET", "/healthz", auth="none").status, 503)
            fsck = stack.filesctl("fsck", check=False)
            self.assertIn("its tmp/ and files/ are on different mounts", fsck.stderr)
        finally:
            for target in reversed(mounted):
                subprocess.run(["umount", target], check=True)
            subprocess.run(["umount", volume], check=True)
        self.assertEqual(client.request("GET", "/healthz", auth="none").status, 200)


class BusyDatabaseTest(ResourceCase):
    def test_writes_wait_then_503_while_reads_go_on(self):
        stack = self.run_stack(name="busy", workers=2, config="db_busy_timeout_ms = 300\n")
        client = stack.new_client()
        kept = client.upload_ok(batch_jsonl(2))["id"]
        with stack.write_lock_held():
            resp = client.upload(batch_jsonl(2, tag="-busy"))
            self.assertError(resp, 503, "SYSTEM_9003")
            self.assertEqual(resp.header("Retry-After"), "1")
            deleted = client.delete(kept)
            self.assertError(deleted, 503, "SYSTEM_9003")
            # A malformed id never reaches the database: 404 at once, not busy.
            for bad in ("file_x' OR '1'='1", "FILE_" + "A" * 24):
                self.assertError(client.delete(bad), 404, "INFERENCE_3302")
            # Reads keep working under WAL.
            self.assertEqual(client.retrieve(kept).status, 200)
            self.assertEqual(client.list_ok()["data"][0]["id"], kept)
            self.assertEqual(client.content(kept).status, 200)
        self.assertEqual(client.all_ids(), [kept])
        self.assertEqual(client.upload(batch_jsonl(2, tag="-after")).status, 200)
        fsck = stack.filesctl("fsck", "--grace", "0", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.stdout)


class WalAndModesTest(ResourceCase):
    @once_is_enough  # the database's WAL
    def test_wal_stays_bounded_under_constant_reads(self):
        stack = self.run_stack(name="wal", workers=4)
        client = stack.new_client()
        stop = threading.Event()
        answers = []  # each list request's status: the readers must really read

        def reader():
            reader_client = stack.client(client.key)
            while not stop.is_set():
                try:
                    answers.append(reader_client.list(limit=100).status)
                except Exception as e:  # noqa: BLE001 - counted as a failed read
                    answers.append(repr(e))

        readers = [threading.Thread(target=reader) for _ in range(6)]
        for t in readers:
            t.start()
        wal = os.path.join(stack.data_dir, "files.db-wal")
        largest = 0
        try:
            for i in range(400):
                self.assertEqual(client.upload(batch_jsonl(1, tag="-%d" % i)).status, 200)
                largest = max(largest, os.path.getsize(wal) if os.path.exists(wal) else 0)
        finally:
            stop.set()
            for t in readers:
                t.join(30)
        self.assertGreater(len(answers), 400, "the readers barely read")
        self.assertEqual([a for a in answers if a != 200], [])
        # 400 commits of a few pages each would be several MiB without checkpoints;
        # SQLite's passive checkpoints alone left 4-6 MB here, once 8.6 MB. Past
        # 1000 pages the committing worker restarts the WAL (db.c): ~4.1 MB every
        # run. That the restart happens is the next test's; this one holds the bound.
        self.assertLess(largest, 4.5 * MIB, "WAL grew to %d bytes" % largest)

    @once_is_enough  # the database's WAL
    def test_a_long_reader_costs_one_restart_attempt_per_1000_pages(self):
        """A reader that holds the WAL keeps it from starting over; the commits
        after a failed restart do not each wait for it again, and once the
        reader is gone the WAL starts over."""
        stack = self.run_stack(name="walreader", workers=1)
        if "files-fcgi: worker" not in stack.log_text():
            self.skipTest("this web server keeps the workers' messages elsewhere")
        client = stack.new_client()
        wal = os.path.join(stack.data_dir, "files.db-wal")
        page = 4096 + 24  # a WAL frame
        held = sqlite3.connect(os.path.join(stack.data_dir, "files.db"), isolation_level=None)
        self.addCleanup(held.close)
        self.assertEqual(client.upload(batch_jsonl(1, tag="-first")).status, 200)
        held.execute("BEGIN")
        held.execute("SELECT count(*) FROM files").fetchone()  # a snapshot: in the WAL now
        i = 0
        while os.path.getsize(wal) < 1600 * page:
            self.assertEqual(client.upload(batch_jsonl(1, tag="-%d" % i)).status, 200)
            i += 1
        gave_up = "cannot start over while another connection is in it"
        self.assertEqual(stack.log_text().count(gave_up), 1, "one attempt in 1000 pages")
        held.execute("COMMIT")
        grown = os.path.getsize(wal)
        for j in range(400):  # past the next attempt at 2,000 pages, if it had not started over
            self.assertEqual(client.upload(batch_jsonl(1, tag="-after-%d" % j)).status, 200)
        self.assertEqual(stack.log_text().count(gave_up), 1, stack.log_text()[-2000:])
        self.assertLess(os.path.getsize(wal), grown + 1000 * page)
        # It has started over: the next attempt comes at 1000 pages again.
        held.execute("BEGIN")
        held.execute("SELECT count(*) FROM files").fetchone()
        for k in range(1200):
            if stack.log_text().count(gave_up) == 2:
                break
            self.assertEqual(client.upload(batch_jsonl(1, tag="-again-%d" % k)).status, 200)
        held.execute("COMMIT")
        attempts = re.findall(r"the WAL \((\d+) pages\) " + gave_up, stack.log_text())
        self.assertEqual(len(attempts), 2, attempts)
        self.assertLess(int(attempts[1]), 1100, "the second attempt waited for the first's threshold")

    def test_data_is_private(self):
        stack = self.run_stack(name="modes", workers=1)
        client = stack.new_client()
        file_id = client.upload_ok(batch_jsonl(2))["id"]
        data = stack.data_dir
        self.assertEqual(stat.S_IMODE(os.stat(data).st_mode), 0o700)
        for root, dirs, files in os.walk(data):
            for d in dirs:
                self.assertEqual(stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode), 0o700,
                                 os.path.join(root, d))
            for f in files:
                path = os.path.join(root, f)
                if f == "dev-key" or "spool" in path:
                    continue
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)
        self.assertTrue(os.path.exists(os.path.join(data, "files", file_id[-2:], file_id)))


def peak_rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM for %d" % pid)


def sanitized(pid):
    """ASan and TSan reserve terabytes of shadow address space, linked
    statically (clang) or not (gcc)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) > 1 << 30  # kB: over 1 TiB
    return False


class WorkerMemoryTest(ApiTestCase):
    def test_peak_memory_is_the_same_for_1_mib_and_105_mib(self):
        """The issue's target: <= 16 MiB, and the same for both sizes (within
        10%): the worker takes its buffers and threads at start, so what it
        stores does not change its footprint."""
        stack = Stack(workers=1, config="# built-in defaults only\n", name="memory").start()
        self.addCleanup(stack.stop)
        c = stack.new_client()
        obj = c.upload_stream(ContentGen(MIB)).json()
        self.assertEqual(obj["bytes"], MIB)
        pids = stack.worker_pids()
        if len(pids) != 1:
            self.skipTest("this web server runs %d workers for one" % len(pids))
        if sanitized(pids[0]):
            self.skipTest("a sanitizer's shadow memory is not the worker's")
        small = peak_rss_mib(pids[0])
        resp = c.upload_stream(ContentGen(DEFAULT_MAX_FILE_BYTES))
        self.assertEqual(resp.status, 200, resp.body[:300])
        self.assertEqual(stack.worker_pids(), pids, "the worker was replaced")
        big = peak_rss_mib(pids[0])
        self.assertLessEqual(big, 16.0)
        self.assertLessEqual(big, small * 1.10, "1 MiB: %.2f MiB, 105 MiB: %.2f MiB" % (small, big))
