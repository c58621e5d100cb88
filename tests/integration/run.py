#!/usr/bin/env python3
"""Runs the integration tests: tests/integration/test_*.py (unittest).

    python3 tests/integration/run.py [PATTERN...]

PATTERN selects tests whose id (module.Class.method) contains it, or matches
it as a glob (fnmatch); without one every test runs. Environment:
FILES_API_BIN = the directory holding files-fcgi and filesctl (default: the
repository's bin/); FILES_API_KEEP_TMP=1 keeps each stack's data and log;
FILES_API_SERVER=lighttpd|apache|nginx picks serve.sh's web server (default:
serve.sh's own default).

Prints one line per test, the details of every failure, and ends with exactly
one line "N passed, N failed" (", N skipped" when some were skipped). Errors
count as failures; a test that could not run because its module's setup failed
counts as failed. Exit status: 0 if nothing failed, 1 otherwise, 2 on usage.
"""

import fnmatch
import os
import signal
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _iter_tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _iter_tests(item)
        else:
            yield item


class Result(unittest.TestResult):
    """Counts test methods; prints a line per test as it ends."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.outcome = {}  # test id -> "pass" | "fail" | "skip"
        self.reports = []  # (title, details)
        self.fixture_failures = 0
        self._started = {}

    def _line(self, text):
        self.stream.write(text + "\n")
        self.stream.flush()

    def startTest(self, test):
        super().startTest(test)
        self._started[test.id()] = time.monotonic()

    def _elapsed(self, test):
        t0 = self._started.get(test.id())
        return "" if t0 is None else " (%.2fs)" % (time.monotonic() - t0)

    def _is_test(self, test):
        return isinstance(test, unittest.TestCase)

    def addSuccess(self, test):
        super().addSuccess(test)
        if self.outcome.get(test.id()) != "fail":
            self.outcome[test.id()] = "pass"
            self._line("ok      %s%s" % (test.id(), self._elapsed(test)))

    def _bad(self, kind, test, err):
        details = self._exc_info_to_string(err, test) if err else ""
        if self._is_test(test):
            first = self.outcome.get(test.id()) != "fail"
            self.outcome[test.id()] = "fail"
            if first:
                self._line("%-7s %s%s" % (kind, test.id(), self._elapsed(test)))
        else:  # setUpModule / setUpClass / tearDownModule failed
            # A failed setUp leaves its tests unrun: they are counted as failed
            # below. A failed tearDown affects no test: count it on its own.
            if "setUp" not in str(test):
                self.fixture_failures += 1
            self._line("%-7s %s" % (kind, test.id() if hasattr(test, "id") else test))
        self.reports.append(("%s: %s" % (kind, test.id() if hasattr(test, "id") else test),
                             details))

    def addError(self, test, err):
        super().addError(test, err)
        self._bad("ERROR", test, err)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._bad("FAIL", test, err)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "FAIL" if issubclass(err[0], test.failureException) else "ERROR"
            first = self.outcome.get(test.id()) != "fail"
            self.outcome[test.id()] = "fail"
            if first:
                self._line("%-7s %s" % (kind, test.id()))
            self.reports.append(("%s: %s" % (kind, subtest.id()),
                                 self._exc_info_to_string(err, test)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if self._is_test(test):
            self.outcome[test.id()] = "skip"
            self._line("skip    %s: %s" % (test.id(), reason))
        else:
            self._line("skip    %s: %s" % (test, reason))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.outcome[test.id()] = "pass"
        self._line("ok      %s (expected failure)" % test.id())

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.outcome[test.id()] = "fail"
        self._line("FAIL    %s (unexpected success)" % test.id())
        self.reports.append(("FAIL: %s" % test.id(), "unexpected success\n"))


def _selected(test_id, patterns):
    if not patterns:
        return True
    for p in patterns:
        if p in test_id or fnmatch.fnmatchcase(test_id, p) or fnmatch.fnmatchcase(test_id, "*" + p + "*"):
            return True
    return False


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def main(argv):
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    signal.signal(signal.SIGTERM, _on_sigterm)  # so atexit stops every stack
    patterns = [a for a in argv if a]
    loader = unittest.TestLoader()
    discovered = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)

    tests, load_errors = [], []
    for t in _iter_tests(discovered):
        if t.__class__.__name__ in ("_FailedTest", "ModuleImportFailure"):
            load_errors.append(t)
        elif _selected(t.id(), patterns):
            tests.append(t)
    suite = unittest.TestSuite(tests + load_errors)
    if not tests and not load_errors:
        print("run.py: no test matches %s" % " ".join(patterns))
        print("0 passed, 0 failed")
        return 2

    result = Result(sys.stdout)
    started = time.monotonic()
    try:
        suite.run(result)
    except KeyboardInterrupt:
        print("\ninterrupted")
        result.fixture_failures += 1
    elapsed = time.monotonic() - started

    not_run = [t.id() for t in tests + load_errors if t.id() not in result.outcome]
    for test_id in not_run:
        result.outcome[test_id] = "fail"
        result.reports.append(("NOT RUN: %s" % test_id,
                               "the test did not run (its module or class setup failed, "
                               "or the run was interrupted)\n"))

    if result.reports:
        print()
        print("=" * 70)
        for title, details in result.reports:
            print(title)
            print("-" * 70)
            print(details.rstrip())
            print("=" * 70)

    counted = [t.id() for t in tests + load_errors]
    passed = sum(1 for i in counted if result.outcome.get(i) == "pass")
    skipped = sum(1 for i in counted if result.outcome.get(i) == "skip")
    failed = sum(1 for i in counted if result.outcome.get(i) != "pass" and
                 result.outcome.get(i) != "skip")
    failed += result.fixture_failures
    print()
    print("ran %d tests in %.1fs" % (len(counted), elapsed))
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
