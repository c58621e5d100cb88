"""The real default limit: 105 MiB (110,100,480 bytes). Exactly at it: 200 and
the download is byte-identical (SHA-256 compared while streaming); one byte
more: 413 VALIDATION_4016, with Content-Length and with chunked encoding.
The content is realistic batch JSONL generated on the fly, never held whole."""

from harness import DEFAULT_MAX_FILE_BYTES, ApiTestCase, ContentGen, Stack

STACK = None


def setUpModule():
    global STACK
    # A config file that sets nothing: the built-in defaults are in force.
    STACK = Stack(workers=2, config="# built-in defaults only\n", name="default-limit").start()


def tearDownModule():
    if STACK:
        STACK.stop()


class DefaultLimitTest(ApiTestCase):
    def setUp(self):
        self.c = STACK.new_client()

    def test_default_is_105_mib(self):
        self.assertEqual(DEFAULT_MAX_FILE_BYTES, 105 * 1024 * 1024)
        self.assertEqual(int(STACK.config_get("max_file_bytes")), DEFAULT_MAX_FILE_BYTES)

    def exact(self, chunked):
        gen = ContentGen(DEFAULT_MAX_FILE_BYTES)
        resp = self.c.upload_stream(gen, chunked=chunked, filename="batch-105MiB.jsonl")
        self.assertEqual(resp.status, 200, resp.body[:500])
        obj = resp.json()
        self.assertFileObject(obj, filename="batch-105MiB.jsonl")
        self.assertEqual(obj["bytes"], DEFAULT_MAX_FILE_BYTES)
        self.assertEqual(self.c.retrieve(obj["id"]).json(), obj)
        dl, sha, size = self.c.download_sha256(obj["id"], headers={"Accept": "application/binary"})
        self.assertEqual(dl.status, 200, dl.body[:300])
        self.assertEqual(dl.header("Content-Type"), "application/jsonl")
        self.assertEqual(dl.header("Content-Length"), str(DEFAULT_MAX_FILE_BYTES))
        self.assertEqual(size, DEFAULT_MAX_FILE_BYTES)
        self.assertEqual(sha, gen.sent_sha256, "downloaded content differs from the upload")
        self.assertEqual(self.c.delete(obj["id"]).status, 200)  # free the space

    def over(self, chunked):
        resp = self.c.upload_stream(ContentGen(DEFAULT_MAX_FILE_BYTES + 1), chunked=chunked)
        self.assertError(resp, 413, "VALIDATION_4016", param="file")
        self.assertEqual(self.c.all_ids(), [], "a refused upload left a file behind")

    def test_exactly_at_limit_with_content_length(self):
        self.exact(chunked=False)

    def test_exactly_at_limit_chunked(self):
        self.exact(chunked=True)

    def test_one_byte_over_with_content_length(self):
        self.over(chunked=False)

    def test_one_byte_over_chunked(self):
        self.over(chunked=True)
