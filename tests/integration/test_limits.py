"""The file size limit with a small configured max_file_bytes (1 MiB): exactly
at the limit is accepted and stored byte for byte, one byte more is 413
VALIDATION_4016, with a declared Content-Length and with chunked transfer
encoding (no Content-Length). The limit counts file bytes, not the request.
The same limit set with $FILES_API_MAX_FILE_BYTES reaches the workers (and the
web server's own limit) however the workers are started."""

import itertools

from harness import (ApiTestCase, ContentGen, Stack, batch_line, config_key_variables, field_part,
                     file_part, multipart)

# Not a multiple of 1024 (lighttpd's limit is in KiB): serve.sh must round the
# web server's limit up, not down, and its 413 page must name that limit.
LIMIT = (1 << 20) + 1000
STACK = None


def setUpModule():
    global STACK
    STACK = Stack(workers=2, config="max_file_bytes = %d\n" % LIMIT, name="limits").start()


def tearDownModule():
    if STACK:
        STACK.stop()


class SmallLimitTest(ApiTestCase):
    def setUp(self):
        self.c = STACK.new_client()

    def assert_stored(self, resp, gen):
        self.assertEqual(resp.status, 200, resp.body[:500])
        obj = resp.json()
        self.assertFileObject(obj)
        self.assertEqual(obj["bytes"], gen.total)
        dl, sha, size = self.c.download_sha256(obj["id"])
        self.assertEqual(dl.status, 200, dl.body[:300])
        self.assertEqual(dl.header("Content-Length"), str(gen.total))
        self.assertEqual(size, gen.total)
        self.assertEqual(sha, gen.sent_sha256, "downloaded content differs from the upload")
        self.assertEqual(self.c.all_ids(), [obj["id"]])

    def assert_too_large(self, resp):
        self.assertError(resp, 413, "VALIDATION_4016", param="file")
        self.assertEqual(self.c.all_ids(), [], "a refused upload left a file behind")

    def test_limit_in_force(self):
        self.assertEqual(int(STACK.config_get("max_file_bytes")), LIMIT)

    def test_exactly_at_limit_with_content_length(self):
        gen = ContentGen(LIMIT)
        self.assert_stored(self.c.upload_stream(gen, chunked=False), gen)

    def test_exactly_at_limit_chunked(self):
        gen = ContentGen(LIMIT)
        self.assert_stored(self.c.upload_stream(gen, chunked=True), gen)

    def test_one_byte_over_with_content_length(self):
        self.assert_too_large(self.c.upload_stream(ContentGen(LIMIT + 1), chunked=False))

    def test_one_byte_over_chunked(self):
        self.assert_too_large(self.c.upload_stream(ContentGen(LIMIT + 1), chunked=True))

    def test_declared_length_over_limit_is_refused_by_the_worker(self):
        # 1.5x the file limit: under the web server's limit (file limit + 1 MiB),
        # over the worker's (file limit + multipart allowance), so the worker
        # refuses it. That it does so from the Content-Length, before reading
        # the body, is test_fastcgi_close's (an unfinished body gets the 413).
        self.assert_too_large(self.c.upload_stream(ContentGen(LIMIT + LIMIT // 2), chunked=False))
        # The worker writes its access line once the response is on its way.
        self.assertIn('path="/v1/files" status=413',
                      STACK.wait_for_log(lambda t: 'path="/v1/files" status=413' in t))

    def test_form_overhead_limit_at_and_one_past(self):
        # A small file in a body padded by a preamble (RFC 2046 allows one of
        # any length) up to the worker's allowance: the file limit plus
        # 16 x (8192 + 4096 + 2 x 70 + 16) = 199,104 bytes of form. One byte
        # more is refused for the request's size, and the message says so:
        # with a Content-Length and without one (chunked: nginx and Apache pass
        # such a body on with no length), so the answer is the same whatever
        # the framing and the server.
        gen = ContentGen(1000)
        content = b"".join(gen.chunks())
        ctype, body = multipart([field_part("purpose", "batch"), file_part(content, "s.jsonl")])
        allowance = LIMIT + 199104
        for (extra, status), chunked in itertools.product(((0, 200), (1, 413)), (False, True)):
            preamble = b"P" * (allowance + extra - len(body) - 2) + b"\r\n"
            whole = preamble + body
            pieces = (whole[at:at + (1 << 20)] for at in range(0, len(whole), 1 << 20))
            with self.subTest(extra=extra, chunked=chunked):
                resp = self.c.request_stream("POST", "/v1/files", pieces,
                                             length=None if chunked else len(whole),
                                             headers={"Content-Type": ctype})
                if status == 200:
                    self.assert_stored(resp, gen)
                    self.c.delete(resp.json()["id"])
                else:
                    self.assert_too_large(resp)
                    self.assertIn("the request is larger than %d bytes" % allowance,
                                  resp.json()["error"]["message"])

    def test_the_web_servers_limit_at_and_one_past(self):
        # serve.sh sets each web server's body limit to the file limit plus
        # 1 MiB: a body of exactly that reaches the worker, which refuses it
        # from its length (its answer carries X-Request-Id); one byte more is
        # the web server's own refusal, but for Apache's mod_proxy_fcgi, which
        # passes the request on before it reads the body: the worker refuses
        # it first, from its length (the same 413). The limit is rounded up to
        # a whole KiB (lighttpd's unit), the same for every server.
        ctype, body = multipart([field_part("purpose", "batch"), file_part(b"{}\n", "s.jsonl")])
        limit = -(-(LIMIT + (1 << 20)) // 1024) * 1024
        for extra, worker in ((0, True), (1, STACK.server == "apache")):
            whole = b"P" * (limit + extra - len(body) - 2) + b"\r\n" + body
            pieces = (whole[at:at + (1 << 20)] for at in range(0, len(whole), 1 << 20))
            with self.subTest(extra=extra):
                resp = self.c.request_stream("POST", "/v1/files", pieces, length=len(whole),
                                             headers={"Content-Type": ctype})
                self.assertEqual(resp.status, 413, resp.body[:300])
                self.assertEqual(resp.header("X-Request-Id") is not None, worker,
                                 "%r %r" % (resp.headers, resp.body[:300]))
                if not worker:  # the web server's page names the limit it enforces
                    self.assertIn("limit of %d bytes" % limit, resp.json()["error"]["message"])
        self.assertEqual(self.c.all_ids(), [])

    def test_far_over_with_content_length(self):
        # 4x the limit: still SPEC's JSON error, whoever notices first
        self.assert_too_large(self.c.upload_stream(ContentGen(4 * LIMIT), chunked=False))

    def test_far_over_chunked(self):
        self.assert_too_large(self.c.upload_stream(ContentGen(4 * LIMIT), chunked=True))

    def test_limit_counts_file_bytes_not_request_bytes(self):
        # the request is well over the limit, the file exactly at it
        gen = ContentGen(LIMIT)
        content = b"".join(gen.chunks())
        parts = [field_part("purpose", "batch"), field_part("note", "n" * 4000),
                 field_part("note2", "m" * 4000), file_part(content, "exact.jsonl")]
        resp = self.c.upload_parts(parts)
        self.assert_stored(resp, gen)

    def test_problem_before_the_limit_is_reported_over_too_large(self):
        # an invalid line early in a file that also runs past the limit: the
        # upload is refused for the first problem in the stream, the bad line
        content = b"".join(ContentGen(LIMIT + 100000).chunks())  # under the declared-length refusal
        bad = content.replace(b'"custom_id":"request-0000001000"', b'"custom_id":1000', 1)
        resp = self.c.upload_parts([field_part("purpose", "batch"), file_part(bad, "bad.jsonl")])
        self.assertError(resp, 400, "INFERENCE_3303", param="file")
        self.assertEqual(resp.json()["error"]["details"]["line"], 1001)
        self.assertEqual(self.c.all_ids(), [])
        # past the limit, the same line is never read: the file is too large
        late = content[:LIMIT + 4096] + b'{"custom_id":"late"\n' + content[LIMIT + 4096:]
        self.assert_too_large(self.c.upload_parts([field_part("purpose", "batch"),
                                                   file_part(late, "late.jsonl")]))

    def test_small_file_after_refusal_works(self):
        self.assert_too_large(self.c.upload_stream(ContentGen(LIMIT + 1), chunked=False))
        gen = ContentGen(1000)
        self.assert_stored(self.c.upload_stream(gen, chunked=False), gen)


class SpilledDuplicateBeforeTheLimitTest(ApiTestCase):
    def test_a_duplicate_custom_id_kept_on_disk_is_reported_over_too_large(self):
        # Past 16,384 lines the custom_ids go to the validator's scratch file,
        # compared at the end of the file, and also where the limit cuts it.
        limit = 2 << 20
        stack = Stack(workers=1, config="max_file_bytes = %d\n" % limit, name="limits-spill")
        self.addCleanup(stack.stop)
        stack.start()
        client = stack.new_client()
        ids = ["id%d" % i for i in range(1, 29001)]  # 2,105,894 bytes
        ids[19999] = ids[16999]  # line 20,000 repeats line 17,000's custom_id
        content = "".join(batch_line(i, url="/v1/embeddings", body={}) + "\n" for i in ids)
        self.assertGreater(len(content), limit)
        self.assertLess(len(content[:limit].encode().split(b"\n")), 29000)
        resp = client.upload(content.encode())
        self.assertError(resp, 400, "INFERENCE_3303", param="file")
        self.assertEqual(resp.json()["error"]["details"]["line"], 20000)
        self.assertEqual(resp.json()["error"]["details"]["reason_code"], "duplicate_custom_id")
        self.assertEqual(client.all_ids(), [])


class LimitFromEnvironmentTest(ApiTestCase):
    def test_limit_set_in_the_environment(self):
        self.assertIn("FILES_API_MAX_FILE_BYTES", config_key_variables())
        stack = Stack(workers=1, name="limit-env",
                      env={"FILES_API_MAX_FILE_BYTES": str(LIMIT),
                           "FILES_API_MAX_FILE_SIZE": "1",  # no such setting
                           "FILES_API_MAX-FILE-BYTES": "1"}).start()  # nor a shell name
        self.addCleanup(stack.stop)
        self.assertEqual(int(stack.config_get("max_file_bytes")), LIMIT)
        # The misspelling is said once, by serve.sh's filesctl: the workers are
        # not given it, so they do not repeat it.
        for name in ("FILES_API_MAX_FILE_SIZE", "FILES_API_MAX-FILE-BYTES"):
            warning = ": warning: $%s is not a setting and is ignored" % name
            self.assertEqual(stack.log_text().count("filesctl" + warning), 1, stack.log_text())
            self.assertNotIn("files-fcgi" + warning, stack.log_text())
        c = stack.new_client()
        gen = ContentGen(LIMIT)
        resp = c.upload_stream(gen, chunked=False)
        self.assertEqual(resp.status, 200, resp.body[:300])
        self.assertEqual(resp.json()["bytes"], LIMIT)
        resp = c.upload_stream(ContentGen(LIMIT + 1), chunked=False)
        self.assertError(resp, 413, "VALIDATION_4016", param="file")
