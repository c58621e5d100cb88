"""Soak: CLIENTS concurrent clients do a random mix of uploads, lists,
retrieves, content downloads and deletes through the real stack for SECONDS,
each checking every response against a model of what must exist (the SHA-256
of every byte of every file it owns). Zero 5xx, zero lost or resurrected files.

    python3 tests/soak/soak.py SECONDS CLIENTS     (make soak SECONDS=N CLIENTS=M)

Each client owns an account, so its model is exact; the clients share the
worker pool, the database and the disk. Prints operations per second and the
error count, then "N passed, N failed" (one per client, plus the final fsck)."""

import hashlib
import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from harness import Stack, batch_jsonl  # noqa: E402


class SoakClient:
    def __init__(self, stack, n, deadline):
        self.client = stack.new_client()
        self.n = n
        self.deadline = deadline
        self.model = {}  # id -> (sha256, size)
        self.ops = {"upload": 0, "list": 0, "retrieve": 0, "content": 0, "delete": 0}
        self.errors = []
        self.uploads = 0

    def fail(self, what):
        self.errors.append(what)

    def upload(self):
        lines = random.choice((1, 10, 200, 2000, 8000))
        content = batch_jsonl(lines, prefix="c%d-%d" % (self.n, self.uploads))
        self.uploads += 1
        resp = self.client.upload(content, filename="soak-%d.jsonl" % self.uploads)
        if resp.status != 200:
            return self.fail("upload: %d %r" % (resp.status, resp.body[:200]))
        obj = resp.json()
        if obj["bytes"] != len(content):
            self.fail("upload: bytes %d != %d" % (obj["bytes"], len(content)))
        self.model[obj["id"]] = (hashlib.sha256(content).hexdigest(), len(content))

    def list_all(self):
        ids = self.client.all_ids(order=random.choice(("asc", "desc")),
                                  limit=random.choice((1, 7, 100)))
        if sorted(ids) != sorted(self.model):
            lost = set(self.model) - set(ids)
            extra = set(ids) - set(self.model)
            self.fail("list: lost %s, resurrected %s" % (sorted(lost)[:3], sorted(extra)[:3]))
        if len(ids) != len(set(ids)):
            self.fail("list: an id appeared twice")

    def retrieve(self, file_id):
        resp = self.client.retrieve(file_id)
        if resp.status != 200 or resp.json()["bytes"] != self.model[file_id][1]:
            self.fail("retrieve %s: %d %r" % (file_id, resp.status, resp.body[:200]))

    def content(self, file_id):
        resp, digest, size = self.client.download_sha256(file_id)
        if resp.status != 200 or (digest, size) != self.model[file_id]:
            self.fail("content %s: %d, %s bytes" % (file_id, resp.status, size))

    def delete(self, file_id):
        resp = self.client.delete(file_id)
        if resp.status != 200:
            return self.fail("delete %s: %d %r" % (file_id, resp.status, resp.body[:200]))
        del self.model[file_id]
        again = self.client.retrieve(file_id)
        if again.status != 404:
            self.fail("deleted %s still answers %d" % (file_id, again.status))

    def run(self):
        while time.monotonic() < self.deadline and len(self.errors) < 10:
            op = random.choices(("upload", "list", "retrieve", "content", "delete"),
                                weights=(4, 2, 3, 2, 2))[0]
            if op in ("retrieve", "content", "delete") and not self.model:
                op = "upload"
            try:
                if op == "upload":
                    self.upload()
                elif op == "list":
                    self.list_all()
                else:
                    getattr(self, op)(random.choice(list(self.model)))
            except Exception as e:  # a broken connection is a failure too
                self.fail("%s: %r" % (op, e))
            self.ops[op] += 1


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    stack = Stack(workers=4, name="soak").start()
    try:
        deadline = time.monotonic() + seconds
        soakers = [SoakClient(stack, n, deadline) for n in range(clients)]
        threads = [threading.Thread(target=s.run) for s in soakers]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        total = {op: sum(s.ops[op] for s in soakers) for op in soakers[0].ops}
        errors = sum(len(s.errors) for s in soakers)
        fivexx = sum(1 for l in stack.access_lines() if " status=5" in l)
        print("soak: %d clients, %.0f s: %d operations (%.0f/s): %s"
              % (clients, elapsed, sum(total.values()), sum(total.values()) / elapsed,
                 ", ".join("%s %d" % kv for kv in total.items())))
        print("soak: %d errors, %d responses with status 5xx in the access log" % (errors, fivexx))
        passed = failed = 0
        for s in soakers:
            for e in s.errors[:5]:
                print("client %d: %s" % (s.n, e))
            if s.errors:
                failed += 1
            else:
                passed += 1
        fsck = stack.filesctl("fsck", check=False)
        print(fsck.stdout.strip().splitlines()[-1] if fsck.stdout.strip() else fsck.stderr)
        if fsck.returncode == 0 and fivexx == 0:
            passed += 1
        else:
            failed += 1
            print("soak: fsck exit %d, %d 5xx" % (fsck.returncode, fivexx))
    finally:
        stack.stop()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
