"""scripts/run-tests.sh itself: a suite can neither hang the run nor be lost."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import REPO

RUN_TESTS = REPO / "scripts" / "run-tests.sh"


class RunTestsTest(unittest.TestCase):
    def suites(self, **scripts):
        """A directory of unit "suites": name -> shell script."""
        tmp = tempfile.mkdtemp(prefix="files-api-it-runner-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for name, body in scripts.items():
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write("#!/bin/bash\n" + body)
            os.chmod(path, 0o755)
        return tmp

    def run_tests(self, suites, **env):
        started = time.monotonic()
        proc = subprocess.run([str(RUN_TESTS), suites, "unit"], capture_output=True, text=True,
                              env=dict(os.environ, **env), timeout=120, start_new_session=True)
        return proc, time.monotonic() - started

    def test_a_process_a_suite_leaves_behind_does_not_hold_up_the_run(self):
        # (it keeps the suite's output open for a minute)
        suites = self.suites(test_leaves_a_child='sleep 60 &\necho "1 passed, 0 failed"\n')
        proc, seconds = self.run_tests(suites)
        self.addCleanup(subprocess.run, ["pkill", "-f", "-x", "sleep 60"])
        self.assertLess(seconds, 30, proc.stdout)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("1 passed, 0 failed", proc.stdout.splitlines()[-1])

    def test_a_suite_over_its_time_is_stopped_and_counted_as_failed(self):
        suites = self.suites(test_hangs='echo started\nsleep 61\necho "1 passed, 0 failed"\n',
                             test_passes='echo "2 passed, 0 failed"\n')
        proc, seconds = self.run_tests(suites, SUITE_SECONDS="2")
        self.addCleanup(subprocess.run, ["pkill", "-f", "-x", "sleep 61"])
        self.assertLess(seconds, 30, proc.stdout)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertIn("started", proc.stdout)
        self.assertIn("== unit/test_hangs: stopped after 2 s", proc.stdout)
        self.assertEqual(proc.stdout.splitlines()[-1], "2 passed, 1 failed")
