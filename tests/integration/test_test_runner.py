"""scripts/run-tests.sh itself: a suite can neither hang the run nor be lost."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import REPO, once_is_enough, scripts_only

RUN_TESTS = REPO / "scripts" / "run-tests.sh"


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@once_is_enough
@scripts_only
class RunTestsTest(unittest.TestCase):
    def suites(self, **scripts):
        """A directory of unit "suites" (name -> script); strays write their
        pid to strays/ there, and are killed at the end whatever happens."""
        tmp = tempfile.mkdtemp(prefix="files-api-it-runner-")
        os.mkdir(os.path.join(tmp, "strays"))
        self.addCleanup(shutil.rmtree, tmp, True)
        self.addCleanup(lambda: [os.kill(pid, signal.SIGKILL) for pid in self.strays(tmp)
                                 if alive(pid)])
        for name, text in scripts.items():
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        return tmp

    def strays(self, suites):
        strays = os.path.join(suites, "strays")
        return [int(open(os.path.join(strays, n)).read()) for n in os.listdir(strays)]

    def run_tests(self, suites, **env):
        started = time.monotonic()
        proc = subprocess.run([str(RUN_TESTS), suites, "unit"], capture_output=True, text=True,
                              env=dict(os.environ, STRAYS=suites + "/strays", **env),
                              timeout=120, start_new_session=True)
        return proc, time.monotonic() - started

    def test_a_process_a_suite_leaves_behind_does_not_hold_up_the_run(self):
        # (it keeps the suite's output open for a minute)
        suites = self.suites(test_leaves_a_child='#!/bin/bash\nsleep 60 &\necho $! >"$STRAYS/a"\n'
                             'echo "1 passed, 0 failed"\n')
        proc, seconds = self.run_tests(suites)
        self.assertLess(seconds, 30, proc.stdout)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertEqual(proc.stdout.splitlines()[-1], "1 passed, 0 failed")
        self.assertTrue(all(alive(pid) for pid in self.strays(suites)), "the stray was not there")

    def test_a_suite_over_its_time_is_stopped_with_its_children_and_counted_as_failed(self):
        suites = self.suites(
            test_hangs='#!/bin/bash\necho started\nsleep 60 &\necho $! >"$STRAYS/a"\n'
                       'sleep 60\necho "1 passed, 0 failed"\n',
            test_passes='#!/bin/bash\necho "2 passed, 0 failed"\n')
        proc, seconds = self.run_tests(suites, SUITE_SECONDS="2")
        self.assertLess(seconds, 30, proc.stdout)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertIn("started", proc.stdout)
        self.assertIn("== unit/test_hangs: stopped after 2 s", proc.stdout)
        self.assertEqual(proc.stdout.splitlines()[-1], "2 passed, 1 failed")
        self.assertEqual([pid for pid in self.strays(suites) if alive(pid)], [],
                         "the suite's child outlived it")

    def test_an_interrupt_reaches_the_suite_once_and_its_last_words_show(self):
        suites = self.suites(test_interrupted='#!/usr/bin/env python3\n'
                             'import signal, sys, time\n'
                             'seen = []\n'
                             'signal.signal(signal.SIGINT, lambda *_: seen.append(1))\n'
                             'print("started", flush=True)\n'
                             'while not seen: time.sleep(0.05)\n'
                             'time.sleep(1)  # a second SIGINT would come in here\n'
                             'print("cleaned up after %d SIGINT" % len(seen), flush=True)\n'
                             'print("1 passed, 0 failed")\n',
                             test_later='#!/bin/bash\necho "this suite ran"\n')
        # SIGINT as a terminal leaves it: a run started in the background
        # (as `cmd &` from a script) would inherit it ignored, and bash cannot
        # trap a signal ignored at its start.
        proc = subprocess.Popen(["env", "--default-signal=INT", str(RUN_TESTS), suites, "unit"],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.addCleanup(lambda: proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL))
        lines = []
        while not lines or lines[-1] != "started\n":
            lines.append(proc.stdout.readline())
            self.assertNotEqual(lines[-1], "", lines)
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: to the terminal's group
        try:
            out = "".join(lines) + proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            self.fail("the run did not end after the interrupt:\n" + "".join(lines))
        self.assertEqual(proc.returncode, 130, out)
        self.assertIn("cleaned up after 1 SIGINT", out)
        self.assertNotIn("this suite ran", out)
