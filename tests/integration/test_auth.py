"""Authentication, scopes and tenancy: AUTH_1007, AUTH_1008 (also revoked keys),
AUTH_1015, both key headers, and accounts that cannot see each other's files."""

import json
import os

from harness import ApiTestCase, Stack, batch_jsonl, raw_request, unique

STACK = None
SERVER = os.environ.get("FILES_API_SERVER") or "lighttpd"


def setUpModule():
    global STACK
    STACK = Stack(workers=2, name="auth").start()


def tearDownModule():
    if STACK:
        STACK.stop()


def every_route(c, fid):
    """(label, callable) for each endpoint, with fid as the file."""
    return [
        ("list", lambda: c.list()),
        ("upload", lambda: c.upload(batch_jsonl(1))),
        ("retrieve", lambda: c.retrieve(fid)),
        ("content", lambda: c.content(fid)),
        ("delete", lambda: c.delete(fid)),
    ]


class KeysAtRestTest(ApiTestCase):
    """Here, not in test_filesctl.py: each web server writes its own logs."""

    def test_keys_are_stored_as_hashes_and_never_logged(self):
        client = STACK.new_client()
        self.assertEqual(client.list().status, 200)
        secret = client.key.encode()
        for name in os.listdir(STACK.data_dir):
            path = os.path.join(STACK.data_dir, name)
            if os.path.isfile(path) and name.startswith("files.db"):
                with open(path, "rb") as f:
                    self.assertNotIn(secret, f.read(), name)
        self.assertNotIn(client.key, STACK.log_text())
        listing = STACK.filesctl("keys", "list").stdout
        self.assertNotIn(client.key, listing)
        self.assertIn(client.account, listing)


class KeyHeaderTest(ApiTestCase):
    def test_bearer_scheme_case_insensitive(self):
        c = STACK.new_client()
        for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
            with self.subTest(scheme=scheme):
                resp = c.request("GET", "/v1/files", auth="none",
                                 headers={"Authorization": "%s %s" % (scheme, c.key)})
                self.assertEqual(resp.status, 200, resp.body)

    def test_x_api_key_header(self):
        c = STACK.new_client(auth="x-api-key")
        obj = c.upload_ok(batch_jsonl(1))
        for label, call in every_route(c, obj["id"])[:4]:
            with self.subTest(route=label):
                self.assertEqual(call().status, 200)
        self.assertEqual(c.delete(obj["id"]).status, 200)

    def test_two_keys_are_one_too_many_on_every_server(self):
        # nginx passes a repeated header on as two parameters, lighttpd and
        # Apache join the values: either way, no key is picked by guess.
        a, b = STACK.new_client(), STACK.new_client()
        for headers in (("x-api-key: %s" % a.key, "x-api-key: %s" % b.key),
                        ("x-api-key: %s" % a.key, "x-api-key: %s" % a.key),
                        ("Authorization: Bearer %s" % a.key, "Authorization: Bearer %s" % b.key)):
            with self.subTest(headers=headers):
                raw = raw_request(STACK, ("GET /v1/files HTTP/1.1\r\nHost: x\r\n%s\r\n%s\r\n"
                                          "Connection: close\r\n\r\n" % headers).encode())
                head, _, body = raw.partition(b"\r\n\r\n")
                status = int(head.split()[1])
                error = json.loads(body)["error"]
                if (SERVER == "nginx" and headers[0].startswith("Authorization")
                        and (status, error["code"]) == (400, "VALIDATION_4001")):
                    continue  # nginx refuses a repeated Authorization itself
                self.assertEqual((status, error["code"]), (401, "AUTH_1008"), body)
                self.assertEqual(error["message"], "more than one API key was sent; send one")

    def test_no_key_is_1007_on_every_route(self):
        owner = STACK.new_client()
        fid = owner.upload_ok(batch_jsonl(1))["id"]
        anon = STACK.client(None)
        for label, call in every_route(anon, fid):
            with self.subTest(route=label):
                self.assertError(call(), 401, "AUTH_1007", param=None)
        self.assertEqual(owner.retrieve(fid).status, 200, "the file must survive")

    def test_malformed_authorization_is_1007(self):
        c = STACK.new_client()
        for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", c.key, "Token " + c.key):
            with self.subTest(authorization=value):
                resp = c.request("GET", "/v1/files", auth="none", headers={"Authorization": value})
                self.assertError(resp, 401, "AUTH_1007", param=None)

    def test_unknown_key_is_1008_on_every_route(self):
        owner = STACK.new_client()
        fid = owner.upload_ok(batch_jsonl(1))["id"]
        fake = STACK.client("sk-mel-" + "Z" * 48)
        for label, call in every_route(fake, fid):
            with self.subTest(route=label):
                self.assertError(call(), 401, "AUTH_1008", param=None)
        for key in ("x", "sk-mel-", "sk-mel-" + "a" * 300):
            with self.subTest(key=key[:20]):
                self.assertError(STACK.client(key).list(), 401, "AUTH_1008")
        self.assertError(STACK.client("sk-mel-nope", auth="x-api-key").list(), 401, "AUTH_1008")
        self.assertEqual(owner.retrieve(fid).status, 200)
        # AUTH_MAX_KEY: a key of 256 bytes is looked up, one of 257 is not.
        self.assertError(STACK.client("k" * 256).list(), 401, "AUTH_1008",
                         message="invalid or revoked API key")
        err = self.assertError(STACK.client("k" * 257).list(), 401, "AUTH_1008",
                               message="invalid API key")
        self.assertNotIn("revoked", err["message"])

    def test_revoked_key_is_1008(self):
        label = unique("revoke-me")
        account = unique("acct")
        key = STACK.create_key(account, "inference.*", name=label)
        keep = STACK.create_key(account, "inference.*", name=unique("keeper"))
        c = STACK.client(key)
        fid = c.upload_ok(batch_jsonl(1))["id"]
        self.assertEqual(c.list().status, 200)
        STACK.revoke_key(STACK.key_id_by_name(label))
        for label_, call in every_route(c, fid):
            with self.subTest(route=label_):
                self.assertError(call(), 401, "AUTH_1008", param=None)
        self.assertError(STACK.client(key, auth="x-api-key").list(), 401, "AUTH_1008")
        # the account's other key still works and still sees the file
        other = STACK.client(keep)
        self.assertEqual(other.retrieve(fid).status, 200)


class ScopeTest(ApiTestCase):
    def test_scopes_that_grant_access(self):
        for scopes in ("*", "inference.*", "inference.chat", "inference.embeddings",
                       "files.read,inference.chat", ""):
            with self.subTest(scopes=scopes):
                c = STACK.new_client(scopes=scopes)
                obj = c.upload_ok(batch_jsonl(1))
                self.assertEqual(c.list().status, 200)
                self.assertEqual(c.retrieve(obj["id"]).status, 200)
                self.assertEqual(c.content(obj["id"]).status, 200)
                self.assertEqual(c.delete(obj["id"]).status, 200)

    def test_scopes_without_inference_are_1015(self):
        owner = STACK.new_client()
        fid = owner.upload_ok(batch_jsonl(1))["id"]
        for scopes in ("files.read", "inference", "files.*", "inference.", "inferencex.chat",
                       "files.read,batch.write"):
            with self.subTest(scopes=scopes):
                # same account as the owner: the file exists, the key may not touch it
                c = STACK.client(STACK.create_key(owner.account, scopes))
                for label, call in every_route(c, fid):
                    with self.subTest(route=label):
                        err = self.assertError(call(), 403, "AUTH_1015", param=None)
                        details = err.get("details") or {}
                        self.assertIn("required_scope", details, err)
                        self.assertIsInstance(details["required_scope"], str)
                        self.assertTrue(details["required_scope"].startswith("inference"), err)
        self.assertEqual(owner.retrieve(fid).status, 200)
        self.assertEqual(len(owner.all_ids()), 1, "a 403 upload must not store a file")


class TenancyTest(ApiTestCase):
    def test_other_account_gets_404_everywhere_and_no_listing(self):
        a = STACK.new_client()
        b = STACK.new_client()
        content = batch_jsonl(2)
        fa = a.upload_ok(content)
        fb = b.upload_ok(batch_jsonl(1))
        self.assertError(b.retrieve(fa["id"]), 404, "INFERENCE_3302")
        self.assertError(b.content(fa["id"]), 404, "INFERENCE_3302")
        head = b.request("HEAD", "/v1/files/%s/content" % fa["id"])
        self.assertEqual(head.status, 404)
        self.assertError(b.delete(fa["id"]), 404, "INFERENCE_3302")
        self.assertEqual(b.all_ids(), [fb["id"]])
        self.assertEqual(b.all_ids(order="asc"), [fb["id"]])
        self.assertEqual(a.all_ids(), [fa["id"]])
        # A's file survived B's delete attempt, byte for byte
        self.assertEqual(a.retrieve(fa["id"]).json(), fa)
        self.assertEqual(a.content(fa["id"]).body, content)

    def test_after_cursor_of_other_account_is_rejected(self):
        a = STACK.new_client()
        b = STACK.new_client()
        fa = a.upload_ok(batch_jsonl(1))["id"]
        b.upload_ok(batch_jsonl(1))
        # another account's file is no cursor: the same answer as an unknown id
        self.assertError(b.list(after=fa), 400, "VALIDATION_4002", param="after")

    def test_every_key_of_the_account_sees_its_files(self):
        account = unique("acct")
        k1 = STACK.client(STACK.create_key(account, "inference.chat"))
        k2 = STACK.client(STACK.create_key(account, "*"), auth="x-api-key")
        k3 = STACK.client(STACK.create_key(account, ""))
        f = k1.upload_ok(batch_jsonl(1))["id"]
        for c in (k2, k3):
            self.assertEqual(c.all_ids(), [f])
            self.assertEqual(c.retrieve(f).status, 200)
        self.assertEqual(k3.delete(f).status, 200)
        self.assertError(k1.retrieve(f), 404, "INFERENCE_3302")
