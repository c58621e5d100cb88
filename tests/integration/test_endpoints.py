"""The five endpoints end to end: upload, list, retrieve, content, delete; HEAD,
trailing slashes, unknown routes, wrong methods."""

import os
import socket
import time

from harness import (ApiTestCase, Response, Stack, batch_jsonl, disposition_filename, field_part,
                     file_part, multipart, raw_request, read_to_end)

STACK = None


def setUpModule():
    global STACK
    STACK = Stack(workers=2, name="endpoints").start()


def tearDownModule():
    if STACK:
        STACK.stop()


class UploadTest(ApiTestCase):
    def test_upload_returns_file_object(self):
        c = STACK.new_client()
        content = batch_jsonl(3)
        before = int(time.time())
        resp = c.upload(content, filename="requests.jsonl")
        after = int(time.time())
        self.assertEqual(resp.status, 200, resp.body)
        self.assertTrue(resp.header("Content-Type", "").startswith("application/json"))
        # (Apache with mod_fcgid sent Vary: Content-Length, from the rewrite
        # condition that refuses a body declared too large.)
        self.assertIsNone(resp.header("Vary"))
        obj = resp.json()
        self.assertFileObject(obj, content=content, filename="requests.jsonl")
        self.assertGreaterEqual(obj["created_at"], before - 1)
        self.assertLessEqual(obj["created_at"], after + 1)

    def test_file_ids_fixed_length_url_safe_and_distinct(self):
        c = STACK.new_client()
        ids = [c.upload_ok(batch_jsonl(1, tag=str(i)))["id"] for i in range(8)]
        self.assertEqual(len(set(ids)), len(ids))
        for i in ids:
            self.assertRegex(i, r"^file_[A-Za-z0-9_-]+$")
            # >= 96 bits of randomness needs >= 17 base64url characters
            self.assertGreaterEqual(len(i) - len("file_"), 17, i)
        self.assertEqual(len({len(i) for i in ids}), 1, ids)
        # not sequential: the random parts share no long common prefix+suffix pattern
        tails = [i[-8:] for i in ids]
        self.assertEqual(len(set(tails)), len(tails), ids)

    def test_purpose_first_and_file_first(self):
        c = STACK.new_client()
        for purpose_first in (True, False):
            with self.subTest(purpose_first=purpose_first):
                content = batch_jsonl(2, tag="pf%s" % purpose_first)
                resp = c.upload(content, purpose_first=purpose_first)
                self.assertEqual(resp.status, 200, resp.body)
                self.assertFileObject(resp.json(), content=content)

    def test_unknown_text_fields_ignored(self):
        c = STACK.new_client()
        content = batch_jsonl(2)
        resp = c.upload(content, extra_parts=[field_part("note", "hello"),
                                               field_part("x_client", "sdk")])
        self.assertEqual(resp.status, 200, resp.body)
        self.assertFileObject(resp.json(), content=content)

    def test_upload_same_content_twice_gives_two_files(self):
        c = STACK.new_client()
        content = batch_jsonl(2)
        a = c.upload_ok(content)
        b = c.upload_ok(content)
        self.assertNotEqual(a["id"], b["id"])
        self.assertEqual(set(c.all_ids()), {a["id"], b["id"]})


class InterruptedUploadTest(ApiTestCase):
    """A client that goes away mid-upload leaves nothing behind."""

    def interrupted(self, chunked, whole_body=False):
        """Sends half the body, or (whole_body) all of the multipart body but not
        the request's end: 10 bytes short of the declared length, or no last
        chunk. Then the client goes away."""
        c = STACK.new_client()
        marker = "interrupted-%s-%d" % (chunked, time.time_ns())
        content = batch_jsonl(200, tag=marker)
        ctype, body = multipart([field_part("purpose", "batch"), file_part(content)])
        head = ("POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: %s\r\n" % (c.key, ctype))
        sent = body if whole_body else body[: len(body) // 2]
        if chunked:
            data = (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"%x\r\n" % len(sent) + sent + b"\r\n"
        else:
            declared = len(body) + 10 if whole_body else len(body)
            data = (head + "Content-Length: %d\r\n\r\n" % declared).encode() + sent
        posts = lambda text: text.count('method=POST path="/v1/files"')
        before = posts(STACK.log_text())
        with socket.create_connection(("127.0.0.1", STACK.port), timeout=10) as s:
            s.sendall(data)
            time.sleep(0.3)
        # A web server that passes the body on as it comes (Apache) hands the
        # request to a worker, which must refuse it; the others never do.
        STACK.wait_for_log(lambda text: posts(text) > before, timeout=1.0, must=False)
        time.sleep(0.2)
        self.assertEqual(c.all_ids(), [], "an interrupted upload became a file")
        leftovers = []
        for root, _dirs, names in os.walk(STACK.data_dir):
            for n in names:
                if n.startswith("files.db"):
                    continue
                p = os.path.join(root, n)
                try:
                    with open(p, "rb") as f:
                        if marker.encode() in f.read():
                            leftovers.append(p)
                except OSError:
                    pass
        self.assertEqual(leftovers, [], "an interrupted upload left data on disk")
        self.assertEqual(c.list().status, 200)  # the service is still fine

    def test_interrupted_with_content_length(self):
        self.interrupted(chunked=False)

    def test_interrupted_chunked(self):
        self.interrupted(chunked=True)

    def test_interrupted_after_the_whole_multipart_body(self):
        self.interrupted(chunked=False, whole_body=True)

    def test_interrupted_after_the_whole_multipart_body_chunked(self):
        self.interrupted(chunked=True, whole_body=True)


class StalledUploadTest(ApiTestCase):
    def test_uploads_that_stop_arriving_do_not_hold_the_pool(self):
        # As many stalled uploads as there are workers. lighttpd and nginx
        # receive a body before a worker sees it; Apache's mod_proxy_fcgi
        # passes it on as it comes, so a stalled one holds a worker until
        # mod_reqtimeout's body timeout (10 s; Apache's Timeout, 60 s, before).
        stack = Stack(workers=2, name="stalled").start()
        self.addCleanup(stack.stop)
        c = stack.new_client()
        ctype, body = multipart([field_part("purpose", "batch"), file_part(batch_jsonl(50))])
        head = ("POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: %s\r\nContent-Length: %d\r\n\r\n" % (c.key, ctype, len(body)))
        stalled = []
        for _ in range(stack.workers):
            s = socket.create_connection(("127.0.0.1", stack.port), timeout=30)
            self.addCleanup(s.close)
            s.sendall(head.encode() + body[:50])
            stalled.append(s)
        time.sleep(0.5)
        started = time.monotonic()
        self.assertEqual(c.list().status, 200)
        # Apache: serve.sh's body timeout (10 s), not mod_reqtimeout's own (20 s).
        self.assertLess(time.monotonic() - started, 15 if stack.server == "apache" else 20)
        if stack.server == "apache":  # the others wait 60 s
            for s in stalled:
                self.assertError(Response.from_wire(read_to_end(s)), 408, "VALIDATION_4001")
        elif stack.server == "apache-fcgid":  # mod_fcgid's answer to a body that stopped: 500
            for s in stalled:
                self.assertError(Response.from_wire(read_to_end(s)), 500, "SYSTEM_9001",
                                 message="did not all arrive")
        self.assertEqual(c.all_ids(), [])


class RetrieveContentDeleteTest(ApiTestCase):
    def test_retrieve(self):
        c = STACK.new_client()
        content = batch_jsonl(4)
        obj = c.upload_ok(content, filename="r.jsonl")
        resp = c.retrieve(obj["id"])
        self.assertEqual(resp.status, 200, resp.body)
        self.assertTrue(resp.header("Content-Type", "").startswith("application/json"))
        self.assertEqual(resp.json(), obj)

    def test_json_answers_end_in_a_newline_that_content_length_counts(self):
        # As on the wire: a Content-Length one short would leave the newline
        # on a kept connection, read as the start of the next answer.
        c = STACK.new_client()
        file_id = c.upload_ok(batch_jsonl(1))["id"]
        for method, path in (("GET", "/v1/files/" + file_id), ("GET", "/v1/files?limit=1"),
                             ("GET", "/v1/files/file_none"), ("DELETE", "/v1/files/" + file_id)):
            with self.subTest(method=method, path=path):
                resp = Response.from_wire(raw_request(STACK, (
                    "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    "Connection: close\r\n\r\n" % (method, path, c.key)).encode()))
                self.assertIsNone(resp.header("Transfer-Encoding"))
                self.assertEqual(int(resp.header("Content-Length")), len(resp.body), resp)
                self.assertTrue(resp.body.endswith(b"}\n"), resp)

    def test_content_byte_exact_with_headers(self):
        c = STACK.new_client()
        # CRLF line ends, no final newline, non-ASCII: all must come back unchanged
        content = (batch_jsonl(2).replace(b"\n", b"\r\n")
                   + '{"custom_id":"é-ü","method":"POST","url":"/v1/chat/completions","body":{"t":"日本語 \\u00e9"}}'.encode())
        obj = c.upload_ok(content, filename="data set.jsonl")
        for accept in (None, "application/binary", "*/*", "application/json"):
            with self.subTest(accept=accept):
                headers = {"Accept": accept} if accept else {}
                resp = c.content(obj["id"], headers=headers)
                self.assertEqual(resp.status, 200, resp.body[:300])
                self.assertEqual(resp.body, content)
                self.assertEqual(resp.header("Content-Type"), "application/jsonl")
                self.assertEqual(resp.header("Content-Length"), str(len(content)))
                cd = resp.header("Content-Disposition", "")
                self.assertTrue(cd.startswith("attachment"), cd)
                self.assertEqual(disposition_filename(cd), "data set.jsonl", cd)

    def test_content_of_empty_lines_file(self):
        c = STACK.new_client()
        content = b"\n\n" + batch_jsonl(1) + b"\n   \n"
        obj = c.upload_ok(content)
        self.assertEqual(obj["bytes"], len(content))
        self.assertEqual(c.content(obj["id"]).body, content)

    def test_delete(self):
        c = STACK.new_client()
        obj = c.upload_ok(batch_jsonl(2))
        resp = c.delete(obj["id"])
        self.assertEqual(resp.status, 200, resp.body)
        self.assertTrue(resp.header("Content-Type", "").startswith("application/json"))
        self.assertEqual(resp.json(), {"id": obj["id"], "object": "file", "deleted": True})
        self.assertNotIn(obj["id"], c.all_ids())

    def test_delete_twice_second_is_3302(self):
        c = STACK.new_client()
        obj = c.upload_ok(batch_jsonl(1))
        self.assertEqual(c.delete(obj["id"]).status, 200)
        self.assertError(c.delete(obj["id"]), 404, "INFERENCE_3302")

    def test_retrieve_and_content_after_delete_are_3302(self):
        c = STACK.new_client()
        obj = c.upload_ok(batch_jsonl(1))
        self.assertEqual(c.delete(obj["id"]).status, 200)
        self.assertError(c.retrieve(obj["id"]), 404, "INFERENCE_3302")
        self.assertError(c.content(obj["id"]), 404, "INFERENCE_3302")

    def test_delete_removes_content_from_disk(self):
        c = STACK.new_client()
        content = batch_jsonl(3, tag="disk-marker-7f3a")
        obj = c.upload_ok(content)

        def files_holding(marker):
            hits = []
            for root, _dirs, names in os.walk(STACK.data_dir):
                for n in names:
                    p = os.path.join(root, n)
                    if n.startswith("files.db"):
                        continue
                    try:
                        with open(p, "rb") as f:
                            if marker in f.read():
                                hits.append(p)
                    except OSError:
                        pass
            return hits

        self.assertTrue(files_holding(b"disk-marker-7f3a"), "content not found on disk at all")
        self.assertEqual(c.delete(obj["id"]).status, 200)
        self.assertEqual(files_holding(b"disk-marker-7f3a"), [], "content still on disk")


class ThreeOhTwoTest(ApiTestCase):
    def test_3302_identical_for_unknown_malformed_deleted_and_foreign(self):
        owner = STACK.new_client()
        other = STACK.new_client()
        foreign = owner.upload_ok(batch_jsonl(1))["id"]
        deleted = other.upload_ok(batch_jsonl(1))["id"]
        self.assertEqual(other.delete(deleted).status, 200)
        unknown = "file_" + "A" * (len(foreign) - len("file_"))
        cases = {"unknown": unknown, "malformed": "file_x!y", "malformed2": "nope",
                 "deleted": deleted, "foreign": foreign,
                 # longer than any id; the second longer than the worker's path buffer
                 "long": "file_" + "a" * 60, "very long": "file_" + "a" * 3000}
        for op in ("retrieve", "content", "delete"):
            shapes = {}
            for what, fid in cases.items():
                with self.subTest(op=op, case=what):
                    resp = getattr(other, op)(fid)
                    err = self.assertError(resp, 404, "INFERENCE_3302")
                    body = resp.body.decode().replace(fid, "<ID>").replace(
                        "(an id longer than any file id)", "<ID>")
                    shapes[what] = body
            self.assertEqual(len(set(shapes.values())), 1,
                             "%s: bodies differ beyond the id: %s" % (op, shapes))
        # the owner still has it
        self.assertEqual(owner.retrieve(foreign).status, 200)


class WebServerErrorTest(ApiTestCase):
    """Requests the web server refuses before any worker sees them still get
    SPEC's JSON error, not the server's HTML page. The status is the server's
    own (which differs between servers); the code is the nearest in SPEC."""

    def _raw(self, request):
        return Response.from_wire(raw_request(STACK, request))

    def assertServerError(self, request, allowed):
        """allowed: {status: code} the servers may answer."""
        resp = self._raw(request)
        self.assertIn(resp.status, allowed, resp)
        self.assertError(resp, resp.status, allowed[resp.status])

    def test_malformed_requests_get_json_errors(self):
        line = b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n"
        cases = {
            "encoded NUL in the path": (line % (b"/v1/files/%00", b""),
                                        {400: "VALIDATION_4001", 404: "INFERENCE_3302"}),
            "header over 64 KiB": (line % (b"/v1/files", b"X-Big: " + b"a" * 70000 + b"\r\n"),
                                   {400: "VALIDATION_4001", 431: "VALIDATION_4001"}),
            "URL of 100 KB": (line % (b"/v1/files/" + b"a" * 100000, b""),
                              {414: "VALIDATION_4001", 431: "VALIDATION_4001"}),
            "Content-Length not a number": (
                b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n"
                b"Connection: close\r\n\r\n", {400: "VALIDATION_4001"}),
            "unknown transfer coding": (
                b"POST /v1/files HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                b"Connection: close\r\n\r\n", {400: "VALIDATION_4001", 501: "VALIDATION_4001"}),
            "not a request line": (b"GARBAGE\r\n\r\n", {400: "VALIDATION_4001"}),
            # nginx and Apache with mod_fcgid (TraceEnable off) refuse TRACE
            # themselves; the others pass it to the worker. Never echoed.
            "TRACE": (b"TRACE /v1/files HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                      {405: "VALIDATION_4005"}),
        }
        for what, (request, allowed) in cases.items():
            with self.subTest(what):
                self.assertServerError(request, allowed)

    def test_trace_is_refused_with_the_routes_allow_header(self):
        # Whoever refuses TRACE (the worker, or nginx and Apache with mod_fcgid
        # themselves), the 405 names the methods the route takes, also for a
        # percent-encoded path (routed as decoded), and never echoes the
        # request. With Max-Forwards: 0, Apache's mod_proxy answered TRACE
        # (200, the request echoed with its key) and OPTIONS itself.
        key = STACK.new_client().key
        cases = {"/healthz": "GET, HEAD", "/v1/files": "GET, HEAD, POST",
                 "/v1/files/?limit=2": "GET, HEAD, POST",
                 "/v1/files/file_abc": "GET, HEAD, DELETE",
                 "/v1/files/file_abc/content/": "GET, HEAD",
                 "/%68ealthz": "GET, HEAD", "/v1/%66iles": "GET, HEAD, POST",
                 "/v1/files/file_%61bc": "GET, HEAD, DELETE",
                 "/v1/files/file_abc/%63ontent": "GET, HEAD",
                 "/v1/files%2F": "GET, HEAD, POST", "/healthz%2f": "GET, HEAD",
                 "/v1/files/file_abc%2F": "GET, HEAD, DELETE",
                 "http://127.0.0.1/v1/files": "GET, HEAD, POST",
                 "HTTP://127.0.0.1/v1/files/file_abc?x=1": "GET, HEAD, DELETE",
                 # an encoded '/' in the id makes it the content route
                 "/v1/files/file_abc%2Fcontent": "GET, HEAD"}
        # Apache refuses an encoded '/' in any path (404) before anything else.
        apache = (os.environ.get("FILES_API_SERVER") or "").startswith("apache")
        lighttpd = (os.environ.get("FILES_API_SERVER") or "lighttpd").startswith("lighttpd")
        for method in ("TRACE", "OPTIONS"):
            for extra in ("", "Max-Forwards: 0\r\n"):
                for path, allow in cases.items():
                    with self.subTest(method=method, path=path, extra=extra):
                        resp = self._raw(("%s %s HTTP/1.1\r\nHost: x\r\n%s"
                                          "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                                          % (method, path, extra, key)).encode())
                        if apache and "%2f" in path.lower():
                            self.assertError(resp, 404, "INFERENCE_3302")
                            continue
                        if lighttpd and path.lower().startswith("http"):
                            # its authority is not the Host header's: lighttpd's 400
                            self.assertError(resp, 400, "VALIDATION_4001")
                            continue
                        self.assertError(resp, 405, "VALIDATION_4005")
                        self.assertEqual(resp.header("Allow"), allow)
                        self.assertNotIn(key.encode(), resp.body)

    def test_options_asterisk_is_the_web_servers_own(self):
        # OPTIONS * asks about the server, not a resource: lighttpd and Apache
        # answer it (200, empty), nginx refuses the target (400). Never echoed.
        key = STACK.new_client().key
        server = os.environ.get("FILES_API_SERVER") or "lighttpd"
        for extra in ("", "Max-Forwards: 0\r\n"):
            with self.subTest(extra=extra):
                resp = self._raw(("OPTIONS * HTTP/1.1\r\nHost: x\r\n%sAuthorization: Bearer %s"
                                  "\r\nConnection: close\r\n\r\n" % (extra, key)).encode())
                if server == "nginx":
                    self.assertError(resp, 400, "VALIDATION_4001")
                else:
                    self.assertEqual(resp.status, 200, resp.body)
                    self.assertEqual(resp.body, b"")
                self.assertNotIn(key.encode(), resp.body)

    def test_an_expectation_the_server_does_not_meet_gets_a_json_error(self):
        # Apache refuses any Expect but 100-continue (417); the others ignore it.
        c = STACK.new_client()
        apache = (STACK.server or "").startswith("apache")
        for expect in ("foo", "100-continue, foo"):
            with self.subTest(expect=expect):
                resp = self._raw(("GET /v1/files HTTP/1.1\r\nHost: x\r\nExpect: %s\r\n"
                                  "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
                                  % (expect, c.key)).encode())
                if apache:
                    self.assertError(resp, 417, "VALIDATION_4001")
                else:
                    self.assertEqual(resp.status, 200, resp.body)

    def test_error_pages_are_not_a_route(self):
        request = (b"GET /_files_api_errors/400.json HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
        # lighttpd's error pages are files, not URLs: the path reaches the worker.
        lighttpd = (os.environ.get("FILES_API_SERVER") or "lighttpd").startswith("lighttpd")
        self.assertServerError(request, {404: "VALIDATION_4004" if lighttpd else "INFERENCE_3302"})


class HeadTest(ApiTestCase):
    def _raw_head(self, c, path):
        req = ("HEAD %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
               "Connection: close\r\n\r\n" % (path, c.key)).encode()
        raw = raw_request(STACK, req)
        head, sep, rest = raw.partition(b"\r\n\r\n")
        self.assertEqual(sep, b"\r\n\r\n", raw[:500])
        return head.decode("latin-1"), rest

    def test_head_on_every_get_route(self):
        c = STACK.new_client()
        content = batch_jsonl(3)
        obj = c.upload_ok(content)
        for path in ("/v1/files", "/v1/files/" + obj["id"], "/v1/files/%s/content" % obj["id"]):
            with self.subTest(path=path):
                get = c.request("GET", path)
                self.assertEqual(get.status, 200)
                head, rest = self._raw_head(c, path)
                self.assertRegex(head.split("\r\n")[0], r"^HTTP/1\.[01] 200 ")
                self.assertEqual(rest, b"", "HEAD sent a body")
                headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
                           for l in head.split("\r\n")[1:] if ":" in l}
                self.assertEqual(headers.get("content-type"), get.header("Content-Type"))
                if path.endswith("/content"):
                    self.assertEqual(headers.get("content-length"), str(len(content)))
                    self.assertTrue(headers.get("content-disposition", "").startswith("attachment"))

    def test_head_needs_auth_too(self):
        resp = STACK.client(None).request("HEAD", "/v1/files")
        self.assertEqual(resp.status, 401)
        self.assertEqual(resp.body, b"")


class RoutingTest(ApiTestCase):
    def test_trailing_slash_tolerated(self):
        c = STACK.new_client()
        content = batch_jsonl(2)
        obj = c.upload_ok(content)
        resp = c.request("GET", "/v1/files/")
        self.assertEqual(resp.status, 200, resp.body)
        self.assertEqual([f["id"] for f in resp.json()["data"]], [obj["id"]])
        resp = c.request("GET", "/v1/files/%s/" % obj["id"])
        self.assertEqual(resp.status, 200, resp.body)
        self.assertEqual(resp.json(), obj)
        resp = c.request("GET", "/v1/files/%s/content/" % obj["id"])
        self.assertEqual(resp.status, 200, resp.body)
        self.assertEqual(resp.body, content)
        ctype = "multipart/form-data; boundary=xYz"
        body = (b"--xYz\r\n" + file_part(content)[0] + b"\r\n" + content + b"\r\n--xYz\r\n"
                + field_part("purpose", "batch")[0] + b"\r\nbatch\r\n--xYz--\r\n")
        resp = c.request("POST", "/v1/files/", body=body, headers={"Content-Type": ctype})
        self.assertEqual(resp.status, 200, resp.body)
        resp = c.request("DELETE", "/v1/files/%s/" % obj["id"])
        self.assertEqual(resp.status, 200, resp.body)

    def test_unknown_routes_404_4004(self):
        c = STACK.new_client()
        for path in ("/", "/v1", "/v1/file", "/v1/filesx", "/v2/files", "/v1/files/file_x/contents",
                     "/v1/files/a/b/content", "/v1/files//content", "/v1/batches"):
            with self.subTest(path=path):
                self.assertError(c.request("GET", path), 404, "VALIDATION_4004", param=None)

    def test_an_id_glued_to_the_collection_names_no_file(self):
        # "/v1/filesX<id>" is not "/v1/files/<id>": no route, and the file stays.
        c = STACK.new_client()
        file_id = c.upload_ok(batch_jsonl(1))["id"]
        for method in ("GET", "DELETE"):
            for path in ("/v1/filesX" + file_id, "/v1/files_" + file_id + "/content"):
                with self.subTest(method=method, path=path):
                    self.assertError(c.request(method, path), 404, "VALIDATION_4004", param=None)
        self.assertEqual(c.retrieve(file_id).status, 200)

    def test_a_path_longer_than_the_workers_buffer_is_routed_whole(self):
        c = STACK.new_client()
        long_id = "file_" + "a" * 3000
        self.assertError(c.request("GET", "/v1/files/%s" % long_id), 404, "INFERENCE_3302")
        self.assertError(c.request("GET", "/v1/files/%s/content" % long_id), 404,
                         "INFERENCE_3302")
        self.assertError(c.request("GET", "/v1/files/%s/bogus" % long_id), 404,
                         "VALIDATION_4004", param=None)
        self.assertError(c.request("GET", "/v1/filesx/%s" % long_id), 404, "VALIDATION_4004",
                         param=None)
        resp = c.request("POST", "/v1/files/%s" % long_id, body=b"")
        self.assertError(resp, 405, "VALIDATION_4005")
        self.assertEqual(resp.header("Allow"), "GET, HEAD, DELETE")
        # ROUTE_MAX_PATH (2048 with its NUL): a path of 2047 bytes fits the
        # buffer, one of 2048 is routed from request memory; "/content" is
        # seen whole either way, also where the buffer would cut it.
        for length in (2047, 2048):
            for suffix, code in (("", "INFERENCE_3302"), ("/content", "INFERENCE_3302"),
                                 ("/bogus", "VALIDATION_4004")):
                path = "/v1/files/file_"
                path += "a" * (length - len(path) - len(suffix)) + suffix
                self.assertEqual(len(path), length)
                with self.subTest(length=length, suffix=suffix):
                    self.assertError(c.request("GET", path), 404, code)

    def test_the_messages_quote_a_path_up_to_127_bytes_and_a_method_up_to_15(self):
        # Longer ones are cut, ending in "...", so that a message stays short.
        c = STACK.new_client()
        for length in (127, 128):
            path = "/v1/nothing/"
            path += "p" * (length - len(path))
            quoted = path if length == 127 else path[:124] + "..."
            with self.subTest(path_bytes=length):
                err = self.assertError(c.request("GET", path), 404, "VALIDATION_4004")
                self.assertEqual(err["message"], "no route for GET %s" % quoted)
        # Registered methods (RFC 3253) of 15 and 16 bytes: every server passes them on.
        for method, quoted in (("VERSION-CONTROL", "VERSION-CONTROL"),
                               ("BASELINE-CONTROL", "BASELINE-CON...")):
            with self.subTest(method=method):
                err = self.assertError(c.request(method, "/v1/files"), 405, "VALIDATION_4005")
                self.assertEqual(err["message"], "method %s is not allowed on this route" % quoted)

    def test_unknown_route_without_key_is_still_404(self):
        self.assertError(STACK.client(None).request("GET", "/v1/nothing"), 404, "VALIDATION_4004")

    def test_wrong_method_405_with_allow(self):
        c = STACK.new_client()
        fid = c.upload_ok(batch_jsonl(1))["id"]
        cases = [
            ("PUT", "/v1/files", {"GET", "HEAD", "POST"}),
            ("DELETE", "/v1/files", {"GET", "HEAD", "POST"}),
            ("PATCH", "/v1/files", {"GET", "HEAD", "POST"}),
            ("POST", "/v1/files/" + fid, {"GET", "HEAD", "DELETE"}),
            ("PUT", "/v1/files/" + fid, {"GET", "HEAD", "DELETE"}),
            ("POST", "/v1/files/%s/content" % fid, {"GET", "HEAD"}),
            ("DELETE", "/v1/files/%s/content" % fid, {"GET", "HEAD"}),
        ]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                resp = c.request(method, path, body=b"" if method in ("PUT", "PATCH", "POST") else None)
                self.assertError(resp, 405, "VALIDATION_4005", param=None)
                allow = resp.header("Allow")
                self.assertIsNotNone(allow, "no Allow header")
                self.assertEqual({m.strip() for m in allow.split(",")}, allowed)
        # the file is untouched by the refused methods
        self.assertEqual(c.retrieve(fid).status, 200)

    def test_percent_encoded_path_is_decoded(self):
        c = STACK.new_client()
        obj = c.upload_ok(batch_jsonl(1))
        resp = c.request("GET", "/v1/%66iles/" + obj["id"])
        self.assertEqual(resp.status, 200, resp.body)
        self.assertEqual(resp.json()["id"], obj["id"])

    def test_absolute_form_request_target(self):
        # RFC 9112 §3.2.2: servers accept "GET http://host/path"; Apache passes
        # it on whole as REQUEST_URI.
        c = STACK.new_client()
        fid = c.upload_ok(batch_jsonl(1))["id"]
        raw = raw_request(STACK, ("GET http://127.0.0.1:%d/v1/files/%s?x=1 HTTP/1.1\r\n"
                                  "Host: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                                  "Connection: close\r\n\r\n"
                                  % (STACK.port, fid, STACK.port, c.key)).encode())
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), raw[:300])
        self.assertIn(fid.encode(), body)

    def test_query_string_ignored_for_routing(self):
        c = STACK.new_client()
        obj = c.upload_ok(batch_jsonl(1))
        resp = c.request("GET", "/v1/files/%s?foo=bar" % obj["id"])
        self.assertEqual(resp.status, 200, resp.body)
        resp = c.request("GET", "/v1/files/%s/content?x=1" % obj["id"])
        self.assertEqual(resp.status, 200, resp.body)
