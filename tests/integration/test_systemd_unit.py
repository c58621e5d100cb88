"""The worker pool as conf/systemd/files-api.service starts it: its ExecStart,
run as root the way systemd runs it, with a scratch socket and data directory
and `nobody` standing in for the files-api user. The socket must belong to the
web server's group (www-data) with mode 0660, the workers must run as the
unprivileged user, www-data must get answers through the socket and another
user must not be able to connect."""

import os
import pwd
import grp
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BIN_DIR, REPO, terminate
from test_fastcgi_close import request_bytes

UNIT = os.path.join(REPO, "conf", "systemd", "files-api.service")
SYSTEM_PYTHON = "/usr/bin/python3"
USER, GROUP = "nobody", "nogroup"

# Run as another user: sends a FastCGI request (hex in argv[2]) to the socket
# (argv[1]) and prints the hex of everything that comes back, or the error.
CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("refused", e.errno)
    sys.exit(0)
s.sendall(bytes.fromhex(sys.argv[2]))
out = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
print(out.hex())
"""


def unit_settings():
    """The unit's settings (continuation lines joined), by name."""
    with open(UNIT) as f:
        text = f.read().replace("\\\n", " ")
    return dict(line.split("=", 1) for line in text.splitlines()
                if "=" in line and not line.startswith("#"))


def as_standin(name):
    return {"files-api": USER}.get(name, name)


def can_reach(path, user):
    """True if user can traverse to path and execute it."""
    res = subprocess.run(["setpriv", "--reuid=" + user, "--regid=" + GROUP, "--clear-groups",
                          "test", "-x", path])
    return res.returncode == 0


@unittest.skipIf(os.environ.get("FILES_API_SERVER", "lighttpd") != "lighttpd",
                 "no web server in this test: it runs once, with the default server's suite")
class SystemdUnitTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("the unit starts spawn-fcgi as root")
        for tool in ("spawn-fcgi", "multiwatch", "setpriv"):
            if not shutil.which(tool):
                self.skipTest(tool + " is not installed")
        try:
            pwd.getpwnam(USER), pwd.getpwnam("www-data"), grp.getgrnam(GROUP)
        except KeyError:
            self.skipTest("the users nobody and www-data are needed")
        if not os.path.exists(SYSTEM_PYTHON):
            self.skipTest(SYSTEM_PYTHON + " is needed to connect as www-data")
        worker = str(BIN_DIR / "files-fcgi")
        if not can_reach(worker, USER):
            self.skipTest(worker + " cannot be run by " + USER)
        self.tmp = tempfile.mkdtemp(prefix="files-api-unit.")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        os.chmod(self.tmp, 0o755)
        run_dir = os.path.join(self.tmp, "run")  # RuntimeDirectory
        os.mkdir(run_dir)
        os.chmod(run_dir, int(unit_settings().get("RuntimeDirectoryMode", "0755"), 8))
        self.data = os.path.join(self.tmp, "data")
        os.mkdir(self.data, 0o700)
        os.chown(self.data, pwd.getpwnam(USER).pw_uid, grp.getgrnam(GROUP).gr_gid)
        self.socket_path = os.path.join(run_dir, "fcgi.sock")

    def start(self):
        settings = unit_settings()
        words = shlex.split(settings["ExecStart"])
        self.assertEqual(words[0], "/usr/bin/spawn-fcgi")
        args = []
        if "User" in settings:  # systemd drops to it first, and gives it the runtime directory
            group = settings.get("Group", settings["User"])
            os.chown(os.path.dirname(self.socket_path), pwd.getpwnam(USER).pw_uid,
                     grp.getgrnam(GROUP).gr_gid)
            args += ["setpriv", "--reuid=" + as_standin(settings["User"]),
                     "--regid=" + (GROUP if group == "files-api" else group), "--clear-groups"]
        args.append("spawn-fcgi")
        for prev, word in zip(words, words[1:]):
            if word == "/run/files-api/fcgi.sock":
                word = self.socket_path
            elif word == "/usr/local/bin/files-fcgi":
                word = str(BIN_DIR / "files-fcgi")
            elif prev in ("-u", "-U") and word == "files-api":
                word = USER
            elif prev == "-g" and word == "files-api":
                word = GROUP
            elif prev == "-f":
                word = "1"  # one worker is enough here
            args.append(word)
        self.assertIn(self.socket_path, args)
        self.assertIn(str(BIN_DIR / "files-fcgi"), args)
        env = dict(os.environ, FILES_API_DATA_DIR=self.data)
        env.pop("FILES_API_CONFIG", None)
        pool = subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL,
                                preexec_fn=lambda: os.umask(0o077))  # UMask=0077
        self.addCleanup(terminate, pool, 30)
        # spawn-fcgi binds the socket, then gives it away, drops to the user and
        # runs multiwatch, which starts the worker: wait for all of it.
        deadline = time.monotonic() + 30
        while not (self.started(pool) and subprocess.run(
                ["pgrep", "-P", str(pool.pid)], capture_output=True).stdout):
            if time.monotonic() > deadline or pool.poll() is not None:
                self.fail("the pool did not start")
            time.sleep(0.05)
        return pool

    def started(self, pool):
        try:
            return os.path.basename(os.readlink("/proc/%d/exe" % pool.pid)) == "multiwatch"
        except OSError:
            return False


    def ask_as(self, user, group):
        request = request_bytes({"REQUEST_METHOD": "GET", "REQUEST_URI": "/healthz",
                                 "SCRIPT_NAME": "", "PATH_INFO": "/healthz", "QUERY_STRING": "",
                                 "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_LENGTH": "0"})
        res = subprocess.run(["setpriv", "--reuid=" + user, "--regid=" + group, "--clear-groups",
                              SYSTEM_PYTHON, "-c", CLIENT, self.socket_path, request.hex()],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout.strip()

    def test_socket_is_the_web_servers_and_workers_are_unprivileged(self):
        pool = self.start()
        st = os.stat(self.socket_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(pwd.getpwuid(st.st_uid).pw_name, USER)
        self.assertEqual(grp.getgrgid(st.st_gid).gr_name, "www-data")
        # multiwatch (spawn-fcgi execs it) and its worker run as the user.
        self.assertEqual(os.stat("/proc/%d" % pool.pid).st_uid, pwd.getpwnam(USER).pw_uid)
        answer = self.ask_as("www-data", "www-data")
        self.assertTrue(answer and not answer.startswith("refused"), answer)
        self.assertIn(b"Status: 200", bytes.fromhex(answer))
        self.assertEqual(self.ask_as("daemon", "daemon"), "refused 13")  # EACCES
        workers = subprocess.run(["pgrep", "-P", str(pool.pid)], capture_output=True,
                                 text=True).stdout.split()  # (start waited for it)
        self.assertEqual(len(workers), 1)
        self.assertEqual(os.stat("/proc/" + workers[0]).st_uid, pwd.getpwnam(USER).pw_uid)
        # What the worker made in the data directory is the user's alone.
        db = os.path.join(self.data, "files.db")
        self.assertEqual(pwd.getpwuid(os.stat(db).st_uid).pw_name, USER)
        self.assertEqual(stat.S_IMODE(os.stat(db).st_mode) & 0o077, 0)


if __name__ == "__main__":
    unittest.main()
