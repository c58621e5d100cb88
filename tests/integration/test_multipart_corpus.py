"""The malformed multipart corpus (tests/multipart-corpus: NAME.body sent with
the Content-Type in NAME.content-type) through the real stack: each request
gets a 400 VALIDATION_4001 in the contract's format naming the problem, no
worker dies, and nothing is stored."""

import time

from harness import REPO, ApiTestCase, Stack

CORPUS = REPO / "tests" / "multipart-corpus"
STACK = None


def setUpModule():
    global STACK
    STACK = Stack(workers=2, name="corpus").start()


def tearDownModule():
    if STACK:
        STACK.stop()


class MultipartCorpusTest(ApiTestCase):
    def test_every_malformed_body_is_a_clean_400(self):
        cases = sorted(p.stem for p in CORPUS.glob("*.body"))
        self.assertGreaterEqual(len(cases), 40)
        client = STACK.new_client()
        workers = STACK.worker_pids()
        for name in cases:
            with self.subTest(case=name):
                body = (CORPUS / (name + ".body")).read_bytes()
                ctype = (CORPUS / (name + ".content-type")).read_text().strip()
                expect = (CORPUS / (name + ".expect")).read_text().strip()
                resp = client.request("POST", "/v1/files", body=body,
                                      headers={"Content-Type": ctype})
                err = self.assertError(resp, 400, "VALIDATION_4001")
                self.assertIn(expect.lower(), err["message"].lower())
        time.sleep(0.2)
        self.assertEqual(STACK.worker_pids(), workers, "a worker died")
        self.assertEqual(client.all_ids(), [])
        fsck = STACK.filesctl("fsck", "--grace", "0", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.stdout)
        self.assertNotIn("status=5", STACK.log_text())
