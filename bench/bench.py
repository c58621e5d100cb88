#!/usr/bin/env python3
"""The benchmark driver behind bench/run.sh (see docs/bench.md).

Starts every stack it needs on 127.0.0.1 (free ports, temporary directories),
runs each case several times interleaved with its baseline, stops everything,
and writes the raw samples as JSON for bench/report.py.

Stacks (all with the same lighttpd configuration and worker count, because
they are all started by scripts/serve.sh itself or derived from the
configuration it generated; the stream stack only lacks x-sendfile):
  files     serve.sh + files-fcgi as serve.sh starts them by default
            (downloads handed to lighttpd with X-Sendfile)
  stream    serve.sh --download-mode stream (the workers send downloads),
            same data dir
  sink      serve.sh with bench/sink.c as the worker
  static    a lighttpd from serve.sh's config with document-root = DATA/files
  list1k / list1m  serve.sh on databases filled with sqlite3 directly
  mem       serve.sh --workers 1, fresh per memory sample

Python standard library only; the load generators are curl and wrk.
"""

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SERVE = os.path.join(REPO, "scripts", "serve.sh")
MAX_FILE_BYTES = 110_100_480  # 105 MiB, the SPEC's limit and serve.sh's default

_children = []  # every Popen we started, stopped at the end whatever happens


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def system_busy_seconds():
    """CPU seconds the whole machine has spent busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid):
    """CPU seconds of pid and everything below it: live processes' own time plus
    what their reaped children used (cutime/cstime), so nothing is counted twice."""
    total = 0
    for p in [pid] + descendants(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += sum(int(x) for x in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- processes

def children_of(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after ')'
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        out += kids
        todo += kids
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def proc_status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (0 if it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_proc(proc, group=True, timeout=20):
    """SIGTERM the process (serve.sh stops what it started), then, as a last
    resort, SIGKILL its process group (start_new_session made it ours alone)."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    if group:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc in _children:
        _children.remove(proc)


def stop_all():
    for proc in list(reversed(_children)):
        try:
            stop_proc(proc)
        except Exception as e:  # best effort: keep stopping the others
            log("stopping %d: %s" % (proc.pid, e))


class Serve:
    """scripts/serve.sh in the background on a free port."""

    def __init__(self, name, tmp, bin_dir, data_dir, workers, config=None, serve_args=()):
        self.name, self.bin_dir, self.data_dir = name, bin_dir, data_dir
        self.workers, self.config, self.serve_args = workers, config, list(serve_args)
        self.log_path = os.path.join(tmp, "%s.log" % name)
        self.proc = None
        self.port = None

    def start(self):
        for _ in range(3):  # the free port can be taken before lighttpd binds it
            self.port = free_port()
            cmd = [SERVE, "--port", str(self.port), "--data-dir", self.data_dir,
                   "--workers", str(self.workers)]
            if self.config:
                cmd += ["--config", self.config]
            cmd += self.serve_args
            # serve.sh's own settings only: no FILES_API_CONFIG or FILES_API_<KEY>
            env = {k: v for k, v in os.environ.items() if not k.startswith("FILES_API_")}
            env["FILES_API_BIN"] = self.bin_dir
            logf = open(self.log_path, "ab")
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, cwd=REPO,
                                         start_new_session=True)
            logf.close()
            _children.append(self.proc)
            want = "listening on http://127.0.0.1:%d" % self.port
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if want in self.log_text():
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            text = self.log_text()
            stop_proc(self.proc)
            if "Address already in use" not in text:
                raise RuntimeError("%s: serve.sh did not start:\n%s" % (self.name, text[-3000:]))
        raise RuntimeError("%s: no free port" % self.name)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def _pids(self, name):
        return [p for p in descendants(self.proc.pid) if comm(p) == name]

    def worker_pids(self):
        return self._pids("files-fcgi")

    def cpu(self):
        """CPU seconds used so far by (the workers, lighttpd): a figure that
        other load on the machine disturbs much less than wall time."""
        pids = descendants(self.proc.pid)
        return (sum(cpu_seconds(p) for p in pids if comm(p) == "files-fcgi"),
                sum(cpu_seconds(p) for p in pids if comm(p) == "lighttpd"))

    def lighttpd_conf(self):
        """The text of the lighttpd configuration serve.sh generated."""
        (pid,) = self._pids("lighttpd")
        args = cmdline(pid)
        with open(args[args.index("-f") + 1]) as f:
            return f.read()

    def stop(self):
        if self.proc is not None:
            stop_proc(self.proc)
            self.proc = None


class Lighttpd:
    """A lighttpd of our own, from a configuration derived from serve.sh's."""

    def __init__(self, name, tmp, conf_text, port):
        self.name, self.port = name, port
        self.conf = os.path.join(tmp, "%s-lighttpd.conf" % name)
        self.log_path = os.path.join(tmp, "%s.log" % name)
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.proc = None

    def start(self, probe_path="/"):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["lighttpd", "-D", "-f", self.conf], stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        logf.close()
        _children.append(self.proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        with open(self.log_path, "rb") as f:
            raise RuntimeError("%s: lighttpd did not start: %s" % (self.name, f.read()[-2000:]))

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc is not None:
            stop_proc(self.proc)
            self.proc = None


def derive_conf(text, port, docroot=None, fastcgi_off=False):
    """serve.sh's lighttpd configuration with the fewest changes: another port,
    and a document root with the FastCGI mapping moved out of the way (static
    files)."""
    def sub(pattern, repl, s):
        out, n = re.subn(pattern, repl, s, count=1, flags=re.M)
        if n != 1:
            raise RuntimeError("serve.sh's lighttpd config changed: no match for %r" % pattern)
        return out

    text = sub(r"^server\.port\s*=\s*\d+\s*$", "server.port = %d" % port, text)
    if docroot:
        text = sub(r'^server\.document-root\s*=\s*".*"\s*$',
                   'server.document-root = "%s"' % docroot, text)
    if fastcgi_off:  # keep the module and the entry, map it to a path never requested
        text = sub(r'fastcgi\.server\s*=\s*\(\s*"/"\s*=>',
                   'fastcgi.server = ("/__no_fastcgi__/" =>', text)
    return text


# ---------------------------------------------------------------- clients

def curl(args, timeout=600):
    """Runs curl with -w; returns (http_code, seconds, bytes_downloaded, body_text)."""
    fmt = "\n%{http_code} %{time_total} %{size_download}"
    res = subprocess.run(["curl", "-sS", "-w", fmt] + args, capture_output=True, text=True,
                         timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError("curl %s: %s" % (" ".join(args), res.stderr))
    body, _, tail = res.stdout.rpartition("\n")
    code, seconds, size = tail.split()
    return int(code), float(seconds), int(float(size)), body


def upload_args(base, key, path):
    args = ["-F", "purpose=batch", "-F", "file=@%s;filename=requests.jsonl" % path,
            base + "/v1/files"]
    return (["-H", "Authorization: Bearer " + key] if key else []) + args


def upload(base, key, path, expect_id=True):
    code, seconds, _, body = curl(upload_args(base, key, path))
    if code != 200:
        raise RuntimeError("upload to %s: HTTP %d %s" % (base, code, body[:500]))
    return seconds, (json.loads(body)["id"] if expect_id else None)


def api(port, key, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        h = {"Authorization": "Bearer " + key}
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def delete(port, key, file_id):
    status, body = api(port, key, "DELETE", "/v1/files/" + file_id)
    if status != 200:
        raise RuntimeError("DELETE %s: %d %s" % (file_id, status, body[:300]))


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url, key=None, connections=16, threads=2, seconds=3):
    """One wrk run; returns {rps, p50, p99, avg} (latencies in ms). Fails on any
    non-2xx answer or socket error, so a broken server never looks fast."""
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--latency"]
    if key:
        cmd += ["-H", "Authorization: Bearer " + key]
    res = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60)
    out = res.stdout
    if res.returncode != 0 or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError("wrk %s failed:\n%s%s" % (url, out, res.stderr))
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1)),
        "p50": _ms(lat["50"]),
        "p99": _ms(lat["99"]),
        "avg": _ms(re.search(r"^\s+Latency\s+(\S+)", out, re.M).group(1)),
    }


def multipart_body(content, boundary="benchboundary7d1f"):
    return boundary, (
        b"--%s\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
        b"--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"small.jsonl\"\r\n"
        b"Content-Type: application/jsonl\r\n\r\n" % (boundary.encode(), boundary.encode())
        + content + b"\r\n--%s--\r\n" % boundary.encode())


def parallel(items, concurrency, fn):
    """Runs fn(conn, item) over items on `concurrency` keep-alive connections
    (fn gets a per-thread state dict); returns the wall time in seconds."""
    lock = threading.Lock()
    todo = list(items)
    errors = []

    def run():
        state = {}
        while True:
            with lock:
                if not todo or errors:
                    return
                item = todo.pop()
            try:
                fn(state, item)
            except Exception as e:  # reported after the run
                with lock:
                    errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return elapsed


def keepalive_request(state, port, method, path, key, body=None, headers=None):
    conn = state.get("conn")
    if conn is None:
        conn = state["conn"] = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    h = {"Authorization": "Bearer " + key} if key else {}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError("%s %s: %d %s" % (method, path, resp.status, data[:300]))
    return data


# ---------------------------------------------------------------- setup

def filesctl(bin_dir, data_dir, *args):
    res = subprocess.run([os.path.join(bin_dir, "filesctl"), "--data-dir", data_dir] + list(args),
                         capture_output=True, text=True, check=True)
    return res.stdout.strip()


def new_key(bin_dir, data_dir, account):
    return filesctl(bin_dir, data_dir, "keys", "create", "--account", account, "--scopes", "*")


def sqlite(data_dir, sql):
    res = subprocess.run(["sqlite3", os.path.join(data_dir, "files.db")], input=sql, text=True,
                         capture_output=True)
    if res.returncode != 0:
        raise RuntimeError("sqlite3: %s\n%s" % (res.stderr.strip(), sql))
    return res.stdout


# Values for the files table's columns (schema: src/db.c). Columns the schema
# adds later get a filler by type, so the fill keeps working as it evolves.
FILL_VALUES = {
    "id": "'file_' || hex(randomblob(12))",
    "account_id": "(SELECT id FROM accounts WHERE name = '%(account)s')",
    "purpose": "'batch'",
    "filename": "'requests-' || x || '.jsonl'",
    "bytes": "1000 + x %% 100000",
    "created_at": "1700000000 + x / 50",
    "expires_at": "NULL",
    "deleted_at": "NULL",
}


def fill_files(data_dir, account, count):
    """count live file rows for account, straight into SQLite in one transaction
    (content files are not needed for listing). Ids are file_ + 24 random hex
    characters, as random as real ones for the id index."""
    columns = []
    for line in sqlite(data_dir, "PRAGMA table_info(files);").splitlines():
        _cid, name, ctype, notnull, default, pk = line.split("|")[:6]
        if name in FILL_VALUES:
            columns.append((name, FILL_VALUES[name]))
        elif pk == "1" or (notnull == "0") or default:
            continue  # seq (INTEGER PRIMARY KEY), nullable or defaulted columns
        elif "INT" in ctype.upper():
            columns.append((name, "0"))
        else:  # e.g. the content hash
            columns.append((name, "lower(hex(randomblob(16)))"))
    sql = """
PRAGMA cache_size = -262144;
BEGIN;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < %d)
INSERT INTO files (%s) SELECT %s FROM n;
COMMIT;
""" % (count, ", ".join(c for c, _ in columns),
       ", ".join(v for _, v in columns) % {"account": account})
    sqlite(data_dir, sql)


def middle_id(data_dir, account, count):
    """The id at the middle of the account's files (a cursor for a deep page)."""
    return sqlite(data_dir, "SELECT id FROM files WHERE account_id = (SELECT id FROM accounts "
                            "WHERE name = '%s') ORDER BY seq LIMIT 1 OFFSET %d;"
                            % (account, count // 2)).strip()


# ---------------------------------------------------------------- the run

class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = args.tmp
        self.bin = os.path.abspath(args.bin_dir)
        self.rounds = args.rounds
        self.samples = {}  # case -> variant -> [values]
        self.notes = {}  # case -> free text
        self.load = {}  # case -> how busy the machine was meanwhile
        self.binary_at_start = self.binary_stamp()
        self.binary_info = "%s (built %s)" % (
            os.path.join(self.bin, "files-fcgi"),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.binary_at_start[1] / 1e9)))

    def binary_stamp(self):
        st = os.stat(os.path.join(self.bin, "files-fcgi"))
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def add(self, case, variant, value):
        self.samples.setdefault(case, {}).setdefault(variant, []).append(value)

    def phase(self, case, fn):
        """Runs a case; records how busy the machine was meanwhile, split into the
        bench's own processes and everything else (the noise)."""
        before = loadavg()
        busy0, own0 = system_busy_seconds(), tree_cpu_seconds(os.getpid())
        t0 = time.monotonic()
        log("%s ..." % case)
        fn()
        wall = time.monotonic() - t0
        busy1, own1 = system_busy_seconds(), tree_cpu_seconds(os.getpid())
        self.load[case] = {"load_before": before, "load_after": loadavg(),
                           "seconds": round(wall, 1),
                           "bench_cpus": round((own1 - own0) / wall, 2),
                           "other_cpus": round(max(0.0, (busy1 - busy0) - (own1 - own0)) / wall,
                                               2)}
        log("%s done in %.0f s: %s" % (case, time.monotonic() - t0,
                                       {k: [round(x, 4) for x in v]
                                        for k, v in self.samples.get(case, {}).items()}))

    def path(self, name):
        return os.path.join(self.tmp, name)

    def generate(self):
        sizes = {"f100": 100_000_000, "f10": 10_000_000, "f1mib": 1 << 20,
                 "f105mib": MAX_FILE_BYTES}
        self.files = {}
        for seed, (name, size) in enumerate(sorted(sizes.items()), start=1):
            out = self.path(name + ".jsonl")
            subprocess.run([sys.executable, os.path.join(HERE, "gen_jsonl.py"), "--bytes",
                            str(size), "--seed", str(seed), "--out", out], check=True)
            self.files[name] = out
        out = self.path("f105mib_minimal.jsonl")  # 105 MiB of the shortest lines
        subprocess.run([sys.executable, os.path.join(HERE, "gen_jsonl.py"), "--bytes",
                        str(MAX_FILE_BYTES), "--minimal", "--out", out], check=True)
        self.files["f105mib_minimal"] = out
        subprocess.run([sys.executable, os.path.join(HERE, "gen_jsonl.py"), "--bytes", "4096",
                        "--seed", "9", "--out", self.path("small.jsonl")], check=True)
        with open(self.path("small.jsonl"), "rb") as f:
            self.small = f.read()

    def start_stacks(self):
        a = self.args
        self.data = self.path("data")
        os.makedirs(self.data)
        self.key = new_key(self.bin, self.data, "bench")
        self.files_stack = Serve("files", self.tmp, self.bin, self.data, a.workers).start()

        # The sink: serve.sh itself, with the sink as bin/files-fcgi of a scratch bin dir.
        sink_bin = self.path("sinkbin")
        os.makedirs(sink_bin)
        os.symlink(os.path.abspath(a.sink), os.path.join(sink_bin, "files-fcgi"))
        os.symlink(os.path.join(self.bin, "filesctl"), os.path.join(sink_bin, "filesctl"))
        self.sink = Serve("sink", self.tmp, sink_bin, self.path("sinkdata"), a.workers).start()

        # Downloads: serve.sh's default hands them to lighttpd (X-Sendfile);
        # the stream stack has the workers send them, on the same data dir.
        if '"x-sendfile"' not in self.files_stack.lighttpd_conf():
            raise RuntimeError("serve.sh no longer enables x-sendfile by default")
        self.stream_stack = Serve("stream", self.tmp, self.bin, self.data, a.workers,
                                  serve_args=["--download-mode", "stream"]).start()
        files_root = os.path.join(os.path.realpath(self.data), "files") + "/"

        # Static: the same lighttpd config, document root = DATA/files.
        port = free_port()
        self.static = Lighttpd("static", self.tmp,
                               derive_conf(self.files_stack.lighttpd_conf(), port,
                                           docroot=files_root, fastcgi_off=True), port).start()
        self.lighttpd_conf_text = self.files_stack.lighttpd_conf()

        # Listing: 1,000 and 1,000,000 files in the account.
        self.lists = {}
        for name, count in (("1k", 1000), ("1m", 1_000_000)):
            data = self.path("list" + name)
            os.makedirs(data)
            key = new_key(self.bin, data, "lister")
            t0 = time.monotonic()
            fill_files(data, "lister", count)
            log("filled %d rows in %.1f s" % (count, time.monotonic() - t0))
            stack = Serve("list" + name, self.tmp, self.bin, data, a.workers).start()
            self.lists[name] = (stack, key, middle_id(data, "lister", count))

    # -- cases --

    def case_upload(self):
        ids = []
        for r in range(self.rounds):
            order = ("files", "sink") if r % 2 == 0 else ("sink", "files")
            for who in order:
                stack = self.files_stack if who == "files" else self.sink
                cpu0 = stack.cpu()
                if who == "files":
                    s, fid = upload(self.files_stack.base, self.key, self.files["f100"])
                    ids.append(fid)
                else:
                    s, _ = upload(self.sink.base, None, self.files["f100"], expect_id=False)
                cpu1 = stack.cpu()
                self.add("upload100", who, s)
                self.add("upload100", who + "_worker_cpu", cpu1[0] - cpu0[0])
                self.add("upload100", who + "_lighttpd_cpu", cpu1[1] - cpu0[1])
        self.download_id = ids[0]  # kept for the download case
        for fid in ids[1:]:
            delete(self.files_stack.port, self.key, fid)

    def _concurrent(self, base, key, n):
        procs = []
        t0 = time.perf_counter()
        for _ in range(n):
            args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}"] + upload_args(
                base, key, self.files["f10"])
            procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, text=True))
        outs = [p.communicate()[0] for p in procs]
        elapsed = time.perf_counter() - t0
        ids = []
        for out in outs:
            body, _, code = out.rpartition("\n")
            if code != "200":
                raise RuntimeError("concurrent upload: HTTP %s %s" % (code, body[:300]))
            if key:
                ids.append(json.loads(body)["id"])
        return n * os.path.getsize(self.files["f10"]) / 1e6 / elapsed, ids

    def case_concurrent(self):
        for r in range(self.rounds):
            order = ("files", "sink") if r % 2 == 0 else ("sink", "files")
            for who in order:
                if who == "files":
                    mbps, ids = self._concurrent(self.files_stack.base, self.key, 8)
                    for fid in ids:
                        delete(self.files_stack.port, self.key, fid)
                else:
                    mbps, _ = self._concurrent(self.sink.base, None, 8)
                self.add("concurrent8x10", who, mbps)

    def _memory_once(self, size_name, bin_dir, tag):
        self.mem_runs = getattr(self, "mem_runs", 0) + 1
        data = self.path("mem%d" % self.mem_runs)
        os.makedirs(data)
        key = new_key(self.bin, data, "mem") if tag == "files" else None
        stack = Serve("mem-" + tag, self.tmp, bin_dir, data, 1).start()
        try:
            (pid,) = stack.worker_pids()
            before = proc_status_kib(pid, "VmHWM")
            upload(stack.base, key, self.files[size_name], expect_id=bool(key))
            pids = stack.worker_pids()
            if pids != [pid]:
                raise RuntimeError("memory: the worker changed during the upload (%s -> %s)"
                                   % (pid, pids))
            after = proc_status_kib(pid, "VmHWM")
        finally:
            stack.stop()
            subprocess.run(["rm", "-rf", data], check=False)
        return before / 1024.0, after / 1024.0

    def case_memory(self):
        sink_bin = self.path("sinkbin")
        for _ in range(max(2, self.rounds // 2)):
            for size in ("f1mib", "f105mib", "f105mib_minimal"):
                before, after = self._memory_once(size, self.bin, "files")
                self.add("memory", "files_" + size, after)
                self.add("memory", "files_idle", before)
        before, after = self._memory_once("f105mib", sink_bin, "sink")
        self.add("memory", "sink_f105mib", after)

    def case_download(self):
        fid = self.download_id
        shard = fid[-2:]
        urls = {
            "static": (self.static.base + "/%s/%s" % (shard, fid), None),
            "xsendfile": (self.files_stack.base + "/v1/files/%s/content" % fid, self.key),
            "stream": (self.stream_stack.base + "/v1/files/%s/content" % fid, self.key),
        }
        variants = list(urls)

        def get(v):
            url, key = urls[v]
            args = ["-o", "/dev/null", url]
            if key:
                args = ["-H", "Authorization: Bearer " + key] + args
            code, seconds, size, _ = curl(args)
            if code != 200 or size != 100_000_000:
                raise RuntimeError("download %s: HTTP %d, %d bytes" % (v, code, size))
            return seconds

        for v in variants:  # warm the page cache and the connections' code paths
            get(v)
        # The hand-off really happened: the worker sent headers only.
        sent = re.findall(r'path="/v1/files/%s/content" status=200 bytes=(\d+) ' % fid,
                          self.files_stack.log_text())
        if not sent or sent[-1] != "0":
            raise RuntimeError("download: the files stack's worker sent the content itself "
                               "(access log bytes=%s), not lighttpd" % (sent[-1:] or "?"))
        for r in range(2 * self.rounds + 1):  # short transfers: more rounds
            k = r % len(variants)
            for v in variants[k:] + variants[:k]:
                self.add("download100", v, 100.0 / get(v))  # MB/s

    def case_get(self):
        fid = self.download_id
        targets = {
            "meta": (self.files_stack.base + "/v1/files/" + fid, self.key),
            "sink": (self.sink.base + "/v1/files/" + fid, None),
            "list": (self.lists["1k"][0].base + "/v1/files?limit=20", self.lists["1k"][1]),
        }
        order = list(targets)
        for v in order:  # warm-up
            wrk(targets[v][0], targets[v][1], seconds=1)
        stacks = {"meta": self.files_stack, "sink": self.sink, "list": self.lists["1k"][0]}
        for r in range(self.rounds):
            k = r % len(order)
            for v in order[k:] + order[:k]:
                cpu0 = stacks[v].cpu()
                res = wrk(targets[v][0], targets[v][1], connections=16, threads=2,
                          seconds=self.args.wrk_seconds)
                cpu1 = stacks[v].cpu()
                self.add("get", v + "_worker_us", (cpu1[0] - cpu0[0]) / res["requests"] * 1e6)
                self.add("get", v + "_lighttpd_us", (cpu1[1] - cpu0[1]) / res["requests"] * 1e6)
                self.add("get", v + "_rps", res["rps"])
                self.add("get", v + "_p99", res["p99"])
                self.add("get", v + "_p50", res["p50"])

    def case_list_scale(self):
        targets = {}
        for name, (stack, key, mid) in self.lists.items():
            targets["first_" + name] = (stack.base + "/v1/files?limit=20", key)
            targets["deep_" + name] = (stack.base + "/v1/files?limit=20&after=" + mid, key)
        order = list(targets)
        for v in order:
            wrk(targets[v][0], targets[v][1], connections=1, threads=1, seconds=1)
        for r in range(self.rounds):
            k = r % len(order)
            for v in order[k:] + order[:k]:
                res = wrk(targets[v][0], targets[v][1], connections=1, threads=1,
                          seconds=self.args.wrk_seconds)
                self.add("list_scale", v + "_p50", res["p50"])
                self.add("list_scale", v + "_avg", res["avg"])

    def case_jsonl(self):
        # bench/jsonl_bench.c (another engineer's) interleaves the validator and
        # per-line cJSON_ParseWithLength over its own generated data (~1,100-byte
        # lines); we run it as is, and again on the upload case's 100 MB file
        # (~490-byte lines: more structure per byte, a harder case).
        self.run_jsonl_bench("jsonl", [str(self.args.jsonl_mb)])
        self.run_jsonl_bench("jsonl_upload_data", ["--file", self.files["f100"]])

    def run_jsonl_bench(self, case, data_args):
        res = subprocess.run([self.args.jsonl_bench] + data_args +
                             [str(max(self.rounds, 5))],
                             capture_output=True, text=True, check=True, timeout=900)
        self.notes[case] = res.stdout.strip()
        rounds = re.findall(r"^round \d+: jsonl ([\d.]+) GB/s, cJSON ([\d.]+) GB/s(.*)$",
                            res.stdout, re.M)
        if not rounds:
            raise RuntimeError("jsonl_bench printed no rounds:\n" + res.stdout)
        for ours, theirs, rest in rounds:
            self.add(case, "validator", float(ours))
            self.add(case, "cjson", float(theirs))
            # Newer jsonl_bench also prints GB/s by thread CPU time (less noise).
            cpu = re.search(r"cpu time: ([\d.]+), ([\d.]+)", rest)
            if cpu:
                self.add(case, "validator_cpu", float(cpu.group(1)))
                self.add(case, "cjson_cpu", float(cpu.group(2)))

    def case_delete(self):
        n = self.args.delete_count
        boundary, body = multipart_body(self.small)
        headers = {"Content-Type": "multipart/form-data; boundary=" + boundary}
        port = self.files_stack.port
        ids = []
        lock = threading.Lock()

        def up(state, _):
            data = keepalive_request(state, port, "POST", "/v1/files", self.key, body, headers)
            with lock:
                ids.append(json.loads(data)["id"])

        for r in range(self.rounds):
            ids.clear()
            t_up = parallel(range(n), self.args.workers, up)
            self.add("delete", "small_upload_rps", n / t_up)
            todo = list(ids)
            order = ("files", "sink") if r % 2 == 0 else ("sink", "files")
            for who in order:
                if who == "files":
                    t = parallel(todo, self.args.workers, lambda s, fid: keepalive_request(
                        s, port, "DELETE", "/v1/files/" + fid, self.key))
                else:
                    t = parallel(todo, self.args.workers, lambda s, fid: keepalive_request(
                        s, self.sink.port, "DELETE", "/v1/files/" + fid, None))
                self.add("delete", who, n / t)

    def run(self):
        t0 = time.monotonic()
        log("generating data ...")
        self.generate()
        log("starting stacks ...")
        self.start_stacks()
        cases = [
            ("upload100", self.case_upload),
            ("concurrent8x10", self.case_concurrent),
            ("memory", self.case_memory),
            ("download100", self.case_download),
            ("get", self.case_get),
            ("list_scale", self.case_list_scale),
            ("jsonl", self.case_jsonl),
            ("delete", self.case_delete),
        ]
        only = set(self.args.only.split(",")) if self.args.only else None
        for name, fn in cases:
            if only and name not in only and not (name == "upload100"):
                continue
            self.phase(name, fn)
        result = {
            "samples": self.samples,
            "notes": self.notes,
            "phases": self.load,
            "config": {
                "rounds": self.rounds, "workers": self.args.workers,
                "wrk_seconds": self.args.wrk_seconds, "delete_count": self.args.delete_count,
                "jsonl_mb": self.args.jsonl_mb,
                "lighttpd_conf": self.lighttpd_conf_text,
                "files": {k: os.path.getsize(v) for k, v in self.files.items()},
                "worker_binary": self.binary_info + (
                    "" if self.binary_stamp() == self.binary_at_start else
                    "; WARNING: rebuilt during the run, later stacks may run the new one"),
                "seconds": round(time.monotonic() - t0, 1),
            },
        }
        with open(self.args.out, "w") as f:
            json.dump(result, f, indent=1)
        log("done in %.0f s" % (time.monotonic() - t0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--sink", required=True, help="the compiled bench/sink.c")
    ap.add_argument("--jsonl-bench", required=True, help="the compiled bench/jsonl_bench.c")
    ap.add_argument("--tmp", required=True, help="scratch directory (removed by run.sh)")
    ap.add_argument("--out", required=True, help="raw samples (JSON)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--wrk-seconds", type=int, default=3)
    ap.add_argument("--delete-count", type=int, default=200)
    ap.add_argument("--jsonl-mb", type=int, default=200)
    ap.add_argument("--only", default="", help="comma-separated cases (upload100 always runs)")
    args = ap.parse_args()

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        Bench(args).run()
    finally:
        stop_all()


if __name__ == "__main__":
    main()
