"""Upload requests that are malformed (VALIDATION_4001), have a bad purpose
(VALIDATION_4007), and the filename rules. A refused upload leaves nothing."""

import gzip

from harness import (ApiTestCase, Response, Stack, batch_jsonl, disposition_filename, field_part,
                     file_part, multipart, parse_disposition, raw_part, raw_request)

STACK = None
CONTENT = batch_jsonl(2)


def setUpModule():
    global STACK
    STACK = Stack(workers=2, name="upload").start()


def tearDownModule():
    if STACK:
        STACK.stop()


def post(c, body, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    return c.request("POST", "/v1/files", body=body, headers=headers)


class MalformedRequestTest(ApiTestCase):
    def setUp(self):
        self.c = STACK.new_client()

    def tearDown(self):
        # whatever was refused left nothing visible
        self.assertEqual(self.c.all_ids(), [], "a refused upload left a file behind")

    def refused(self, resp, param=None, message=None):
        err = self.assertError(resp, 400, "VALIDATION_4001", message=message)
        if param is not None:
            self.assertEqual(err["param"], param, err)
        else:
            self.assertIn(err["param"], (None, "file"), err)
        return err

    def test_not_multipart(self):
        ctype, body = multipart([field_part("purpose", "batch"), file_part(CONTENT)])
        for ct in ("application/json", "text/plain", "application/x-www-form-urlencoded",
                   "multipart/mixed; boundary=" + ctype.split("boundary=")[1]):
            with self.subTest(content_type=ct):
                self.refused(post(self.c, body, ct))
        with self.subTest(content_type=None):
            self.refused(post(self.c, CONTENT, None))

    def test_no_boundary(self):
        _ctype, body = multipart([field_part("purpose", "batch"), file_part(CONTENT)])
        for ct in ("multipart/form-data", "multipart/form-data;", "multipart/form-data; boundary=",
                   "multipart/form-data; charset=utf-8"):
            with self.subTest(content_type=ct):
                self.refused(post(self.c, body, ct))

    def test_broken_multipart(self):
        ctype, good = multipart([field_part("purpose", "batch"), file_part(CONTENT)], boundary="BND")
        cases = {
            "no closing boundary": good[: good.rindex(b"--BND--")],
            "cut inside the file part": good[: good.index(CONTENT) + 10],
            "boundary never appears": b"hello world\r\n",
            "empty body": b"",
            "part without headers end": b"--BND\r\nContent-Disposition: form-data; name=\"purpose\"\r\n--BND--\r\n",
            "part without Content-Disposition": (b"--BND\r\nContent-Type: text/plain\r\n\r\nbatch\r\n"
                                                 b"--BND--\r\n"),
            "garbage after boundary": good.replace(b"--BND\r\n", b"--BNDxyz\r\n", 1),
            "LF-only header lines": good.replace(b"\r\n", b"\n"),
        }
        for what, body in cases.items():
            with self.subTest(case=what):
                self.refused(post(self.c, body, ctype))

    def test_no_file_part(self):
        self.refused(self.c.upload_parts([field_part("purpose", "batch")]), param="file")
        self.refused(self.c.upload_parts([field_part("purpose", "batch"),
                                          field_part("other", "x")]), param="file")

    def test_an_ignored_text_field_holds_at_most_4096_bytes(self):
        for size, status in ((4096, 200), (4097, 400)):
            with self.subTest(size=size):
                resp = self.c.upload_parts([field_part("purpose", "batch"),
                                            field_part("note", "n" * size), file_part(CONTENT)])
                if status == 200:
                    self.assertEqual(resp.status, 200, resp.body)
                    self.c.delete(resp.json()["id"])
                else:
                    self.refused(resp)
                    self.assertIn('field "note" is longer than 4096 bytes',
                                  resp.json()["error"]["message"])

    def test_a_text_field_given_twice(self):
        # README: which one was meant is unclear, even when both say the same
        for name, value in (("purpose", "batch"), ("expires_after[anchor]", "created_at"),
                            ("expires_after[seconds]", "3600")):
            with self.subTest(name=name):
                parts = [field_part(name, value), file_part(CONTENT), field_part(name, value)]
                if name != "purpose":
                    parts.append(field_part("purpose", "batch"))
                self.refused(self.c.upload_parts(parts),
                             param="purpose" if name == "purpose" else "expires_after")
        self.assertEqual(self.c.all_ids(), [])

    def test_file_part_without_filename(self):
        parts = [field_part("purpose", "batch"), field_part("file", CONTENT)]
        self.refused(self.c.upload_parts(parts))

    def test_second_file_part(self):
        parts = [field_part("purpose", "batch"), file_part(CONTENT, "a.jsonl"),
                 file_part(batch_jsonl(1, tag="b"), "b.jsonl")]
        self.refused(self.c.upload_parts(parts), param="file")
        parts = [file_part(CONTENT, "a.jsonl"), file_part(CONTENT, "a.jsonl"),
                 field_part("purpose", "batch")]
        self.refused(self.c.upload_parts(parts), param="file")

    def test_bad_filenames(self):
        cases = {
            "empty": b"",
            "256 bytes": b"a" * 250 + b".jsonl",
            "256 bytes multibyte": "é".encode() * 125 + b".jsonl",
            "ends with a slash": b"dir/",
            "ends with a backslash": b"dir\\\\",
            "tab": b"a\tb.jsonl",
            "percent-encoded LF": b"a%0Ab.jsonl",
            "percent-encoded CR": b"a%0db.jsonl",
            "invalid UTF-8": b"\xff\xfe.jsonl",
            "overlong UTF-8": b"\xc0\xaf.jsonl",
            "surrogate UTF-8": b"\xed\xa0\x80.jsonl",
            "DEL": b"a\x7fb.jsonl",
            "dot dot": b"..",
        }
        for what, raw in cases.items():
            with self.subTest(case=what):
                parts = [field_part("purpose", "batch"), file_part(CONTENT, raw)]
                self.refused(self.c.upload_parts(parts))


class ContentEncodingTest(ApiTestCase):
    def test_a_compressed_body_is_refused_for_what_it_is(self):
        # It was "malformed multipart body: no boundary found".
        c = STACK.new_client()
        ctype, body = multipart([file_part(CONTENT, "a.jsonl"), field_part("purpose", "batch")])
        for coding in ("gzip", "br, gzip"):
            resp = c.request("POST", "/v1/files", body=gzip.compress(body),
                             headers={"Content-Type": ctype, "Content-Encoding": coding})
            self.assertError(resp, 400, "VALIDATION_4001",
                             message='Content-Encoding "%s" is not supported' % coding)
        self.assertEqual(c.all_ids(), [])
        for coding in ("identity", "IDENTITY"):  # a content-coding is case-insensitive
            resp = c.request("POST", "/v1/files", body=body,
                             headers={"Content-Type": ctype, "Content-Encoding": coding})
            self.assertEqual(resp.status, 200, resp.body[:300])

    def test_a_coding_in_a_repeated_header_is_refused_too(self):
        # lighttpd and Apache join the values ("identity, gzip"); nginx passed
        # each on, and the worker read only the first.
        c = STACK.new_client()
        ctype, body = multipart([file_part(CONTENT, "a.jsonl"), field_part("purpose", "batch")])
        head = ("POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                "Authorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                "Content-Encoding: identity\r\nContent-Encoding: gzip\r\n\r\n"
                % (c.key, ctype, len(body))).encode()
        resp = Response.from_wire(raw_request(STACK, head + body))
        self.assertError(resp, 400, "VALIDATION_4001", message="Content-Encoding.* not supported")
        self.assertEqual(c.all_ids(), [])


class TransferCodingTest(ApiTestCase):
    def chunked_upload(self, c, ctype, body, coding):
        head = ("POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                "Authorization: Bearer %s\r\nContent-Type: %s\r\nTransfer-Encoding: %s\r\n\r\n"
                % (c.key, ctype, coding)).encode()
        pieces = [body[i:i + 1000] for i in range(0, len(body), 1000)]
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        return Response.from_wire(raw_request(STACK, head + chunks))

    def test_a_coding_other_than_chunked_is_refused_for_what_it_is(self):
        # The web server's 501. Apache took off the chunked and passed the rest
        # on: a gzipped body was "no boundary found", one not gzipped was stored.
        c = STACK.new_client()
        ctype, body = multipart([field_part("purpose", "batch"), file_part(CONTENT)])
        for coding, sent in (("gzip, chunked", gzip.compress(body)), ("gzip, chunked", body),
                             ("identity, chunked", body)):
            with self.subTest(coding=coding, gzipped=sent != body):
                resp = self.chunked_upload(c, ctype, sent, coding)
                self.assertError(resp, 501, "VALIDATION_4001", message="transfer coding")
        self.assertEqual(c.all_ids(), [])
        for coding in ("chunked", "Chunked", " chunked "):
            with self.subTest(coding=coding):
                resp = self.chunked_upload(c, ctype, body, coding)
                self.assertEqual(resp.status, 200, resp.body[:300])


class PurposeTest(ApiTestCase):
    def setUp(self):
        self.c = STACK.new_client()

    def tearDown(self):
        self.assertEqual(self.c.all_ids(), [], "a refused upload left a file behind")

    def test_missing_purpose(self):
        self.assertError(self.c.upload(CONTENT, purpose=None), 400, "VALIDATION_4007",
                         param="purpose")

    def test_wrong_purpose_before_and_after_file(self):
        for purpose in ("fine-tune", "batch_output", "Batch", "batch ", "", "assistants",
                        "x" * 300, "batch\x00fine-tune", "batch\x00"):
            for first in (True, False):
                with self.subTest(purpose=purpose[:20], purpose_first=first):
                    resp = self.c.upload(CONTENT, purpose=purpose, purpose_first=first)
                    self.assertError(resp, 400, "VALIDATION_4007", param="purpose")

    def test_purpose_longer_than_a_text_field_may_be_is_still_a_wrong_purpose(self):
        # 4096 bytes is the most a text field may hold; a purpose at it and one
        # past it is as wrong as any other value (4007), not a malformed body.
        for purpose in ("batch" + " " * 4091, "batch" + " " * 4092, "b" * 8000):
            for first in (True, False):
                with self.subTest(length=len(purpose), purpose_first=first):
                    resp = self.c.upload(CONTENT, purpose=purpose, purpose_first=first)
                    self.assertError(resp, 400, "VALIDATION_4007", param="purpose")

    def test_purpose_checked_even_when_content_is_invalid_after_it(self):
        # purpose first and wrong: 4007 (the file needs no reading)
        resp = self.c.upload(b"not json\n", purpose="fine-tune", purpose_first=True)
        self.assertError(resp, 400, "VALIDATION_4007", param="purpose")

    def test_purpose_given_twice(self):
        parts = [field_part("purpose", "batch"), file_part(CONTENT), field_part("purpose", "batch")]
        resp = self.c.upload_parts(parts)
        self.assertEqual(resp.status, 400, resp.body)
        self.assertIn(resp.json()["error"]["code"], ("VALIDATION_4001", "VALIDATION_4007"))


class FilenameTest(ApiTestCase):
    def setUp(self):
        self.c = STACK.new_client()

    def stored_name(self, raw, *, disposition=None):
        if disposition is None:
            part = file_part(CONTENT, raw)
        else:
            part = raw_part(disposition + b"\r\nContent-Type: application/jsonl\r\n", CONTENT)
        resp = self.c.upload_parts([part, field_part("purpose", "batch")])
        self.assertEqual(resp.status, 200, resp.body)
        obj = resp.json()
        # the same name everywhere: upload answer, retrieve, list, download header
        self.assertEqual(self.c.retrieve(obj["id"]).json()["filename"], obj["filename"])
        listed = {f["id"]: f for f in self.c.list_ok(limit=100)["data"]}
        self.assertEqual(listed[obj["id"]]["filename"], obj["filename"])
        dl = self.c.content(obj["id"])
        self.assertEqual(dl.body, CONTENT)
        cd = dl.header("Content-Disposition", "")
        self.assertTrue(cd.startswith("attachment"), cd)
        self.assertNotIn("\r", cd)
        self.assertNotIn("\n", cd)
        self.assertEqual(disposition_filename(cd), obj["filename"], cd)
        return obj["filename"]

    def test_basename_cut_at_slash(self):
        self.assertEqual(self.stored_name(b"dir/sub/a.jsonl"), "a.jsonl")
        self.assertEqual(self.stored_name(b"/etc/passwd"), "passwd")
        self.assertEqual(self.stored_name(b"../../x.jsonl"), "x.jsonl")

    def test_basename_cut_at_backslash(self):
        # old browsers send the raw Windows path inside the quoted string
        self.assertEqual(self.stored_name(b"C:\\Users\\me\\b.jsonl"), "b.jsonl")
        # and an escaped backslash (quoted-pair) separates too
        self.assertEqual(self.stored_name(b"C:\\\\Users\\\\me\\\\c.jsonl"), "c.jsonl")

    def test_escaped_quote_forms(self):
        self.assertEqual(self.stored_name(b'my \\"quoted\\" name.jsonl'), 'my "quoted" name.jsonl')
        self.assertEqual(self.stored_name(b"my %22quoted%22 name.jsonl"), 'my "quoted" name.jsonl')

    def test_other_percent_sequences_kept(self):
        self.assertEqual(self.stored_name(b"100%25 done %41.jsonl"), "100%25 done %41.jsonl")

    def test_utf8_name_kept(self):
        name = "données-批次-🚀.jsonl"
        self.assertEqual(self.stored_name(name.encode("utf-8")), name)

    def test_filename_star_rfc8187(self):
        name = "résumé €.jsonl"
        disp = (b'Content-Disposition: form-data; name="file"; filename="fallback.jsonl"; '
                b"filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%82%AC.jsonl")
        self.assertEqual(self.stored_name(None, disposition=disp), name)

    def test_255_bytes_accepted(self):
        name = "a" * 249 + ".jsonl"
        self.assertEqual(len(name.encode()), 255)
        self.assertEqual(self.stored_name(name.encode()), name)
        name = "é" * 124 + "a.jsonl"  # multibyte, 255 bytes
        self.assertEqual(len(name.encode()), 255)
        self.assertEqual(self.stored_name(name.encode()), name)

    def test_255_byte_basename_after_long_directory(self):
        name = "b" * 249 + ".jsonl"
        self.assertEqual(self.stored_name(b"d" * 300 + b"/" + name.encode()), name)

    def test_header_injection_impossible_in_download(self):
        name = 'x"; filename="evil.sh'
        stored = self.stored_name(name.replace('"', '\\"').encode())
        self.assertEqual(stored, name)
        obj = [f for f in self.c.list_ok()["data"] if f["filename"] == name][0]
        cd = self.c.content(obj["id"]).header("Content-Disposition")
        # well-formed, no parameter smuggled in: only filename and filename*
        kind, params = parse_disposition(cd)
        self.assertEqual(kind, "attachment")
        self.assertLessEqual(set(params), {"filename", "filename*"}, cd)
        self.assertEqual(disposition_filename(cd), name)

    def test_the_plain_filename_of_a_download_has_no_percent_escapes(self):
        # Some user agents decode %XX in the plain filename (RFC 6266, appendix
        # D): a name holding "%C3%A9" would be saved as "é". filename* is exact.
        name = "%C3%A9 100%.jsonl"
        self.assertEqual(self.stored_name(name.encode()), name)
        obj = [f for f in self.c.list_ok()["data"] if f["filename"] == name][0]
        cd = self.c.content(obj["id"]).header("Content-Disposition")
        kind, params = parse_disposition(cd)
        self.assertEqual(params["filename"], "_C3_A9 100_.jsonl", cd)
        self.assertEqual(disposition_filename(cd), name)

    def test_case_insensitive_disposition_and_unquoted_name(self):
        disp = b"content-disposition: FORM-DATA; NAME=file; FILENAME=plain.jsonl"
        self.assertEqual(self.stored_name(None, disposition=disp), "plain.jsonl")
