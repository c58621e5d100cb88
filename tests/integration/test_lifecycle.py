"""Workers under supervision: killed idle or mid-request they are replaced and
the pool keeps answering; SIGTERM drains an upload in flight; workers recycle
after max_requests; /healthz tells whether the service is usable."""

import concurrent.futures
import ctypes
import fcntl
import glob
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import unittest
import urllib.error
import urllib.request

from harness import (BIN_DIR, REPO, SERVE, ApiTestCase, ContentGen, Stack, batch_jsonl, free_port,
                     group_alive, group_members, multipart, once_is_enough, process_age, read_to_end,
                     scripts_only)

# In the shared-hosting shapes the web server itself runs the workers; these
# tests are about the spawn-fcgi + multiwatch pool.
WEB_SERVER_SPAWNS = os.environ.get("FILES_API_SERVER") in ("lighttpd-spawn", "apache-fcgid")


def exchange(a, b):
    """Swaps two paths in one step (renameat2 RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@unittest.skipIf(WEB_SERVER_SPAWNS, "the web server supervises the workers")
class KillTest(ApiTestCase):
    def setUp(self):
        self.stack = Stack(workers=2, name="kill").start()
        self.addCleanup(self.stack.stop)
        self.client = self.stack.new_client()

    def assert_pool_serves(self, rounds=20):
        for i in range(rounds):
            resp = self.client.upload(batch_jsonl(2, tag="-r%d" % i))
            self.assertEqual(resp.status, 200, resp.body[:300])
            self.assertEqual(self.client.retrieve(resp.json()["id"]).status, 200)

    def test_idle_workers_killed_are_replaced(self):
        before = self.stack.worker_pids()
        self.assertEqual(len(before), 2, before)
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: len(set(self.stack.worker_pids()) - set(before)) == 2),
                        "multiwatch did not restart the workers: %s" % self.stack.worker_pids())
        self.assert_pool_serves()

    def test_repeated_kills_never_empty_the_pool(self):
        for _ in range(8):
            killed = set(self.stack.worker_pids())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
            # (a killed worker is listed until it has died: wait for new ones)
            self.assertTrue(wait_for(lambda: len(self.stack.worker_pids()) == 2
                                     and not killed & set(self.stack.worker_pids())))
        self.assert_pool_serves(5)

    def test_a_worker_that_cannot_start_is_retried_each_second(self):
        """multiwatch restarts a dead worker at once, with no backoff of its
        own: a worker that cannot start (here its database cannot be opened)
        pauses before it exits, so the pool retries once a second instead of a
        thousand times, and serves again once the fault is gone."""
        db = os.path.join(self.stack.data_dir, "files.db")
        # Both workers started: one that lost the race to create the new
        # database ("database is locked") starts again a second later.
        started = self.stack.wait_for_log(
            lambda t: t.count(" started, data in ") >= 2).count(" started, data in ")
        os.mkdir(db + ".dir")
        # What a new worker opens is now a directory. Swapped both ways in one
        # step: with files.db missing for a moment, a worker starting then
        # would create a new, empty database beside the real one's WAL.
        exchange(db, db + ".dir")
        try:
            victim = self.stack.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            time.sleep(3)
            failures = self.stack.log_text().count("cannot open the database")
        finally:
            exchange(db, db + ".dir")
            os.rmdir(db + ".dir")
        # Paced, a worker fails at most 4 times in 3 s; paced or not, so may
        # the other one if it restarts meanwhile (seen once behind nginx: 7).
        # Unpaced, it was 1000.
        self.assertTrue(2 <= failures <= 8, "%d failed starts in 3 s" % failures)
        self.assertTrue(wait_for(lambda: len(self.stack.worker_pids()) == 2
                                 and victim not in self.stack.worker_pids()))
        # (Within 2 s as a rule; once, in the ASan build of a full run, not in 5.)
        text = self.stack.wait_for_log(lambda t: t.count(" started, data in ") > started,
                                       timeout=15)
        self.assertGreater(text.count(" started, data in "), started,
                           "no worker started once the database was back; the log ends:\n" +
                           text[-3000:])
        self.assert_pool_serves(5)

    def test_requests_are_answered_503_while_no_worker_can_start(self):
        # With every worker failing at start, a request waited on the socket
        # for as long as the fault lasted, a health check too. A failing
        # worker now answers what comes during its pause.
        db = os.path.join(self.stack.data_dir, "files.db")
        pool_socket = listening_socket_path(self.stack.worker_pids()[0])
        starts = self.stack.wait_for_log(
            lambda t: t.count(" started, data in ") >= 2).count(" started, data in ")
        os.mkdir(db + ".dir")
        exchange(db, db + ".dir")
        try:
            victims = set(self.stack.worker_pids())
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            self.stack.wait_for_log(lambda t: t.count("cannot open the database") >= 2)
            started = time.monotonic()
            for path in ("/healthz", "/healthz/"):  # routed as the service routes it
                health = self.client.request("GET", path, auth="none")
                self.assertEqual((health.status, health.json()), (503, {"status": "unavailable"}))
            resp = self.client.list()
            self.assertError(resp, 503, "SYSTEM_9003", message="cannot start")
            self.assertEqual(resp.header("Retry-After"), "1")
            # A path too long for the request's own buffer (decoded into
            # request memory, which a failing worker had not set up: a crash).
            resp = self.client.request("GET", "/v1/files/" + "a" * 3000)
            self.assertError(resp, 503, "SYSTEM_9003")
            self.assertLess(time.monotonic() - started, 5)
            self.assertTrue(victims.isdisjoint(self.stack.worker_pids()))
            # A body that keeps trickling after the 503 held the failing worker
            # (libfcgi's close waits 2 s per read): now it is closed in 2 s.
            conn = socket.socket(socket.AF_UNIX)
            self.addCleanup(conn.close)
            conn.settimeout(10)
            conn.connect(pool_socket)
            conn.sendall(BEGIN + fcgi_record(FCGI_PARAMS, fcgi_params(
                [(b"REQUEST_METHOD", b"POST"), (b"REQUEST_URI", b"/v1/files"),
                 (b"SERVER_PROTOCOL", b"HTTP/1.1"), (b"CONTENT_LENGTH", b"1000000")]))
                + fcgi_record(FCGI_PARAMS, b"") + fcgi_record(FCGI_STDIN, b"x" * 100))
            self.assertIn(b"Status: 503", read_response(conn))
            answered, closed = time.monotonic(), False
            while not closed and time.monotonic() - answered < 6:
                try:  # (the worker's half close comes at once: a send fails only once it is gone)
                    conn.sendall(fcgi_record(FCGI_STDIN, b"x"))
                    time.sleep(0.25)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
            self.assertTrue(closed, "a trickling body held the failing worker")
            self.assertLess(time.monotonic() - answered, 3.5)
        finally:
            exchange(db, db + ".dir")
            os.rmdir(db + ".dir")
        # Both workers started again (one still in its pause would answer 503).
        self.stack.wait_for_log(lambda t: t.count(" started, data in ") >= starts + 2, timeout=15)
        self.assert_pool_serves(3)

    @once_is_enough  # the workers' race for the socket
    def test_a_worker_that_cannot_start_leaves_requests_to_one_that_serves(self):
        # One worker restarts into a fault while the other still serves (its
        # database open from before): the failing one answered a share of the
        # requests with 503 that the other, idle, would have served.
        self.assertEqual(self.client.list().status, 200)  # both have the database open
        db = os.path.join(self.stack.data_dir, "files.db")
        os.mkdir(db + ".dir")
        exchange(db, db + ".dir")
        try:
            victim, survivor = self.stack.worker_pids()[:2]
            os.kill(victim, signal.SIGKILL)
            self.stack.wait_for_log(lambda t: "cannot open the database" in t)
            statuses = [self.client.list().status for _ in range(30)]  # reads: still served
            self.assertIn(survivor, self.stack.worker_pids())
        finally:
            exchange(db, db + ".dir")
            os.rmdir(db + ".dir")
        self.assertEqual(statuses, [200] * 30)

    def test_a_database_moved_away_while_in_use_is_not_replaced_by_an_empty_one(self):
        # A worker starting then created a new, empty files.db beside the
        # real one's write-ahead log: the workers after it failed with I/O
        # errors, and once the database was back, what the log held was gone
        # (here the key: 401).
        resp = self.client.upload(batch_jsonl(2, tag="-moved"))
        self.assertEqual(resp.status, 200, resp.body)
        kept = resp.json()["id"]
        db = os.path.join(self.stack.data_dir, "files.db")
        self.assertTrue(os.path.exists(db + "-wal"))
        os.rename(db, db + ".away")
        try:
            victim = self.stack.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            text = self.stack.wait_for_log(lambda t: "write-ahead log" in t, timeout=5)
            self.assertIn("files.db is missing, but its write-ahead log", text)
            self.assertFalse(os.path.exists(db), "a new database was made beside the log")
        finally:
            os.rename(db + ".away", db)
        self.assertTrue(wait_for(lambda: len(self.stack.worker_pids()) == 2
                                 and victim not in self.stack.worker_pids()))
        self.stack.wait_for_log(lambda t: t.count(" started, data in ") >= 3, timeout=15)
        self.assertEqual(self.client.retrieve(kept).status, 200)
        self.assert_pool_serves(5)

    def test_worker_killed_mid_upload(self):
        thread, result = upload_held_by_a_worker(self.stack, self.client)
        for pid in self.stack.worker_pids():
            os.kill(pid, signal.SIGKILL)
        thread.join(120)
        resp = result["resp"]
        # Every worker was killed: wait for the new ones, and for the web server
        # to use the backend again (it may pause a failed backend for a second).
        self.assertTrue(wait_for(lambda: len(self.stack.worker_pids()) == 2))
        self.assertTrue(wait_for(lambda: self.client.list().status == 200),
                        "the pool did not answer again")
        listed = self.client.all_ids()
        if resp.status == 200:  # it finished before the kill: it must be whole
            self.assertEqual(listed, [resp.json()["id"]])
        else:  # the web server reports the dead backend; nothing was stored
            self.assertGreaterEqual(resp.status, 500, resp.body[:300])
            self.assertEqual(listed, [])
            if resp.status == 503:  # Apache's: SYSTEM_9003, which promises Retry-After
                self.assertEqual(resp.json()["error"]["code"], "SYSTEM_9003")
                self.assertEqual(resp.header("Retry-After"), "1")
        self.assertTrue(wait_for(lambda: len(self.stack.worker_pids()) == 2))
        self.assert_pool_serves(5)
        fsck = self.stack.filesctl("fsck", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.stdout + fsck.stderr)


def bytes_read(pid):
    try:
        with open("/proc/%d/io" % pid) as f:
            return int(re.search(r"^rchar: (\d+)", f.read(), re.M).group(1))
    except (OSError, AttributeError):
        return 0


def upload_held_by_a_worker(stack, client):
    """A 60 MiB upload, started in a thread and returned once a worker has read
    4 MiB of its body: a worker holds it then (the web server may have received
    the whole body first). Returns the thread and the dict its answer goes in."""
    gen = ContentGen(60 * 1024 * 1024)
    result = {}
    before = {pid: bytes_read(pid) for pid in stack.worker_pids()}
    thread = threading.Thread(target=lambda: result.update(resp=client.upload_stream(gen)))
    thread.start()
    wait_for(lambda: not thread.is_alive() or
             any(bytes_read(pid) - n > 4 << 20 for pid, n in before.items()), timeout=60)
    return thread, result


@unittest.skipIf(WEB_SERVER_SPAWNS, "the web server supervises the workers")
class GracefulStopTest(ApiTestCase):
    def test_upload_in_flight_completes_during_shutdown(self):
        stack = Stack(workers=2, name="drain").start()
        self.addCleanup(stack.stop)
        client = stack.new_client()
        thread, result = upload_held_by_a_worker(stack, client)
        self.assertTrue(thread.is_alive(), "the upload was answered before a worker held it")
        stack.proc.send_signal(signal.SIGTERM)  # serve.sh: web server first, then the pool
        thread.join(120)
        resp = result["resp"]
        self.assertEqual(resp.status, 200, resp.body[:300])
        stack.proc.wait(60)
        text = stack.log_text()
        self.assertIn("stopping", text)
        self.assertNotIn("status=5", text)
        # The upload is durable in the data directory the stopped service leaves.
        listing = stack.filesctl("files", "list").stdout
        self.assertIn(resp.json()["id"], listing)
        fsck = stack.filesctl("fsck", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.stdout)

    def stop_group_with(self, signum, attempts, twice=False):
        """Signals serve.sh's whole process group, as a terminal does (Ctrl-C:
        SIGINT; closed: SIGHUP, twice): everything stops, and serve.sh removes
        its run directory."""
        for attempt in range(attempts):
            stale = set(glob.glob(os.path.join(tempfile.gettempdir(), "files-api.*")))
            stack = Stack(workers=4, name="group-signal").start()
            self.addCleanup(stack.stop)
            pgid = stack.proc.pid
            run_dirs = [d for d in serve_run_dirs(stack.port) if d not in stale]
            self.assertEqual(len(run_dirs), 1, run_dirs)
            spools = []  # lighttpd's and mod_fcgid's: one of the run's own in DATA/spool
            if os.path.exists(os.path.join(run_dirs[0], "spool-dir")):
                with open(os.path.join(run_dirs[0], "spool-dir")) as f:
                    spools.append(f.read().rstrip("\n"))
            os.killpg(pgid, signum)
            if twice:
                time.sleep(0.02)
                os.killpg(pgid, signum)
            try:
                stack.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.fail("attempt %d: serve.sh still running 20 s after signal %d; its log:\n%s"
                          % (attempt, signum, stack.log_text()[-2000:]))
            self.assertTrue(wait_for(lambda: not group_alive(pgid), 5),
                            "attempt %d: processes left in the group" % attempt)
            self.assertTrue(wait_for(lambda: not any(map(group_alive, stack.pool_groups)), 5),
                            "attempt %d: processes left in the pool's group" % attempt)
            self.assertFalse(os.path.exists(run_dirs[0]), "attempt %d: run dir left (exit %s)\n%s"
                             % (attempt, stack.proc.returncode, stack.log_text()[-2000:]))
            self.assertEqual([s for s in spools if os.path.exists(s)], [], "attempt %d" % attempt)
            stack.stop()

    def test_ctrl_c_stops_everything(self):
        # Ctrl-C reaches the workers too: multiwatch restarts some just as it
        # is told to stop, and could miss them (serve.sh then waited for it
        # forever, about one time in three).
        self.stop_group_with(signal.SIGINT, 10)

    def test_a_closed_terminal_stops_everything(self):
        # A closing terminal sends SIGHUP twice, the shell's then the kernel's:
        # the second one cut serve.sh's stop short (processes and run dir left).
        self.stop_group_with(signal.SIGHUP, 3, twice=True)

    def test_ctrl_c_twice_stops_everything(self):
        self.stop_group_with(signal.SIGINT, 3, twice=True)


def serve_run_dirs(port):
    """serve.sh's run directories whose web server listens on port."""
    listens = re.compile(r"(server\.port = |127\.0\.0\.1:)%d\b" % port)
    found = []
    for name in os.listdir(tempfile.gettempdir()):
        run = os.path.join(tempfile.gettempdir(), name)
        for conf in ("lighttpd.conf", "apache.conf", "nginx.conf"):
            path = os.path.join(run, conf)
            if name.startswith("files-api.") and os.path.exists(path):
                with open(path) as f:
                    if listens.search(f.read()):
                        found.append(run)
    return found


class SlowContent:
    """gen's content in 256 KiB pieces, one every `pause` seconds: a slow client."""

    def __init__(self, gen, pause):
        self.gen, self.pause, self.total = gen, pause, gen.total

    def chunks(self):
        for chunk in self.gen.chunks():
            for at in range(0, len(chunk), 256 * 1024):
                time.sleep(self.pause)
                yield chunk[at:at + 256 * 1024]


class StopDuringReceiveTest(ApiTestCase):
    def test_upload_still_arriving_completes_during_shutdown(self):
        # The web server stops gracefully (nginx and Apache took serve.sh's
        # SIGINT as "stop now" and cut the upload). Apache is given 13 s: a
        # second SIGWINCH made it kill what was left after 10 s.
        stack = Stack(workers=2, name="drain-slow").start()
        self.addCleanup(stack.stop)
        client = stack.new_client()
        apache = (stack.server or "").startswith("apache")
        slow = SlowContent(ContentGen(8 * 1024 * 1024), 0.4 if apache else 0.05)  # 13 / 1.6 s
        result = {}

        def upload():
            try:
                result["resp"] = client.upload_stream(slow)
            except Exception as e:  # the connection cut: reported below
                result["error"] = repr(e)

        thread = threading.Thread(target=upload)
        thread.start()
        time.sleep(0.5)
        stack.proc.send_signal(signal.SIGTERM)
        thread.join(120)
        self.assertIn("resp", result, result.get("error"))
        resp = result["resp"]
        self.assertEqual(resp.status, 200, resp.body[:300])
        self.assertEqual(stack.proc.wait(60), 0)
        listing = stack.filesctl("files", "list").stdout
        self.assertIn(resp.json()["id"], listing)


def listening_socket_path(pid):
    """The path of the unix socket a worker listens on (its fd 0)."""
    inode = re.fullmatch(r"socket:\[(\d+)\]", os.readlink("/proc/%d/fd/0" % pid)).group(1)
    with open("/proc/net/unix") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[6] == inode:
                return fields[7]
    raise AssertionError("no unix socket with inode %s" % inode)


def fcgi_record(kind, content, request_id=1):
    return struct.pack(">BBHHBx", 1, kind, request_id, len(content), 0) + content


def fcgi_params(pairs):
    out = b""
    for name, value in pairs:
        out += bytes([len(name), len(value)]) + name + value  # all shorter than 128
    return out


FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN = 1, 3, 4, 5
BEGIN = fcgi_record(FCGI_BEGIN_REQUEST, struct.pack(">HB5x", 1, 0))  # responder, then close
BEGIN_KEEP = fcgi_record(FCGI_BEGIN_REQUEST, struct.pack(">HB5x", 1, 1))  # FCGI_KEEP_CONN
# With CONTENT_LENGTH 0, as lighttpd sends it: without, the worker cannot tell
# that no body is left, and closes with a linger of up to 2 s (which a client
# that never closes its side, as here, waits out).
HEALTH_PARAMS = fcgi_params([(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/healthz"),
                             (b"SERVER_PROTOCOL", b"HTTP/1.1"), (b"CONTENT_LENGTH", b"0")])
LIST_PARAMS = fcgi_params([(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/v1/files"),
                           (b"SERVER_PROTOCOL", b"HTTP/1.1"), (b"CONTENT_LENGTH", b"0")])  # 401


def keep_request(params):
    """A request whose connection the web server keeps (FCGI_KEEP_CONN)."""
    return (BEGIN_KEEP + fcgi_record(FCGI_PARAMS, params) + fcgi_record(FCGI_PARAMS, b"") +
            fcgi_record(FCGI_STDIN, b""))


def read_response(conn):
    """The records of one response, up to and with its FCGI_END_REQUEST."""
    data, offset = b"", 0
    while True:
        if len(data) >= offset + 8:
            _, kind, _, length, padding = struct.unpack(">BBHHB", data[offset:offset + 7])
            end = offset + 8 + length + padding
            if len(data) >= end:
                if kind == FCGI_END_REQUEST:
                    return data[:end]
                offset = end
                continue
        piece = conn.recv(65536)
        if not piece:
            raise AssertionError("connection closed mid-response: %r" % data[:300])
        data += piece


@once_is_enough  # FastCGI spoken to the worker's socket, with serve.sh's pool
class StopDuringAcceptTest(ApiTestCase):
    def one_worker(self, name):
        """A one-worker stack, its worker's pid, and a connection to its socket."""
        stack = Stack(workers=1, name=name).start()
        self.addCleanup(stack.stop)
        (pid,) = stack.worker_pids()
        conn = socket.socket(socket.AF_UNIX)
        self.addCleanup(conn.close)
        conn.settimeout(10)
        conn.connect(listening_socket_path(pid))
        return stack, pid, conn

    def kept_connection(self, path):
        """A connection to a worker's socket, kept after one request."""
        conn = socket.socket(socket.AF_UNIX)
        self.addCleanup(conn.close)
        conn.settimeout(5)
        conn.connect(path)
        conn.sendall(keep_request(HEALTH_PARAMS))
        self.assertIn(b"Status: 200", read_response(conn))
        return conn

    def worker_about_to_recycle(self, name):
        """A one-worker stack with max_requests 1, its worker and two
        connections it keeps, once it recycles after its next request (it
        has lived 2 s)."""
        stack = Stack(workers=1, name=name, config="max_requests = 1\n").start()
        self.addCleanup(stack.stop)
        (old,) = stack.worker_pids()
        os.kill(old, signal.SIGKILL)  # a new one, that serves only this test's requests
        self.assertTrue(wait_for(lambda: stack.worker_pids() not in ([], [old])))
        (pid,) = stack.worker_pids()
        kept = [self.kept_connection(listening_socket_path(pid))]
        answered = time.monotonic()  # the worker's clock had started by then
        kept.append(self.kept_connection(listening_socket_path(pid)))
        self.assertLess(process_age(pid), 1.5, "too slow to test before 2 s")
        time.sleep(max(0, answered + 2.2 - time.monotonic()))
        return stack, pid, kept

    def test_stop_while_a_request_is_being_accepted_answers_it(self):
        # libfcgi's accept also reads the request's parameters: a stop signal
        # that lands there waits until the request is answered.
        stack, pid, conn = self.one_worker("stopaccept")
        conn.sendall(BEGIN + fcgi_record(FCGI_PARAMS, HEALTH_PARAMS[:10]))
        time.sleep(0.3)  # the worker has accepted and waits for the rest
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.3)
        conn.sendall(fcgi_record(FCGI_PARAMS, HEALTH_PARAMS[10:]) + fcgi_record(FCGI_PARAMS, b"") +
                     fcgi_record(FCGI_STDIN, b""))
        self.assertIn(b"Status: 200", read_to_end(conn))
        self.assertTrue(wait_for(lambda: pid not in stack.worker_pids() or
                                 not os.path.exists("/proc/%d" % pid)),
                        "the worker did not stop after answering")

    def test_sigusr1_stops_an_idle_worker_as_sigterm_does(self):
        # multiwatch's "nice" stop signal: the worker stops as it would on
        # SIGTERM (its own exit, its last line said), not killed by the signal.
        stack, pid, conn = self.one_worker("stopusr1")
        conn.close()
        os.kill(pid, signal.SIGUSR1)
        stack.wait_for_log(lambda t: "worker %d stopping after" % pid in t)

    def test_requests_on_a_kept_connection_are_answered(self):
        # FCGI_KEEP_CONN: the web server sends the next request on the same
        # connection, which the worker must watch as well as its socket.
        _, _, conn = self.one_worker("keepconn")
        conn.settimeout(3)
        for _ in range(3):
            conn.sendall(keep_request(HEALTH_PARAMS))
            self.assertIn(b"Status: 200", read_response(conn))

    def test_an_idle_kept_connection_does_not_hold_up_new_ones(self):
        # A worker that waited on its kept connection alone left every new
        # connection queued for as long as the web server kept that one idle.
        stack, pid, unused = self.one_worker("keepidle")
        unused.close()  # (dropped by the worker at once)
        first = self.kept_connection(listening_socket_path(pid))
        second = self.kept_connection(listening_socket_path(pid))  # while first is kept, idle
        for conn in (first, second):  # each idle while the other is served
            conn.sendall(keep_request(HEALTH_PARAMS))
            self.assertIn(b"Status: 200", read_response(conn))
        # An idle worker still stops at once, closing the connections it keeps.
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                                 pid not in stack.worker_pids(), timeout=3),
                        "the worker did not stop")
        for conn in (first, second):
            self.assertEqual(conn.recv(1), b"")

    def test_a_kept_connection_is_answered_between_new_connections(self):
        # After a request on a connection that closed, the worker took the
        # next queued connection without waiting: a request on a kept
        # connection waited for as long as new connections came.
        stack, pid, kept = self.one_worker("keepturn")
        kept.settimeout(5)
        kept.sendall(keep_request(HEALTH_PARAMS))
        self.assertIn(b"Status: 200", read_response(kept))
        path = listening_socket_path(pid)
        os.kill(pid, signal.SIGSTOP)
        try:
            others = self.queue_health_requests(path, 30)
            kept.sendall(keep_request(LIST_PARAMS))  # known in the log by its path
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertIn(b"Status: 401", read_response(kept))
        for conn in others:
            self.assertIn(b"Status: 200", read_to_end(conn))
        served = [line for line in stack.log_text().splitlines() if line.startswith("access ")]
        order = [' path="/v1/files" ' in line for line in served[-31:]]
        self.assertIn(True, order)
        self.assertLess(order.index(True), 5, "the kept connection's request came %d of 31"
                        % (order.index(True) + 1))

    def test_a_recycling_worker_answers_what_its_kept_connections_already_hold(self):
        # A worker past max_requests exited at once: a request already sent on
        # another connection it kept was lost (the web server saw a reset).
        stack, pid, kept = self.worker_about_to_recycle("recyclekeep")
        os.kill(pid, signal.SIGSTOP)
        try:
            for conn in kept:
                conn.sendall(keep_request(HEALTH_PARAMS))
        finally:
            os.kill(pid, signal.SIGCONT)
        for conn in kept:
            self.assertIn(b"Status: 200", read_response(conn))
        self.assertTrue(wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                                 pid not in stack.worker_pids()), "the worker did not recycle")

    def test_a_recycling_worker_closes_each_kept_connection_with_its_answer(self):
        # Kept open, a connection answered while the worker recycles invites
        # the web server's next request, which the exiting worker then drops.
        stack, pid, (answered, held) = self.worker_about_to_recycle("recycleclose")
        os.kill(pid, signal.SIGSTOP)
        try:
            answered.sendall(keep_request(HEALTH_PARAMS))
            held.sendall(keep_request(HEALTH_PARAMS)[:10])  # the worker waits for the rest
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertIn(b"Status: 200", read_response(answered))
        answered.settimeout(2)  # closed at once, while the worker still waits on the other
        self.assertEqual(answered.recv(1), b"")
        held.sendall(keep_request(HEALTH_PARAMS)[10:])
        self.assertIn(b"Status: 200", read_response(held))
        self.assertEqual(held.recv(1), b"")
        self.assertTrue(wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                                 pid not in stack.worker_pids()), "the worker did not recycle")

    def queue_health_requests(self, path, n):
        """n new connections to the worker's socket, each with a whole /healthz request."""
        conns = []
        for _ in range(n):
            conn = socket.socket(socket.AF_UNIX)
            self.addCleanup(conn.close)
            conn.settimeout(10)
            conn.connect(path)
            conn.sendall(BEGIN + fcgi_record(FCGI_PARAMS, HEALTH_PARAMS) +
                         fcgi_record(FCGI_PARAMS, b"") + fcgi_record(FCGI_STDIN, b""))
            conns.append(conn)
        return conns

    def test_a_recycling_worker_takes_no_new_connection_but_leaves_it_to_its_successor(self):
        # Recycling stops the worker's accepts: one that went on taking the
        # queued connections (the listening socket left in its wait) would
        # never stop under steady load.
        stack, pid, (kept, _) = self.worker_about_to_recycle("recyclenew")
        path = listening_socket_path(pid)
        os.kill(pid, signal.SIGSTOP)
        try:
            kept.sendall(keep_request(HEALTH_PARAMS))
            others = self.queue_health_requests(path, 3)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertIn(b"Status: 200", read_response(kept))
        for conn in others:  # by the next worker
            self.assertIn(b"Status: 200", read_to_end(conn))
        stack.wait_for_log(lambda t: "worker %d stopping after" % pid in t)
        # Its two connections' first requests and the kept one's second: none of the new.
        self.assertIn("worker %d stopping after 3 requests" % pid, stack.log_text())

    def test_connections_past_the_64_a_worker_keeps_are_closed_after_their_request(self):
        _, pid, unused = self.one_worker("keepmany")
        unused.close()  # (dropped by the worker at once)
        conns = [self.kept_connection(listening_socket_path(pid)) for _ in range(66)]
        for conn in conns[64:]:
            self.assertEqual(conn.recv(1), b"")
        for conn in conns[:64]:
            conn.sendall(keep_request(HEALTH_PARAMS))
            self.assertIn(b"Status: 200", read_response(conn))

    def test_a_connection_stalled_before_its_parameters_does_not_hold_a_stop(self):
        stack, pid, conn = self.one_worker("stall")
        conn.sendall(BEGIN[:1])  # and then nothing
        time.sleep(0.3)
        os.kill(pid, signal.SIGTERM)
        # The worker gives the parameters 5 s, then drops the connection and stops.
        self.assertTrue(wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                                 pid not in stack.worker_pids(), timeout=10),
                        "the worker did not stop")

    def test_a_stopping_pool_answers_the_connections_already_queued(self):
        stack = Stack(workers=1, name="stopqueue").start()
        self.addCleanup(stack.stop)
        (pid,) = stack.worker_pids()
        with open("/proc/%d/stat" % pid) as f:
            supervisor = int(f.read().rsplit(")", 1)[1].split()[1])  # multiwatch
        path = listening_socket_path(pid)
        busy_params = fcgi_params([(b"REQUEST_METHOD", b"POST"), (b"REQUEST_URI", b"/v1/files"),
                                   (b"CONTENT_LENGTH", b"100"), (b"SERVER_PROTOCOL", b"HTTP/1.1")])
        busy = socket.socket(socket.AF_UNIX)
        queued = [socket.socket(socket.AF_UNIX) for _ in range(3)]
        for conn in [busy] + queued:
            self.addCleanup(conn.close)
            conn.settimeout(10)
        # The worker takes a request whose body is still coming...
        busy.connect(path)
        busy.sendall(BEGIN + fcgi_record(FCGI_PARAMS, busy_params) + fcgi_record(FCGI_PARAMS, b"")
                     + fcgi_record(FCGI_STDIN, b"x" * 10))
        time.sleep(0.3)
        # ...others wait in the backlog, and the pool is told to stop.
        for conn in queued:
            conn.connect(path)
            conn.sendall(BEGIN + fcgi_record(FCGI_PARAMS, HEALTH_PARAMS) +
                         fcgi_record(FCGI_PARAMS, b"") + fcgi_record(FCGI_STDIN, b""))
        os.kill(supervisor, signal.SIGTERM)  # no worker replaces this one
        os.kill(pid, signal.SIGTERM)         # (multiwatch passes it on, but not at once)
        time.sleep(0.3)
        busy.sendall(fcgi_record(FCGI_STDIN, b"x" * 90) + fcgi_record(FCGI_STDIN, b""))
        for conn, status in [(busy, b"Status: 401")] + [(c, b"Status: 200") for c in queued]:
            self.assertIn(status, read_to_end(conn))


@unittest.skipIf(os.environ.get("FILES_API_SERVER", "lighttpd") != "lighttpd",
                 "its own nginx in front of the pool: it runs once, with the default server's suite")
class NginxKeptConnectionsTest(ApiTestCase):
    def test_nginx_keeping_more_connections_than_there_are_workers_is_served(self):
        # nginx with fastcgi_keep_conn and a connection cache, in four
        # processes, in front of two workers: each worker is soon kept several
        # connections. A worker that waited on one kept connection alone left
        # the others' requests queued until nginx gave up (here every request
        # hung from the first round on).
        if not shutil.which("nginx"):
            self.skipTest("nginx is not installed")
        stack = Stack(workers=2, name="nginxkeep").start()
        self.addCleanup(stack.stop)
        socket_path = listening_socket_path(stack.worker_pids()[0])
        tmp = tempfile.mkdtemp(prefix="files-api-nginx-keep.")
        self.addCleanup(shutil.rmtree, tmp, True)
        port = free_port()
        temp_paths = "".join("    %s_temp_path %s/%s;\n" % (kind, tmp, kind)
                             for kind in ("client_body", "fastcgi", "proxy", "uwsgi", "scgi"))
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write("daemon off;\nuser root;\npid %s/nginx.pid;\nerror_log stderr warn;\n"
                    "worker_processes 4;\nevents { worker_connections 256; }\n"
                    "http {\n    access_log off;\n%s"
                    "    upstream workers { server unix:%s; keepalive 16; }\n"
                    "    server {\n        listen 127.0.0.1:%d;\n        location / {\n"
                    "            include /etc/nginx/fastcgi_params;\n"
                    "            fastcgi_pass workers;\n            fastcgi_keep_conn on;\n"
                    "        }\n    }\n}\n" % (tmp, temp_paths, socket_path, port))
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(tmp, "nginx.conf"), "-e", "stderr"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(nginx.wait, 10)
        self.addCleanup(nginx.send_signal, signal.SIGQUIT)
        url = "http://127.0.0.1:%d/healthz" % port
        self.assertTrue(wait_for(lambda: http_status(url) == 200), "nginx did not start")

        def timed(_):
            started = time.monotonic()
            return http_status(url), time.monotonic() - started

        for _ in range(3):
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                results = list(pool.map(timed, range(200)))
            self.assertEqual({status for status, _ in results}, {200}, results[:5])
            self.assertLess(max(took for _, took in results), 3.0)
        kept = [sum(1 for fd in os.listdir("/proc/%d/fd" % pid)
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"))
                for pid in stack.worker_pids()]
        self.assertGreater(max(kept), 2, "no worker was kept more than one connection: %s" % kept)


def http_status(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError as e:
        return str(e)


@unittest.skipIf(WEB_SERVER_SPAWNS, "the web server supervises the workers")
class RecycleTest(ApiTestCase):
    def test_workers_recycle_after_max_requests_once_they_have_lived_2_s(self):
        # multiwatch takes a worker that exits within 1 s of its start for a
        # failed start and gives up after 1000 in a row: under steady load a
        # small max_requests emptied the pool. A worker recycles after
        # max_requests, and not before it has lived 2 s.
        stack = Stack(workers=1, name="recycle", config="max_requests = 5\n").start()
        self.addCleanup(stack.stop)
        client = stack.new_client()
        (old,) = stack.worker_pids()
        os.kill(old, signal.SIGKILL)  # a new one: the slower the stack's start, the older the first
        self.assertTrue(wait_for(lambda: stack.worker_pids() not in ([], [old])))
        (pid,) = stack.worker_pids()
        burst_started = time.monotonic()
        age_at_burst = process_age(pid)
        for i in range(40):
            self.assertEqual(client.list().status, 200, "request %d" % i)
        if age_at_burst + time.monotonic() - burst_started >= 1.9:
            self.skipTest("the burst ended after the worker had lived 2 s: too slow to test")
        self.assertNotIn("stopping after", stack.log_text())
        for round in range(2):
            time.sleep(2.1)  # the worker has lived 2 s: it stops after its 5th request
            for i in range(5):
                self.assertEqual(client.list().status, 200, "round %d, request %d" % (round, i))
            stack.wait_for_log(lambda t: t.count("stopping after") > round)
        text = stack.log_text()
        served = [int(n) for n in re.findall(r"stopping after (\d+) requests", text)]
        self.assertEqual(len(served), 2, text[-2000:])
        self.assertGreaterEqual(served[0], 41)  # the burst, and the first after 2 s
        self.assertEqual(served[1], 5)
        self.assertGreaterEqual(text.count(" started, data in "), 2)


@unittest.skipUnless(os.environ.get("FILES_API_SERVER") == "lighttpd-spawn",
                     "lighttpd starts the workers itself in the lighttpd-spawn pass only")
class SpawnedPoolTest(ApiTestCase):
    def test_lighttpd_starts_as_many_workers_as_asked(self):
        # --workers reaches lighttpd as its max-procs (no multiwatch here).
        stack = Stack(workers=3, name="spawned").start()
        self.addCleanup(stack.stop)
        worker = os.path.realpath(BIN_DIR / "files-fcgi")
        marker = b"FILES_API_DATA_DIR=" + stack.data_dir.encode()

        def workers():
            found = 0
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open("/proc/%s/environ" % pid, "rb") as f:
                        if os.readlink("/proc/%s/exe" % pid) == worker and \
                                marker in f.read().split(b"\0"):
                            found += 1
                except OSError:
                    pass
            return found
        self.assertTrue(wait_for(lambda: workers() == 3), "%d workers" % workers())


@unittest.skipIf(os.environ.get("FILES_API_SERVER", "lighttpd") != "lighttpd",
                 "make run serves with lighttpd")
@scripts_only
class MakeRunTest(ApiTestCase):
    """scripts/run-dev.sh, which `make run` runs: the key it prints works."""

    def make_run(self, data, port=None, **env):
        # (until the banner's last line, the list example)
        proc, text = serve_until_ready([], cwd=str(REPO), command=[str(REPO / "scripts/run-dev.sh")],
                                       env=dict(os.environ, DATA_DIR=data,
                                                PORT=str(port or free_port()), **env),
                                       until=r"-F file=@requests.jsonl\n.*\n")
        self.addCleanup(stop_serve, proc)
        return proc, text

    def key_works(self, text):
        key = re.search(r"API key \(kept in [^)]*\):\n  (\S+)", text).group(1)
        conn = socket.create_connection(("127.0.0.1", listening_port(text)), timeout=30)
        conn.sendall(b"GET /v1/files HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Authorization: Bearer " + key.encode() + b"\r\n\r\n")
        return key, read_to_end(conn).split(b"\r\n", 1)[0]

    def test_the_key_printed_works_and_a_revoked_one_is_replaced(self):
        data = os.path.join(scratch_dir(self, "run"), "var")
        proc, text = self.make_run(data)
        first, status = self.key_works(text)
        self.assertEqual(status, b"HTTP/1.1 200 OK", text)
        # Not in any process's arguments, which every user can read.
        for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                with open(cmdline, "rb") as f:
                    self.assertNotIn(first.encode(), f.read(), cmdline)
            except OSError:  # gone meanwhile
                pass
        stop_serve(proc)
        proc, text = self.make_run(data)  # kept
        self.assertEqual(self.key_works(text), (first, b"HTTP/1.1 200 OK"))
        stop_serve(proc)
        ctl = [str(BIN_DIR / "filesctl"), "--data-dir", data]
        listed = subprocess.run(ctl + ["keys", "list"], capture_output=True, text=True).stdout
        key_id = re.search(r"^(key_\S+)\s+dev\s+active", listed, re.M).group(1)
        subprocess.run(ctl + ["keys", "revoke", key_id], check=True, capture_output=True)
        proc, text = self.make_run(data)  # revoked: a new one
        second, status = self.key_works(text)
        self.assertNotEqual(second, first)
        self.assertEqual(status, b"HTTP/1.1 200 OK", text)

    def test_a_key_that_cannot_be_made_says_why(self):
        data = os.path.join(scratch_dir(self, "run"), "var")
        proc, text = self.make_run(data, FILES_API_MAX_FILE_BYTES="abc")
        self.assertEqual(proc.wait(30), 1, text)
        self.assertIn("max_file_bytes", text)
        self.assertIn("no API key could be made", text)
        self.assertFalse(os.path.exists(os.path.join(data, "dev-key")))

    def test_the_key_is_shown_when_serve_sh_starts_again_without_a_variable(self):
        # serve.sh starts itself again without a $FILES_API_ name that is no
        # shell identifier; the banner comes through a pipe, read only once.
        data = os.path.join(scratch_dir(self, "run"), "var")
        proc, text = self.make_run(data, **{"FILES_API_X-Y": "1"})
        self.assertIn("FILES_API_X-Y", text)  # the warning
        self.assertEqual(self.key_works(text)[1], b"HTTP/1.1 200 OK", text)

    def test_a_key_file_that_is_not_a_file_is_refused_before_any_key_is_made(self):
        data = os.path.join(scratch_dir(self, "run"), "var")
        os.makedirs(os.path.join(data, "dev-key"))
        proc, text = self.make_run(data)
        self.assertEqual(proc.wait(30), 1, text)
        self.assertIn("dev-key, where the dev key is kept, is not a file", text)
        self.assertFalse(os.path.exists(os.path.join(data, "files.db")), text)

    def test_no_key_is_shown_when_the_port_is_taken(self):
        tmp = scratch_dir(self, "run")
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc, text = self.make_run(os.path.join(tmp, "var"), port=taken.getsockname()[1])
        self.assertEqual(proc.wait(30), 1, text)
        self.assertIn("something already answers", text)
        self.assertNotIn("API key", text)


class ConfigPathTest(ApiTestCase):
    def test_a_config_that_cannot_be_read_is_refused(self):
        tmp = tempfile.mkdtemp(prefix="files-api-it-config-")
        self.addCleanup(shutil.rmtree, tmp, True)
        env = dict(os.environ, FILES_API_BIN=str(BIN_DIR))
        for config, message in ((os.path.join(tmp, "nosuchdir", "x.conf"), "no such directory"),
                                (tmp, "Is a directory")):
            with self.subTest(config=config):
                proc = subprocess.run(
                    [str(SERVE), "--port", str(free_port()), "--data-dir",
                     os.path.join(tmp, "data"), "--config", config],
                    capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=60)
                self.assertNotEqual(proc.returncode, 0, proc.stdout)
                self.assertIn(message, proc.stderr)
                self.assertNotIn("listening", proc.stdout)


class HealthTest(ApiTestCase):
    def test_health_follows_the_data_directory(self):
        # No gc beside the pool: its start, which may come after ours, makes
        # tmp/ again (the full run caught it doing so under Apache).
        # (--start-timeout at its largest: taken)
        stack = Stack(workers=1, name="health",
                      serve_args=["--gc-interval", "0", "--start-timeout", "9999"]).start()
        self.addCleanup(stack.stop)
        client = stack.client(None)
        resp = client.request("GET", "/healthz")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json(), {"status": "ok"})
        self.assertEqual(client.request("HEAD", "/healthz").status, 200)
        tmp = os.path.join(stack.data_dir, "tmp")
        shutil.rmtree(tmp)
        resp = client.request("GET", "/healthz")
        self.assertEqual(resp.status, 503)
        self.assertEqual(resp.json(), {"status": "unavailable"})
        os.mkdir(tmp, 0o700)
        owner = os.stat(stack.data_dir)
        os.chown(tmp, owner.st_uid, owner.st_gid)  # www-data's under mod_fcgid
        self.assertEqual(client.request("GET", "/healthz").status, 200)
        # the content directory and the database file count too
        for name in ("files", "files.db"):
            path = os.path.join(stack.data_dir, name)
            os.rename(path, path + ".away")
            try:
                self.assertEqual(client.request("GET", "/healthz").status, 503, name)
            finally:
                os.rename(path + ".away", path)
            self.assertEqual(client.request("GET", "/healthz").status, 200, name)
        self.assertEqual(client.request("POST", "/healthz").status, 405)
        self.assertNotIn("gc: ", stack.log_text())  # --gc-interval 0: no gc, not even once


@unittest.skipIf(os.environ.get("FILES_API_SERVER") not in (None, "", "lighttpd"),
                 "once, with serve.sh's default server")
@scripts_only
class FreshCheckoutTest(ApiTestCase):
    """serve.sh in a checkout that was never built builds what it needs first."""

    def checkout(self):
        tmp = tempfile.mkdtemp(prefix="files-api-it-checkout-")
        self.addCleanup(shutil.rmtree, tmp, True)
        tree = os.path.join(tmp, "repo")
        skip = shutil.ignore_patterns(".git", "bin", "build", "var", "node_modules", "__pycache__")
        shutil.copytree(str(REPO), tree, ignore=skip, symlinks=True)
        self.assertFalse(os.path.exists(os.path.join(tree, "bin", "files-fcgi")))
        return tmp, tree

    def test_serve_builds_a_fresh_checkout(self):
        _tmp, tree = self.checkout()
        stack = Stack(workers=1, name="checkout", serve=os.path.join(tree, "scripts", "serve.sh"),
                      env={"FILES_API_BIN": None}, start_timeout=300).start()
        self.addCleanup(stack.stop)
        self.assertIn("installing and building what is missing", stack.log_text())
        self.assertTrue(os.access(os.path.join(tree, "bin", "files-fcgi"), os.X_OK))
        self.assertEqual(stack.client(None).request("GET", "/healthz").status, 200)

    def test_a_named_bin_dir_that_is_missing_is_refused(self):
        tmp, tree = self.checkout()
        env = dict(os.environ, FILES_API_BIN=os.path.join(tmp, "nowhere"))
        proc = subprocess.run(
            [os.path.join(tree, "scripts", "serve.sh"), "--port", str(free_port()),
             "--data-dir", os.path.join(tmp, "data")],
            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("nowhere/files-fcgi not found (run make)", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(tree, "build")))  # nothing was built



def processes_naming(text):
    """Command lines of the running processes that hold text."""
    found = []
    for name in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if name.isdigit() and text in cmdline:
            found.append(cmdline)
    return found


def scratch_dir(test, what):
    """A directory removed when test ends, that www-data can pass through
    (mod_fcgid's workers run as www-data)."""
    tmp = tempfile.mkdtemp(prefix="files-api-it-%s-" % what)
    test.addCleanup(shutil.rmtree, tmp, True)
    os.chmod(tmp, 0o711)
    return tmp


def listening_port(text):
    """The port of serve.sh's "listening on" line in text."""
    return int(re.search(r"listening on http://127\.0\.0\.1:(\d+)", text).group(1))


def serve_until_ready(args, cwd, env=None, timeout=60, command=None, until="listening on",
                      split=False):
    """Runs serve.sh (or command) until its output matches the regular
    expression until, or it exits: (process, output so far). Its stdout and
    stderr go to one file, or with split to two (see serve_output)."""
    log = tempfile.TemporaryFile()
    err_log = tempfile.TemporaryFile() if split else None
    env = dict({"FILES_API_BIN": str(BIN_DIR)}, **(env if env is not None else os.environ))
    server = os.environ.get("FILES_API_SERVER")
    if command is None:
        command = [str(SERVE)] + (["--server", server] if server else [])
    proc = subprocess.Popen(command + args, cwd=cwd, env=env, stdout=log,
                            stderr=err_log or subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    proc.log, proc.err_log = log, err_log
    deadline = time.monotonic() + timeout
    while True:
        exited = proc.poll() is not None  # (before reading: all it wrote is read)
        log.seek(0)
        text = log.read().decode(errors="replace")
        if re.search(until, text) or exited or time.monotonic() > deadline:
            return proc, text
        time.sleep(0.05)


def serve_output(proc, stderr=False):
    """All that serve_until_ready's process has written so far (to stderr,
    when it was split)."""
    log = proc.err_log if stderr else proc.log
    log.seek(0)
    return log.read().decode(errors="replace")


def stop_serve(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its group: nothing left to hold the suite up
            raise


class ServeLogTest(ApiTestCase):
    WHOLE_LINE = re.compile(
        r"^(?:(files-fcgi|spawn-fcgi|multiwatch|serve\.sh): |access method=|listening on "
        r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: \(|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \["
        r"|\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d\.\d+ \d{4}\] \[)")

    def serve_a_while(self, split):
        """Starts serve.sh, sends four requests (two the web server logs as
        errors), stops it: its process."""
        tmp = scratch_dir(self, "log")
        proc, text = serve_until_ready(["--port", str(free_port()), "--workers", "1",
                                        "--data-dir", os.path.join(tmp, "data")], cwd=tmp,
                                       split=split)
        self.addCleanup(stop_serve, proc)
        port = listening_port(text)
        for target in (b"/%", b"/v1/files", b"/%", b"/v1/files"):
            conn = socket.create_connection(("127.0.0.1", port), timeout=30)
            conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            read_to_end(conn)
        stop_serve(proc)
        return proc

    def assert_every_line_is_logged(self, log):
        for line in log.splitlines():
            self.assertRegex(line, self.WHOLE_LINE, log)
        self.assertEqual(log.count('path="/v1/files" status=401'), 2, log)
        self.assertRegex(log, r"(?m)^files-fcgi: worker \d+ started, data in ")
        self.assertRegex(log, r"(?m)^files-fcgi: worker \d+ stopping after \d+ requests$")
        server = os.environ.get("FILES_API_SERVER", "lighttpd")
        if server.startswith("lighttpd"):
            self.assertRegex(log, r"(?m)^[-\d]+ [:\d]+: \(server\.c\.\d+\) server started")
            self.assertRegex(log, r"(?m)^[-\d]+ [:\d]+: \(server\.c\.\d+\) \[note\] graceful shutdown")
        elif server.startswith("apache"):
            self.assertEqual(len(re.findall(r"(?m)^\[[^]]+\] \[core:error\] .* AH10244: invalid URI "
                                            r"path \(/%\)$", log)), 2, log)

    def test_the_web_servers_lines_and_the_workers_share_one_output(self):
        # serve_until_ready gives serve.sh one file, opened without O_APPEND,
        # for stdout and stderr (as `> log 2>&1` does). A server that opens
        # /dev/stderr anew appends at its end, where the others' shared
        # offset then writes over its lines.
        self.assert_every_line_is_logged(serve_output(self.serve_a_while(split=False)))

    def test_the_logs_go_to_stderr_and_only_the_listening_line_to_stdout(self):
        proc = self.serve_a_while(split=True)
        self.assertRegex(serve_output(proc), r"^listening on http://127\.0\.0\.1:\d+\n$")
        self.assert_every_line_is_logged(serve_output(proc, stderr=True))


@scripts_only
class ServeScriptTest(ApiTestCase):
    """serve.sh's own checks, before it starts anything."""

    def tmp(self):
        return scratch_dir(self, "serve")

    def env(self):
        return {k: v for k, v in os.environ.items()
                if not k.startswith("FILES_API_") or k == "FILES_API_SERVER"}

    def test_without_data_dir_the_configuration_names_the_data_directory(self):
        tmp = self.tmp()
        config = os.path.join(tmp, "files-api.conf")
        with open(config, "w") as f:
            f.write("data_dir = %s/from-file\n" % tmp)
        env = self.env()
        for args, extra, where in ((["--config", config], {}, "from-file"),
                                   ([], {"FILES_API_DATA_DIR": tmp + "/from-env"}, "from-env"),
                                   ([], {}, "var")):
            with self.subTest(where=where):
                proc, text = serve_until_ready(["--port", str(free_port()), "--workers", "1"]
                                               + args, cwd=tmp, env=dict(env, **extra))
                self.addCleanup(stop_serve, proc)
                self.assertIn("listening on", text)
                self.assertTrue(os.path.exists(os.path.join(tmp, where, "files.db")), text)
                stop_serve(proc)

    @unittest.skipIf(os.environ.get("FILES_API_SERVER", "lighttpd") != "lighttpd",
                     "serve.sh's wait is the same for every server: it takes 20 s")
    def test_workers_that_cannot_start_end_the_start_after_the_start_timeout(self):
        # A damaged database: each worker logs its fault and exits, the pool
        # retries once a second, and the web server keeps serve.sh's probe
        # waiting on the pool's socket. serve.sh must still give up in time
        # (20 s unless told otherwise).
        tmp = self.tmp()
        data = os.path.join(tmp, "data")
        os.mkdir(data, 0o700)
        with open(os.path.join(data, "files.db"), "wb") as f:
            f.write(os.urandom(8192))
        started, port = time.monotonic(), free_port()
        proc, text = serve_until_ready(["--port", str(port), "--workers", "1",
                                        "--data-dir", data, "--start-timeout", "3"],
                                       cwd=tmp, env=self.env())
        self.addCleanup(stop_serve, proc)
        self.assertEqual(proc.wait(10), 1, text)
        self.assertLess(time.monotonic() - started, 13)
        self.assertIn("cannot open the database", text)
        self.assertIn("after 3 s: the workers cannot start", text)  # (they answer 503 meanwhile)
        self.assertNotIn("listening on", text)
        # what it started is stopped, and its run directory removed
        self.assertTrue(wait_for(lambda: not processes_naming(data), 10), processes_naming(data))
        self.assertEqual(serve_run_dirs(port), [])

    def test_option_values_are_checked(self):
        tmp = self.tmp()
        data = ["--data-dir", os.path.join(tmp, "data")]
        for args, message in ((["--port"], "--port needs a value"),
                              (["--port", "99999"] + data, "--port takes 1-65535, not 99999"),
                              (["--port", "0"] + data, "--port takes 1-65535, not 0"),
                              (["--port", "65536"] + data, "--port takes 1-65535, not 65536"),
                              (["--workers", "0"] + data, "--workers takes 1-999, not 0"),
                              (["--workers", "1000"] + data, "--workers takes 1-999, not 1000"),
                              (["--workers", "abc"] + data, "--workers takes 1-999, not abc"),
                              (["--start-timeout", "0"] + data,
                               "--start-timeout takes 1-9999 seconds, not 0"),
                              (["--start-timeout", "1x"] + data,
                               "--start-timeout takes 1-9999 seconds, not 1x"),
                              (["--start-timeout", "10000"] + data,
                               "--start-timeout takes 1-9999 seconds, not 10000"),
                              (["--data-dir", ""], "--data-dir needs a value"),
                              (["--server"], "--server needs a value"),
                              (["--data-dir", "--port", "8080"], "--data-dir needs a value"),
                              (["--gc-interval", "10000000"] + data,
                               "--gc-interval takes a number of seconds, not 10000000"),
                              (["--download-mode", "ftp"] + data, "unknown download mode: ftp"),
                              (["--bogus"] + data, "unknown argument --bogus"),
                              # which of the two was meant is a guess
                              (["--port", "1", "--port", "2", "--server", "bogus"] + data,
                               "--port given twice"),
                              (data + ["--server", "bogus", "--data-dir", tmp],
                               "--data-dir given twice"),
                              (["--banner-file", os.path.join(tmp, "none")] + data,
                               "--banner-file: cannot read " + os.path.join(tmp, "none")),
                              # the bounds themselves pass: the next check speaks
                              (["--port", "65535", "--workers", "999", "--gc-interval", "9999999",
                                "--start-timeout", "9999", "--server", "bogus"] + data,
                               "unsupported server: bogus"),
                              (["--port", "1", "--workers", "1", "--gc-interval", "0",
                                "--start-timeout", "1", "--server", "bogus"] + data,
                               "unsupported server: bogus")):
            with self.subTest(args=args):
                # (without the run's --server: these name their own, once)
                proc, text = serve_until_ready(args, cwd=tmp, env=self.env(), command=[str(SERVE)])
                self.addCleanup(stop_serve, proc)
                self.assertEqual(proc.wait(30), 2, text)
                self.assertIn("serve.sh: " + message, text)
        self.assertEqual(os.listdir(tmp), [])

    def test_help_prints_the_usage_and_exits_0(self):
        proc = subprocess.run([str(SERVE), "--help"], capture_output=True, text=True,
                              env=self.env(), stdin=subprocess.DEVNULL, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("scripts/serve.sh [--server lighttpd|apache|nginx", proc.stdout)

    @unittest.skipIf(WEB_SERVER_SPAWNS, "the web server supervises the workers")
    def test_by_default_four_workers_and_a_gc_every_600_s(self):
        tmp = self.tmp()
        data = os.path.join(tmp, "data")
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir", data],
                                       cwd=tmp, env=self.env())
        self.addCleanup(stop_serve, proc)
        self.assertIn("listening on", text)

        def workers():
            return [c for c in processes_naming(data) if c.split()[0].endswith("/files-fcgi")]
        wait_for(lambda: len(workers()) >= 4, 10)
        self.assertEqual(len(workers()), 4, workers())
        self.assertEqual(len([c for c in processes_naming(data) if " gc --every 600" in c]), 1,
                         processes_naming(data))

    def test_a_bin_directory_relative_to_the_current_one_works(self):
        tmp = self.tmp()
        proc, text = serve_until_ready(
            ["--port", str(free_port()), "--workers", "1", "--data-dir", os.path.join(tmp, "data")],
            cwd=str(REPO), env=dict(self.env(), FILES_API_BIN=os.path.relpath(BIN_DIR, REPO)))
        self.addCleanup(stop_serve, proc)
        self.assertIn("listening on", text)

    def test_what_a_serve_killed_outright_left_is_removed_at_its_next_start(self):
        tmp = self.tmp()
        data = os.path.join(tmp, "data")
        args = ["--port", str(free_port()), "--workers", "1", "--data-dir", data]
        proc, text = serve_until_ready(args, cwd=tmp, env=self.env())
        self.addCleanup(stop_serve, proc)
        self.assertIn("listening on", text)
        fds = "/proc/%d/fd" % proc.pid
        locks = [os.readlink(os.path.join(fds, fd)) for fd in os.listdir(fds)]
        locks = [lock for lock in locks if lock.endswith("/serve.lock")]
        self.assertEqual(len(locks), 1, locks)
        run = os.path.dirname(locks[0])
        lighttpd = os.environ.get("FILES_API_SERVER", "lighttpd").startswith("lighttpd")
        if lighttpd:
            with open(os.path.join(run, "spool-dir")) as f:
                run_spool = f.read().rstrip("\n")
            self.assertEqual(os.path.dirname(run_spool), os.path.join(data, "spool"))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        with open(locks[0]) as lock:  # free once every part of that stack has ended
            deadline = time.monotonic() + 30
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    self.assertLess(time.monotonic(), deadline, "the killed stack lives on")
                    time.sleep(0.1)
        self.assertTrue(os.path.isdir(run))
        if lighttpd:
            with open(os.path.join(run_spool, "lighttpd-upload-left"), "w") as f:
                f.write("part of a body")

        def fake_run(held, spool_name="lighttpd."):  # (as serve.sh names its spools)
            run = tempfile.mkdtemp(prefix="files-api.", dir="/tmp")
            spool = tempfile.mkdtemp(prefix=spool_name)
            for path in (run, spool):
                self.addCleanup(shutil.rmtree, path, True)
            with open(os.path.join(run, "spool-dir"), "w") as f:
                f.write(spool + "\n")
            lock = open(os.path.join(run, "serve.lock"), "w")
            self.addCleanup(lock.close)
            if held:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return run, spool
        live, free = fake_run(held=True), fake_run(held=False)
        # A spool-dir that names something else is no spool of serve.sh's.
        other = fake_run(held=False, spool_name="files-api-it-other-")
        # Nor is a run of another user's (as root, one can be made here).
        others, as_root = fake_run(held=False), os.geteuid() == 0
        if as_root:
            for path in (others[0], os.path.join(others[0], "serve.lock")):
                os.chown(path, 65534, 65534)

        proc, text = serve_until_ready(args, cwd=tmp, env=self.env())
        self.addCleanup(stop_serve, proc)
        self.assertIn("listening on", text)
        self.assertFalse(os.path.exists(run))
        if lighttpd:
            self.assertFalse(os.path.exists(run_spool))
        self.assertEqual([os.path.exists(path) for path in live + free + other + others],
                         [True, True, False, False, False, True] + [as_root] * 2)

    def test_a_second_start_on_the_same_data_leaves_the_first_ones_uploads_alone(self):
        # lighttpd spools a body in 1 MiB pieces and closes each once full: a
        # slow upload's pieces are old and held by no process.
        tmp = self.tmp()
        data = os.path.join(tmp, "data")
        first, text = serve_until_ready(["--port", str(free_port()), "--workers", "1",
                                         "--data-dir", data], cwd=tmp, env=self.env())
        self.addCleanup(stop_serve, first)
        port = listening_port(text)
        key = subprocess.run([str(BIN_DIR / "filesctl"), "--data-dir", data, "keys", "create",
                              "--account", "a", "--scopes", "*"],
                             capture_output=True, text=True, check=True).stdout.strip()
        content = batch_jsonl(20000)
        self.assertGreater(len(content), 3 << 20)
        content_type, body = multipart(
            [(b'Content-Disposition: form-data; name="purpose"\r\n', b"batch"),
             (b'Content-Disposition: form-data; name="file"; filename="a.jsonl"\r\n', content)])
        conn = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.addCleanup(conn.close)
        conn.sendall(("POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                      % (key, content_type, len(body))).encode() + body[:-4096])
        time.sleep(0.5)
        long_ago = time.time() - 600
        for where, _, names in os.walk(os.path.join(data, "spool")):
            for name in names:
                os.utime(os.path.join(where, name), (long_ago, long_ago))
        second, text = serve_until_ready(["--port", str(free_port()), "--workers", "1",
                                          "--data-dir", data], cwd=tmp, env=self.env())
        self.addCleanup(stop_serve, second)
        self.assertIn("listening on", text)
        conn.sendall(body[-4096:])
        response = read_to_end(conn)
        self.assertEqual(response.split(b"\r\n", 1)[0], b"HTTP/1.1 200 OK", response[-300:])

    def test_a_port_that_already_answers_is_refused(self):
        tmp = self.tmp()
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(8)
        self.addCleanup(taken.close)
        proc, text = serve_until_ready(["--port", str(taken.getsockname()[1]), "--data-dir",
                                        os.path.join(tmp, "data")], cwd=tmp, env=self.env())
        self.addCleanup(stop_serve, proc)
        self.assertEqual(proc.wait(30), 1, text)
        self.assertIn("something already answers on 127.0.0.1:%d" % taken.getsockname()[1], text)
        self.assertNotIn("listening", text)
        self.assertEqual(os.listdir(tmp), [])  # checked before the data directory is made

    def test_a_directory_of_other_things_keeps_its_mode(self):
        # A mistyped --data-dir /tmp, or a scratch directory that also holds
        # the files to upload: used, but not made private (0700) as ours are.
        tmp = self.tmp()
        other = os.path.join(tmp, "shared")
        os.mkdir(other)
        os.chmod(other, 0o1777)
        open(os.path.join(other, "notes.txt"), "w").close()
        os.mkdir(os.path.join(other, "tmp"))  # a name of ours among others is not enough
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir", other,
                                        "--workers", "1"], cwd=tmp, env=self.env())
        self.addCleanup(stop_serve, proc)
        self.assertIn("listening on", text)
        self.assertIn("holds things that are not the service's: its mode (1777) is left", text)
        self.assertEqual(os.stat(other).st_mode & 0o7777, 0o1777)
        self.assertTrue(os.path.exists(os.path.join(other, "notes.txt")))
        self.assertEqual(os.stat(os.path.join(other, "files")).st_mode & 0o777, 0o700)
        stop_serve(proc)
        # the same the next time, now that it holds a database too
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir", other,
                                        "--workers", "1"], cwd=tmp, env=self.env())
        self.addCleanup(stop_serve, proc)
        self.assertIn("listening on", text)
        self.assertEqual(os.stat(other).st_mode & 0o7777, 0o1777)
        stop_serve(proc)

    def test_a_data_directory_with_a_space_through_a_symlink_or_not_in_ascii_serves(self):
        # Its path goes into the web server's configuration (the hand-off's
        # directory, the spool, mod_fcgid's environment for the workers). The
        # workers resolve it: under a symlink, the hand-off paths they sent were
        # outside the web server's X-Sendfile root (403, 404). multiwatch
        # refused a path that is not ASCII as its argument.
        def spaced(stack):
            stack.data_dir = os.path.join(stack.tmp, "with space", "data")

        def linked(stack):
            os.mkdir(os.path.join(stack.tmp, "real"))
            os.symlink(os.path.join(stack.tmp, "real"), os.path.join(stack.tmp, "link"))
            stack.data_dir = os.path.join(stack.tmp, "link", "data")

        def not_ascii(stack):
            stack.data_dir = os.path.join(stack.tmp, "dätä")
        for name, before_start in (("spaced", spaced), ("linked", linked),
                                   ("not-ascii", not_ascii)):
            with self.subTest(data_dir=name):
                stack = Stack(workers=1, name=name, before_start=before_start).start()
                self.addCleanup(stack.stop)
                client = stack.new_client()
                content = batch_jsonl(3)
                resp = client.upload(content)
                self.assertEqual(resp.status, 200, resp.body[:300])
                got = client.content(resp.json()["id"])
                self.assertEqual((got.status, got.body), (200, content))
                self.assertTrue(os.path.exists(os.path.join(stack.data_dir, "files.db")))
                stack.stop()

    def test_a_data_directory_that_is_a_file_is_refused_in_so_many_words(self):
        # It was mkdir's "cannot create directory ...: File exists".
        tmp = self.tmp()
        data = os.path.join(tmp, "data")
        with open(data, "w") as f:
            f.write("not a directory\n")
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir", data],
                                       cwd=tmp, env=self.env())
        self.addCleanup(stop_serve, proc)
        self.assertEqual(proc.wait(30), 1, text)
        self.assertIn("the data directory %s is not a directory" % data, text)
        self.assertEqual(os.listdir(tmp), ["data"], text)

    def test_a_data_directory_with_a_percent_sign(self):
        # lighttpd percent-decodes an X-Sendfile path: refused for its hand-off
        # (every download was its 403), served by the others and by streaming.
        lighttpd = (os.environ.get("FILES_API_SERVER") or "lighttpd").startswith("lighttpd")
        tmp = self.tmp()
        data = os.path.join(tmp, "p%20q")
        if lighttpd:
            proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir", data],
                                           cwd=tmp, env=self.env())
            self.addCleanup(stop_serve, proc)
            self.assertEqual(proc.wait(30), 2, text)
            self.assertIn("would percent-decode the downloads' paths", text)
            self.assertFalse(os.path.exists(data), text)

        def percent(stack):
            stack.data_dir = os.path.join(stack.tmp, "p%20q")
        stack = Stack(workers=1, name="percent", before_start=percent,
                      serve_args=["--download-mode", "stream"] if lighttpd else []).start()
        self.addCleanup(stack.stop)
        client = stack.new_client()
        content = batch_jsonl(2)
        got = client.content(client.upload_ok(content)["id"])
        self.assertEqual((got.status, got.body), (200, content))

    def test_a_program_directory_with_a_space_or_not_in_ascii_in_its_path_serves(self):
        # (lighttpd splits a bin-path at spaces; multiwatch refused arguments
        # that are not ASCII)
        tmp = self.tmp()
        for name in ("b in", "bïn"):
            with self.subTest(name=name):
                linked = os.path.join(tmp, name)
                os.symlink(str(BIN_DIR), linked)
                stack = Stack(workers=1, name="bin", env={"FILES_API_BIN": linked}).start()
                self.addCleanup(stack.stop)
                client = stack.new_client()
                self.assertEqual(client.upload(batch_jsonl(2)).status, 200)
                stack.stop()

    def test_a_path_that_cannot_go_into_a_configuration_is_refused(self):
        tmp = self.tmp()
        for name in ('quote"d', "back\\slash", "dollar$x", "new\nline"):
            for where in ("data", "environment", "config", "spool"):
                if where == "config" and "\n" in name:
                    continue  # (no such value in a file of lines)
                with self.subTest(name=name, where=where):
                    path = os.path.join(tmp, name)
                    env = self.env()
                    args = ["--port", str(free_port())]
                    if where == "data":
                        args += ["--data-dir", path]
                    elif where == "environment":
                        env["FILES_API_DATA_DIR"] = path
                    elif where == "config":  # checked too, before it is made
                        config = os.path.join(tmp, "files-api.conf")
                        with open(config, "w") as f:
                            f.write("data_dir = %s\n" % path)
                        args += ["--config", config]
                    else:
                        os.makedirs(path, exist_ok=True)
                        env["FILES_API_SPOOL_DIR"] = path
                        args += ["--data-dir", os.path.join(tmp, "data")]
                    proc, text = serve_until_ready(args, cwd=tmp, env=env)
                    self.addCleanup(stop_serve, proc)
                    self.assertEqual(proc.wait(30), 2, text)
                    self.assertIn("cannot go into the web server's configuration", text)
                    self.assertFalse(os.path.exists(os.path.join(tmp, "data")), text)
                    if where != "spool":
                        self.assertFalse(os.path.exists(path), text)
                        self.assertFalse(os.path.exists(path.split("\n")[0]), text)

    def test_a_data_directory_whose_real_path_cannot_go_into_a_configuration_is_refused(self):
        tmp = self.tmp()
        os.mkdir(os.path.join(tmp, 'quote"d'))
        os.symlink(os.path.join(tmp, 'quote"d'), os.path.join(tmp, "link"))
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir",
                                        os.path.join(tmp, "link")], cwd=tmp, env=self.env())
        self.addCleanup(stop_serve, proc)
        self.assertEqual(proc.wait(30), 2, text)
        self.assertIn('quote"d: a path with', text)

    @unittest.skipUnless(os.environ.get("FILES_API_SERVER") == "apache-fcgid" and os.geteuid() == 0,
                         "mod_fcgid's workers run as www-data when Apache starts as root")
    def test_a_data_directory_www_data_cannot_reach_is_refused_before_anything_is_made(self):
        tmp = self.tmp()
        closed = os.path.join(tmp, "closed")
        os.mkdir(closed, 0o700)
        os.mkdir(os.path.join(closed, "linked"))
        link = os.path.join(tmp, "link")  # reachable by its name, not where it leads
        os.symlink(os.path.join(closed, "linked"), link)
        foreign = os.path.join(tmp, "foreign")  # not all the service's: not made www-data's
        os.mkdir(foreign, 0o755)
        open(os.path.join(foreign, "notes.txt"), "w").close()
        for data_dir in (os.path.join(closed, "data"), link, foreign):
            with self.subTest(data_dir=data_dir):
                proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir", data_dir],
                                               cwd=tmp, env=self.env())
                self.addCleanup(stop_serve, proc)
                self.assertEqual(proc.wait(30), 1, text)
                self.assertIn("www-data cannot reach %s" % data_dir, text)
        self.assertEqual(os.listdir(closed), ["linked"])
        self.assertEqual(os.listdir(os.path.join(closed, "linked")), [])
        self.assertEqual(os.listdir(foreign), ["notes.txt"])
        # its own directory, given as ".", is made www-data's and serves
        own = os.path.join(tmp, "own")
        os.mkdir(own, 0o700)
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir", "."],
                                       cwd=own, env=self.env())
        self.addCleanup(stop_serve, proc)
        self.assertIn("listening on", text)
        stop_serve(proc)

    def test_a_spool_directory_that_is_missing_is_refused(self):
        tmp = self.tmp()
        env = dict(self.env(), FILES_API_SPOOL_DIR=os.path.join(tmp, "nowhere"))
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir",
                                        os.path.join(tmp, "data")], cwd=tmp, env=env)
        self.addCleanup(stop_serve, proc)
        self.assertEqual(proc.wait(30), 1, text)
        self.assertIn("nowhere is not a writable directory", text)
        self.assertFalse(os.path.exists(os.path.join(tmp, "data")), "made before the refusal")

    @unittest.skipIf(WEB_SERVER_SPAWNS, "the web server supervises the workers")
    def test_workers_do_not_outlive_a_multiwatch_killed_outright(self):
        stack = Stack(workers=3, name="orphans").start()
        self.addCleanup(stack.stop)
        self.assertEqual(len(stack.pool_groups), 1, "the pool has a process group of its own")
        pool = next(iter(stack.pool_groups))  # spawn-fcgi -n execs multiwatch: its pid
        with open("/proc/%d/comm" % pool) as f:
            self.assertEqual(f.read().strip(), "multiwatch")
        os.kill(pool, signal.SIGKILL)
        self.assertEqual(stack.proc.wait(30), 1)
        self.assertIn("a component exited; stopping", stack.log_text())
        self.assertTrue(wait_for(lambda: not group_alive(pool), 10), "workers left running")

    def test_nothing_outlives_serve_sh_killed_outright(self):
        # SIGKILL to serve.sh alone (a supervisor's, the OOM killer): the web
        # server (in its group) and the pool (in its own) go too, by their
        # parent-death signal.
        stack = Stack(workers=2, name="serve-killed").start()
        self.addCleanup(stack.stop)
        run_dirs = serve_run_dirs(stack.port)
        # (a serve.sh killed outright cannot remove its run directory: a later
        # test given the same port would take it for its own)
        self.addCleanup(lambda: [shutil.rmtree(d, True) for d in run_dirs])
        os.kill(stack.proc.pid, signal.SIGKILL)
        stack.proc.wait(30)
        self.assertTrue(wait_for(lambda: not group_alive(stack.proc.pid), 10),
                        "the web server outlived serve.sh: %s" % group_members(stack.proc.pid))
        for pool in stack.pool_groups:
            self.assertTrue(wait_for(lambda: not group_alive(pool), 10),
                            "the pool outlived serve.sh: %s" % group_members(pool))

    def test_gc_started_last_does_not_outlive_serve_sh_killed_outright(self):
        # gc starts just before "listening": killed then, serve.sh died before
        # gc's setpriv had armed its parent-death signal, which then never
        # came (gc ran on, alone, for good). A slow setpriv for gc shows it.
        tmp = self.tmp()
        data = os.path.join(tmp, "data")
        _, env = self.with_shim(tmp, "setpriv", 'case "$*" in *" gc --every "*) sleep 1 ;; esac\n'
                                'exec /usr/bin/setpriv "$@"\n')
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir", data,
                                        "--workers", "1"], cwd=tmp, env=env)
        self.addCleanup(stop_serve, proc)
        self.addCleanup(lambda: subprocess.run(["pkill", "-KILL", "-f", data], check=False))
        self.assertIn("listening on", text)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        self.assertTrue(wait_for(lambda: not processes_naming(data), 10), processes_naming(data))

    def with_shim(self, tmp, program, script):
        """self.env() with a bash script named program first in PATH."""
        shim = os.path.join(tmp, "shim")
        os.makedirs(shim, exist_ok=True)
        with open(os.path.join(shim, program), "w") as f:
            f.write("#!/bin/bash\n" + script)
        os.chmod(os.path.join(shim, program), 0o755)
        return shim, dict(self.env(), PATH=shim + ":" + os.environ["PATH"])

    def start_in_background(self, port, data_dir, env=None):
        """serve.sh started as `serve.sh ... &` by a non-interactive shell (so
        with SIGINT ignored at entry): (that shell, serve.sh's pid)."""
        shell = subprocess.Popen(
            ["bash", "-c", '"$0" --port %d --data-dir %s >/dev/null 2>&1 & echo $!; wait'
             % (port, data_dir), str(SERVE)], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
            env=dict(env or self.env(), FILES_API_BIN=str(BIN_DIR)), start_new_session=True)
        # (the shell's group holds serve.sh and its web server; the pool goes
        # with serve.sh by its parent-death signal)
        self.addCleanup(lambda: shell.poll() is None and os.killpg(shell.pid, 9))
        return shell, int(shell.stdout.readline())

    @unittest.skipIf(WEB_SERVER_SPAWNS, "the web server supervises the workers")
    def test_a_stop_the_pool_misses_is_sent_again(self):
        # multiwatch can miss a stop (a worker it is restarting just then):
        # serve.sh tells it again, with SIGTERM, until it is gone. A pool
        # that ignores SIGINT stands for one that missed it.
        tmp = self.tmp()
        data = os.path.join(tmp, "data")
        _, env = self.with_shim(tmp, "spawn-fcgi", "trap '' INT\n"
                                "trap 'kill -TERM $child; wait $child; exit' TERM\n"
                                '/usr/bin/spawn-fcgi "$@" &\nchild=$!\nwait $child\n')
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir", data,
                                        "--workers", "1"], cwd=tmp, env=env)
        self.addCleanup(stop_serve, proc)
        self.assertIn("listening on", text)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0)
        self.assertTrue(wait_for(lambda: not processes_naming(data), 10),
                        processes_naming(data))

    @unittest.skipIf(WEB_SERVER_SPAWNS, "the web server starts the workers")
    def test_the_web_server_starts_once_the_pools_socket_is_there(self):
        # lighttpd started before the socket was made took the backend for
        # down and answered 503 for 3 s: a start bounded by 2 s failed.
        tmp = self.tmp()
        _, env = self.with_shim(tmp, "spawn-fcgi", 'sleep 0.5\nexec /usr/bin/spawn-fcgi "$@"\n')
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir",
                                        os.path.join(tmp, "data"), "--workers", "1",
                                        "--start-timeout", "2"], cwd=tmp, env=env)
        self.addCleanup(stop_serve, proc)
        self.assertIn("listening on", text)

    @unittest.skipIf(WEB_SERVER_SPAWNS, "the web server starts the workers")
    def test_a_pool_that_never_makes_its_socket_is_a_failed_start(self):
        tmp = self.tmp()
        _, env = self.with_shim(tmp, "spawn-fcgi", "exit 1\n")
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir",
                                        os.path.join(tmp, "data")], cwd=tmp, env=env)
        self.addCleanup(stop_serve, proc)
        self.assertEqual(proc.wait(10), 1, text)
        self.assertIn("serve.sh: the worker pool did not start", text)

    @unittest.skipUnless((os.environ.get("FILES_API_SERVER") or "").startswith("apache"),
                         "Apache's log goes through a pipe of serve.sh's")
    def test_a_process_that_keeps_apaches_log_open_holds_up_the_stop_5_s_at_most(self):
        tmp = self.tmp()
        _, env = self.with_shim(tmp, "apache2", "sleep 60 &\nexec /usr/sbin/apache2 \"$@\"\n")
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir",
                                        os.path.join(tmp, "data"), "--workers", "1"],
                                       cwd=tmp, env=env)
        self.addCleanup(stop_serve, proc)
        # (the sleep outlives serve.sh: run first)
        self.addCleanup(lambda: group_alive(proc.pid) and os.killpg(proc.pid, signal.SIGKILL))
        self.assertIn("listening on", text)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(20), 0)

    def test_a_stop_while_a_part_is_still_starting_is_not_lost(self):
        # A part forked but not yet exec'd ignores SIGINT (bash's background
        # jobs do, until env resets it): serve.sh must wait for that exec
        # before it sends its stop signal, or the part never stops. A slow
        # `env` first in PATH holds every part in that state for a second.
        tmp = self.tmp()
        shim, env = self.with_shim(tmp, "env", 'sleep 1\nexec /usr/bin/env "$@"\n')
        port = free_port()
        shell, pid = self.start_in_background(port, tmp + "/data", env)

        def web_server_starting():
            return [c for c in processes_naming("--pdeathsig TERM lighttpd")
                    if c.startswith("/bin/bash %s/env" % shim)]
        self.assertTrue(wait_for(web_server_starting, 30), "the web server was not started")
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(wait_for(lambda: shell.poll() is not None, 30), "still running")
        self.assertTrue(wait_for(lambda: not group_alive(shell.pid), 10), "parts left")
        self.assertTrue(wait_for(lambda: not processes_naming(tmp + "/data"), 10),
                        processes_naming(tmp + "/data"))
        self.assertEqual(serve_run_dirs(port), [])

    def test_a_sigint_while_it_waits_for_a_command_stops_it(self):
        # Without a trap yet, bash that gets SIGINT while it waits for a
        # command (here a slow chmod of the data directory) waits, then goes
        # on starting everything: the traps must be set first.
        tmp = self.tmp()
        shim, env = self.with_shim(tmp, "chmod", 'sleep 1\nexec /bin/chmod "$@"\n')
        port = free_port()
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            [str(SERVE), "--port", str(port), "--data-dir", tmp + "/data"], cwd=tmp,
            env=dict(env, FILES_API_BIN=str(BIN_DIR)),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(stop_serve, proc)
        self.assertTrue(wait_for(lambda: processes_naming("%s/chmod 0700 %s/data" % (shim, tmp)),
                                 30), "the data directory's chmod never ran")
        proc.send_signal(signal.SIGINT)  # to serve.sh alone, not its group
        self.assertTrue(wait_for(lambda: proc.poll() is not None, 15), "still running")
        log.seek(0)
        self.assertNotIn("listening on", log.read().decode(errors="replace"))
        self.assertTrue(wait_for(lambda: not processes_naming(tmp + "/data"), 10),
                        processes_naming(tmp + "/data"))
        self.assertEqual(serve_run_dirs(port), [])

    def test_a_part_that_dies_before_its_exec_is_a_failed_start(self):
        # The web server's `env` shim exits instead of exec'ing: a zombie
        # whose command stays "env", which serve.sh must not wait on.
        tmp = self.tmp()
        _, env = self.with_shim(
            tmp, "env", 'case "$*" in *"lighttpd -D"*|*"nginx -c"*|*"apache2 -f"*) exit 127 ;;\n'
            'esac\nexec /usr/bin/env "$@"\n')
        started = time.monotonic()
        proc, text = serve_until_ready(["--port", str(free_port()), "--data-dir", tmp + "/data"],
                                       cwd=tmp, env=env)
        self.addCleanup(stop_serve, proc)
        self.assertEqual(proc.wait(30), 1, text)
        self.assertIn("serve.sh: failed to start", text)
        self.assertLess(time.monotonic() - started, 15, "it waited for an answer that never came")
        self.assertTrue(wait_for(lambda: not processes_naming(tmp + "/data"), 10),
                        processes_naming(tmp + "/data"))

    def test_a_stop_at_any_moment_of_the_start_stops_everything(self):
        # Started in the background by a non-interactive shell (SIGINT ignored
        # at entry), signalled while it is still starting its parts.
        tmp = self.tmp()
        for delay, signum in ((0.05, signal.SIGTERM), (0.15, signal.SIGTERM),
                              (0.3, signal.SIGTERM), (0.5, signal.SIGINT), (5, signal.SIGINT)):
            with self.subTest(delay=delay, signal=signum):
                port = free_port()
                shell, pid = self.start_in_background(port, "%s/d%d" % (tmp, port))
                time.sleep(delay)
                os.kill(pid, signum)
                self.assertTrue(wait_for(lambda: shell.poll() is not None, 30), "still running")
                self.assertTrue(wait_for(lambda: not group_alive(shell.pid), 10), "parts left")
                data = "%s/d%d" % (tmp, port)  # the pool's group is its own: by its arguments
                self.assertTrue(wait_for(lambda: not processes_naming(data), 10),
                                processes_naming(data))
                self.assertEqual(serve_run_dirs(port), [])
