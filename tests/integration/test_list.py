"""GET /v1/files: order, limit, has_more, first_id/last_id, purpose, the query
errors (VALIDATION_4002), and keyset pagination under concurrent writes."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import ApiTestCase, Stack, batch_jsonl

STACK = None


def setUpModule():
    global STACK
    STACK = Stack(workers=3, name="list").start()


def tearDownModule():
    if STACK:
        STACK.stop()


def upload_n(c, n, tag="f", parallel=1):
    """Uploads n files; returns their ids (in creation order only when
    parallel == 1)."""
    def one(i):
        return c.upload_ok(batch_jsonl(1, tag="%s%d" % (tag, i)), filename="%s%d.jsonl" % (tag, i))["id"]
    if parallel == 1:
        return [one(i) for i in range(n)]
    with ThreadPoolExecutor(parallel) as ex:
        return list(ex.map(one, range(n)))


class ListTest(ApiTestCase):
    def test_list_object_shape_and_default_desc(self):
        c = STACK.new_client()
        ids = upload_n(c, 3)  # same second: creation order must still hold
        page = c.list_ok()
        self.assertEqual(set(page), {"object", "data", "first_id", "last_id", "has_more"})
        self.assertEqual(page["object"], "list")
        self.assertEqual([f["id"] for f in page["data"]], ids[::-1])
        self.assertEqual(page["first_id"], ids[-1])
        self.assertEqual(page["last_id"], ids[0])
        self.assertIs(page["has_more"], False)
        for f in page["data"]:
            self.assertFileObject(f)
            self.assertEqual(c.retrieve(f["id"]).json(), f)
        self.assertEqual(c.list_ok(order="desc")["data"], page["data"])

    def test_order_asc(self):
        c = STACK.new_client()
        ids = upload_n(c, 4)
        page = c.list_ok(order="asc")
        self.assertEqual([f["id"] for f in page["data"]], ids)
        self.assertEqual(page["first_id"], ids[0])
        self.assertEqual(page["last_id"], ids[-1])
        self.assertIs(page["has_more"], False)

    def test_limit_and_has_more(self):
        c = STACK.new_client()
        ids = upload_n(c, 5)
        page = c.list_ok(limit=2)
        self.assertEqual([f["id"] for f in page["data"]], ids[::-1][:2])
        self.assertIs(page["has_more"], True)
        self.assertEqual((page["first_id"], page["last_id"]), (ids[4], ids[3]))
        page = c.list_ok(limit=5)
        self.assertEqual(len(page["data"]), 5)
        self.assertIs(page["has_more"], False, "has_more must be false when the page ends exactly")
        page = c.list_ok(limit=1, order="asc")
        self.assertEqual([f["id"] for f in page["data"]], [ids[0]])
        self.assertIs(page["has_more"], True)
        page = c.list_ok(limit=100)
        self.assertEqual(len(page["data"]), 5)
        self.assertIs(page["has_more"], False)

    def test_default_limit_is_20(self):
        c = STACK.new_client()
        ids = upload_n(c, 21, parallel=3)
        page = c.list_ok()
        self.assertEqual(len(page["data"]), 20)
        self.assertIs(page["has_more"], True)
        rest = c.list_ok(after=page["last_id"])
        self.assertEqual(len(rest["data"]), 1)
        self.assertIs(rest["has_more"], False)
        self.assertEqual({f["id"] for f in page["data"] + rest["data"]}, set(ids))

    def test_empty_page(self):
        c = STACK.new_client()
        page = c.list_ok()
        self.assertEqual(page, {"object": "list", "data": [], "first_id": None, "last_id": None,
                                "has_more": False})
        ids = upload_n(c, 2)
        for order, last in (("desc", ids[0]), ("asc", ids[1])):
            page = c.list_ok(after=last, order=order)
            self.assertEqual(page["data"], [])
            self.assertIsNone(page["first_id"])
            self.assertIsNone(page["last_id"])
            self.assertIs(page["has_more"], False)

    def test_purpose_filter(self):
        c = STACK.new_client()
        ids = upload_n(c, 3)
        page = c.list_ok(purpose="batch")
        self.assertEqual([f["id"] for f in page["data"]], ids[::-1])
        for other in ("fine-tune", "batch_output", "assistants", "Batch"):
            with self.subTest(purpose=other):
                page = c.list_ok(purpose=other)
                self.assertEqual(page["data"], [])
                self.assertIsNone(page["first_id"])
                self.assertIs(page["has_more"], False)
        # an exact match, also when empty (documented in the README)
        self.assertEqual(c.list_ok(purpose="")["data"], [])
        self.assertEqual(c.list_ok(query="purpose")["data"], [])
        page = c.list_ok(purpose="batch", limit=2, order="asc")
        self.assertEqual([f["id"] for f in page["data"]], ids[:2])
        self.assertIs(page["has_more"], True)
        page = c.list_ok(purpose="batch", limit=2, order="asc", after=page["last_id"])
        self.assertEqual([f["id"] for f in page["data"]], ids[2:])
        # and newest first: the cursor itself is never on the next page
        page = c.list_ok(purpose="batch", limit=2)
        self.assertEqual([f["id"] for f in page["data"]], ids[:0:-1])
        self.assertIs(page["has_more"], True)
        page = c.list_ok(purpose="batch", limit=2, after=page["last_id"])
        self.assertEqual([f["id"] for f in page["data"]], ids[:1])
        self.assertIs(page["has_more"], False)

    def test_unknown_query_parameters_ignored(self):
        c = STACK.new_client()
        ids = upload_n(c, 1)
        resp = c.list(query="foo=bar&limit=5&x=")
        self.assertEqual(resp.status, 200, resp.body)
        self.assertEqual([f["id"] for f in resp.json()["data"]], ids)

    def test_a_repeated_parameter_takes_its_last_value_and_only_that_is_checked(self):
        c = STACK.new_client()
        ids = upload_n(c, 3)  # desc: f2 f1 f0
        for query, expected in (("limit=abc&limit=2", ids[:0:-1]),
                                ("limit=0&limit=&limit=1", ids[2:]),
                                ("limit=1&limit=2", ids[:0:-1]),
                                ("order=bogus&order=asc", ids),
                                ("after=nope&after=%s" % ids[2], ids[1::-1]),
                                ("after=%%zz&after=%s&order=asc" % ids[0], ids[1:]),
                                ("purpose=other&purpose=batch", ids[::-1]),
                                ("purpose=batch&purpose=other", [])):
            with self.subTest(query):
                resp = c.list(query=query)
                self.assertEqual(resp.status, 200, resp.body)
                self.assertEqual([f["id"] for f in resp.json()["data"]], expected)
        for query, param in (("limit=2&limit=abc", "limit"), ("order=asc&order=up", "order"),
                             ("after=%s&after=nope" % ids[0], "after"),
                             ("after=%s&after=%%zz" % ids[0], "after")):
            with self.subTest(query):
                self.assertError(c.list(query=query), 400, "VALIDATION_4002", param=param)

    def test_pagination_visits_every_file_once(self):
        c = STACK.new_client()
        ids = upload_n(c, 23, parallel=3)
        for order in ("desc", "asc"):
            for limit in (1, 4, 23, 100):
                with self.subTest(order=order, limit=limit):
                    seen = c.all_ids(order=order, limit=limit)
                    self.assertEqual(len(seen), len(set(seen)))
                    self.assertEqual(set(seen), set(ids))
        asc = c.all_ids(order="asc", limit=5)
        self.assertEqual(c.all_ids(order="desc", limit=7), asc[::-1])

    def test_after_a_deleted_file_still_works(self):
        c = STACK.new_client()
        ids = upload_n(c, 6)  # desc: f5 f4 f3 f2 f1 f0
        page = c.list_ok(limit=2)
        self.assertEqual(page["last_id"], ids[4])
        self.assertEqual(c.delete(ids[4]).status, 200)
        page = c.list_ok(limit=2, after=ids[4])
        self.assertEqual([f["id"] for f in page["data"]], [ids[3], ids[2]])
        self.assertIs(page["has_more"], True)
        # and in ascending order
        self.assertEqual(c.delete(ids[1]).status, 200)
        page = c.list_ok(limit=10, after=ids[1], order="asc")
        self.assertEqual([f["id"] for f in page["data"]], [ids[2], ids[3], ids[5]])
        self.assertIs(page["has_more"], False)


class ListParameterErrorTest(ApiTestCase):
    def test_bad_limit(self):
        c = STACK.new_client()
        upload_n(c, 1)
        for value in ("0", "101", "abc", "-1", "1.5", "%205", "5x", "1e1", "99999999999999999999",
                      "%2B5", ""):
            with self.subTest(limit=value):
                self.assertError(c.list(query="limit=" + value), 400, "VALIDATION_4002",
                                 param="limit")

    def test_bad_order(self):
        c = STACK.new_client()
        for value in ("bad", "ASC", "descending", "asc ", ""):
            with self.subTest(order=value):
                self.assertError(c.list(query="order=" + value.replace(" ", "%20")), 400,
                                 "VALIDATION_4002", param="order")

    def test_malformed_after(self):
        c = STACK.new_client()
        fid = upload_n(c, 1)[0]
        for value in ("nope", "file_", "file_abc", fid + "x", fid[:-1], "file-" + fid[5:],
                      "%zz", "file_%41", ""):
            with self.subTest(after=value):
                self.assertError(c.list(query="after=" + value), 400, "VALIDATION_4002",
                                 param="after")

    def test_an_encoded_control_or_non_utf8_byte(self):
        # lighttpd refuses them in any part of the URL (url-ctrls-reject, its
        # UTF-8 check), before the worker: no param. The others pass them on.
        c = STACK.new_client()
        lighttpd = (STACK.server or "lighttpd").startswith("lighttpd")
        for name, value in (("after", "%00"), ("after", "%1f"), ("after", "%7f"), ("after", "%ff"),
                            ("after", "%c0"), ("limit", "1%00"), ("purpose", "batch%00")):
            with self.subTest(name=name, value=value):
                resp = c.list(query=name + "=" + value)
                if lighttpd:
                    self.assertError(resp, 400, "VALIDATION_4001", param=None,
                                     message="the web server could not parse")
                else:
                    self.assertError(resp, 400, "VALIDATION_4002", param=name)

    def test_unknown_after(self):
        c = STACK.new_client()
        fid = upload_n(c, 1)[0]
        unknown = "file_" + "Q" * (len(fid) - 5)
        self.assertError(c.list(after=unknown), 400, "VALIDATION_4002", param="after")

    def test_a_parameter_value_is_read_up_to_255_bytes(self):
        # ROUTE_MAX_QUERY_VALUE (256, with its NUL): 255 bytes are a value
        # like any other (this purpose matches nothing), 256 are refused.
        c = STACK.new_client()
        upload_n(c, 1)
        self.assertEqual(c.list_ok(purpose="b" * 255)["data"], [])
        self.assertError(c.list(purpose="b" * 256), 400, "VALIDATION_4002", param="purpose")

    def test_an_unknown_parameter_is_ignored_up_to_and_past_63_bytes_of_name(self):
        # ROUTE_MAX_QUERY_KEY (64, with its NUL): a name of 63 bytes is read
        # whole, one of 64 is too long; both are unknown, so ignored, and the
        # parameters after them are still read.
        c = STACK.new_client()
        upload_n(c, 2)
        for name in ("k" * 63, "k" * 64):
            with self.subTest(name_bytes=len(name)):
                self.assertEqual(len(c.list_ok(query=name + "=1&limit=1")["data"]), 1)
                self.assertError(c.list(query=name + "=1&limit=0"), 400, "VALIDATION_4002",
                                 param="limit")

    def test_error_names_the_first_bad_parameter_only_once(self):
        c = STACK.new_client()
        err = self.assertError(c.list(query="limit=0&order=asc"), 400, "VALIDATION_4002")
        self.assertEqual(err["param"], "limit")
        err = self.assertError(c.list(query="limit=10&order=up"), 400, "VALIDATION_4002")
        self.assertEqual(err["param"], "order")


class ConcurrentPaginationTest(ApiTestCase):
    """Walk all pages with `after` while another thread adds and deletes files:
    every file present for the whole walk appears exactly once; no file twice."""

    STABLE = 30
    VICTIMS = 15
    ADDS = 20

    def walk_while_mutating(self, order):
        c = STACK.new_client()
        writer = STACK.client(c.key)
        # One after another, so that the test knows the order of creation
        # without asking the service it checks.
        created = upload_n(c, self.STABLE + self.VICTIMS, tag="s")
        self.assertEqual(c.all_ids(order="asc"), created)
        # every third file is a victim: deletions happen all over the range
        victims = created[2::3][: self.VICTIMS]
        stable = [i for i in created if i not in victims]
        stop = threading.Event()
        errors, added, deleted = [], [], []
        # strict alternation: page, one round of writes, page, one round, ...
        page_done, round_done = threading.Semaphore(0), threading.Semaphore(0)

        def mutate():
            # bounded, so that an ascending walk (which sees the new files) ends;
            # in ascending order the victims are exactly the pages' last ids, so
            # the walk also continues from cursors deleted under it
            pending = list(victims)
            try:
                for n in range(self.ADDS):
                    if not page_done.acquire(timeout=10) or stop.is_set():
                        break
                    fid = writer.upload_ok(batch_jsonl(1, tag="new%d" % n))["id"]
                    added.append(fid)
                    if pending:
                        v = pending.pop(0 if n % 2 else len(pending) // 2)
                        if writer.delete(v).status == 200:
                            deleted.append(v)
                    if n % 3 == 2:
                        a = added[len(added) // 2]
                        if a not in deleted and writer.delete(a).status == 200:
                            deleted.append(a)
                    round_done.release()
            except Exception as e:  # reported by the test
                errors.append(e)
            finally:
                writer_done.set()
                round_done.release()

        writer_done = threading.Event()

        def writer_step():
            """Lets the writer do one round and waits for it (unless it is done)."""
            page_done.release()
            if not writer_done.is_set():
                round_done.acquire(timeout=10)

        t = threading.Thread(target=mutate, daemon=True)
        t.start()
        try:
            seen, after, pages = [], None, 0
            writer_step()
            while True:
                params = {"limit": 3, "order": order}
                if after:
                    params["after"] = after
                page = c.list_ok(**params)
                pages += 1
                seen += [f["id"] for f in page["data"]]
                if page["data"]:
                    self.assertEqual(page["first_id"], page["data"][0]["id"])
                    self.assertEqual(page["last_id"], page["data"][-1]["id"])
                if not page["has_more"]:
                    break
                self.assertTrue(page["data"], "has_more with an empty page")
                after = page["last_id"]
                self.assertLess(pages, 1000, "pagination does not end")
                writer_step()  # a page, then at least one add and delete, and so on
            during = (len(added), len(deleted))  # mutations while the walk ran
        finally:
            stop.set()
            page_done.release()  # wake the writer so that it sees stop
            t.join(60)
        self.assertFalse(errors, errors)
        self.assertGreaterEqual(min(during), 3,
                                "the writer barely ran during the walk (added, deleted) = %s"
                                % (during,))
        dupes = sorted({i for i in seen if seen.count(i) > 1})
        self.assertEqual(dupes, [], "files listed twice")
        missing = [i for i in stable if i not in seen]
        self.assertEqual(missing, [], "files present for the whole walk were skipped")
        # what was seen is in the requested order of creation
        rank = {fid: n for n, fid in enumerate(created)}
        seen_old = [rank[i] for i in seen if i in rank]
        self.assertEqual(seen_old, sorted(seen_old, reverse=(order == "desc")))

    def test_walk_desc_while_adding_and_deleting(self):
        self.walk_while_mutating("desc")

    def test_walk_asc_while_adding_and_deleting(self):
        self.walk_while_mutating("asc")
