"""JSONL validation of uploads (INFERENCE_3303): strict JSON, strict UTF-8, one
object per line, blank lines, CRLF, BOM, nesting, and the batch request rules
with details.reason_code. Each case is its own test method (built from tables).

Columns are 1-based byte columns of the offending byte. Where two adjacent
bytes are both a fair answer (the lead byte of a bad UTF-8 sequence or the
byte after it; a backslash or the character after it), either is accepted.
"""

import json
import re

from harness import ApiTestCase, Stack, batch_line

STACK = None


def setUpModule():
    global STACK
    STACK = Stack(workers=2, name="jsonl").start()


def tearDownModule():
    if STACK:
        STACK.stop()


def L(cid, **kw):
    """A valid batch request line (bytes, no newline)."""
    return batch_line(cid, **kw).encode()


def body_line(body_json, cid="x"):
    """A batch line whose body is the given raw JSON text (bytes)."""
    return (b'{"custom_id":"' + cid.encode() + b'","method":"POST","url":"/v1/chat/completions",'
            b'"body":' + body_json + b"}")


def col(line, marker, plus=0):
    i = line.index(marker)
    return i + 1 + plus


# name -> (content, line, columns (int, tuple of ints, or None for "any"), message regex)
_syntax = {}


def syntax(name, content, line, columns, message=None):
    _syntax[name] = (content, line, columns, message)


_a = L("a")

_l = b'{"custom_id" "b","method":"POST"}'
syntax("missing_colon", _a + b"\n" + _l + b"\n", 2, col(_l, b'"b"'), r"expected")
_l = body_line(b'{"model":"m",}')
syntax("trailing_comma_object", _l + b"\n", 1, col(_l, b",}", 1), r"(?i)trailing comma")
_l = _a[:-1] + b",}"
syntax("trailing_comma_top_level", _l + b"\n", 1, len(_l), r"(?i)trailing comma")
_l = body_line(b'{"stop":["a","b",]}')
syntax("trailing_comma_array", _l + b"\n", 1, col(_l, b",]", 1), r"(?i)trailing comma")
_l = b'{/* note */"custom_id":"a"}'
syntax("block_comment", _l + b"\n", 1, 2, r"(?i)comment")
_l = body_line(b'{"model":"m" // note\n}')
syntax("line_comment", _l + b"\n", 1, col(_l, b"//"), r"(?i)comment")
_l = b"{'custom_id':'a','method':'POST'}"
syntax("single_quotes", _l + b"\n", 1, 2, r"(?i)double quote")
_l = body_line(b'{"model":\'m\'}')
syntax("single_quoted_value", _l + b"\n", 1, col(_l, b"'m'"), None)
_l = body_line(b'{"temperature":NaN}')
syntax("nan", _l + b"\n", 1, col(_l, b"NaN"), None)
_l = body_line(b'{"temperature":Infinity}')
syntax("infinity", _l + b"\n", 1, col(_l, b"Infinity"), None)
_l = body_line(b'{"temperature":-Infinity}')
syntax("minus_infinity", _l + b"\n", 1, (col(_l, b"-Inf"), col(_l, b"-Inf", 1)), None)
_l = body_line(b'{"max_tokens":012}')
syntax("leading_zero", _l + b"\n", 1, (col(_l, b"012"), col(_l, b"012", 1)), r"(?i)leading zero")
_l = body_line(b'{"max_tokens":-01}')
syntax("leading_zero_negative", _l + b"\n", 1, (col(_l, b"-01", 1), col(_l, b"-01", 2)),
       r"(?i)leading zero")
_l = body_line(b'{"t":1.}')
syntax("number_trailing_dot", _l + b"\n", 1, (col(_l, b"1.}", 2), col(_l, b"1.}", 1)), None)
_l = body_line(b'{"t":.5}')
syntax("number_leading_dot", _l + b"\n", 1, col(_l, b".5"), None)
_l = body_line(b'{"t":+1}')
syntax("number_plus", _l + b"\n", 1, col(_l, b"+1"), None)
_l = body_line(b'{"t":0x10}')
syntax("number_hex", _l + b"\n", 1, col(_l, b"x10"), None)
_l = body_line(b'{"t":True}')
syntax("literal_capitalised", _l + b"\n", 1, (col(_l, b"True"), col(_l, b"True", 1)), None)
_l = body_line(b'{"content":"a\tb"}')
syntax("raw_tab_in_string", _l + b"\n", 1, col(_l, b"\t"), r"(?i)control character")
_l = body_line(b'{"content":"a\x01b"}')
syntax("raw_u0001_in_string", _l + b"\n", 1, col(_l, b"\x01"), r"(?i)control character")
_l = body_line(b'{"content":"a\x00b"}')
syntax("raw_nul_in_string", _l + b"\n", 1, col(_l, b"\x00"), r"(?i)control character")
_l = body_line(b'{"content":"a\rb"}')
syntax("raw_cr_in_string", _l + b"\n", 1, col(_l, b"\rb"), None)
_l = body_line(b'{"content":"a\\qb"}')
syntax("invalid_escape", _l + b"\n", 1, (col(_l, b"\\q"), col(_l, b"\\q", 1)), r"(?i)escape")
_l = body_line(b'{"content":"a\\x41"}')
syntax("invalid_escape_x", _l + b"\n", 1, (col(_l, b"\\x"), col(_l, b"\\x", 1)), r"(?i)escape")
_l = body_line(b'{"content":"\\u12G4"}')
syntax("invalid_unicode_escape", _l + b"\n", 1,
       (col(_l, b"\\u"), col(_l, b"\\u", 1), col(_l, b"G4")), r"(?i)escape|hex")
_l = body_line(b'{"content":"\\ud800x"}')
syntax("lone_high_surrogate_escape", _l + b"\n", 1, None, r"(?i)surrogate")
_l = body_line(b'{"content":"\\udc00"}')
syntax("lone_low_surrogate_escape", _l + b"\n", 1, None, r"(?i)surrogate")
_l = body_line(b'{"content":"a\xc0\xafb"}')
syntax("utf8_overlong_2byte", _l + b"\n", 1, (col(_l, b"\xc0"), col(_l, b"\xc0", 1)), r"UTF-8")
_l = body_line(b'{"content":"a\xe0\x80\xafb"}')
syntax("utf8_overlong_3byte", _l + b"\n", 1, (col(_l, b"\xe0"), col(_l, b"\xe0", 1)), r"UTF-8")
_l = body_line(b'{"content":"a\xf0\x80\x80\xafb"}')
syntax("utf8_overlong_4byte", _l + b"\n", 1, (col(_l, b"\xf0"), col(_l, b"\xf0", 1)), r"UTF-8")
_l = body_line(b'{"content":"a\xed\xa0\x80b"}')
syntax("utf8_surrogate", _l + b"\n", 1, (col(_l, b"\xed"), col(_l, b"\xed", 1)), r"UTF-8")
_l = body_line(b'{"content":"a\xf4\x90\x80\x80b"}')
syntax("utf8_above_10ffff", _l + b"\n", 1, (col(_l, b"\xf4"), col(_l, b"\xf4", 1)), r"UTF-8")
_l = body_line(b'{"content":"a\xf5\x80\x80\x80b"}')
syntax("utf8_f5_lead", _l + b"\n", 1, col(_l, b"\xf5"), r"UTF-8")
_l = body_line(b'{"content":"a\xffb"}')
syntax("utf8_ff", _l + b"\n", 1, col(_l, b"\xff"), r"UTF-8")
_l = body_line(b'{"content":"a\x80b"}')
syntax("utf8_lone_continuation", _l + b"\n", 1, col(_l, b"\x80"), r"UTF-8")
_l = body_line(b'{"content":"a\xc3"}')
syntax("utf8_truncated", _l + b"\n", 1, (col(_l, b"\xc3"), col(_l, b"\xc3", 1)), r"UTF-8")
_l = body_line(b'{"content":"ok"}')[:-1] + b',"k\xe9y":1}'
syntax("utf8_latin1_in_member_name", _l + b"\n", 1, (col(_l, b"\xe9"), col(_l, b"\xe9", 1)),
       r"UTF-8")
syntax("array_line", _a + b"\n[1,2]\n", 2, 1, r"(?i)object")
syntax("array_of_object_line", b'[' + _a + b"]\n", 1, 1, r"(?i)object")
syntax("number_line", _a + b"\n42\n", 2, 1, r"(?i)object")
syntax("string_line", b'"hello"\n', 1, 1, r"(?i)object")
syntax("null_line", _a + b"\nnull\n", 2, 1, r"(?i)object")
syntax("garbage_line", b"hello world\n", 1, 1, None)
_l = L("a") + b" " + L("b")
syntax("two_objects_on_a_line", _l + b"\n", 1, len(L("a")) + 2, r"(?i)one object|exactly one")
_l = L("a") + L("b")
syntax("two_objects_no_space", _l + b"\n", 1, len(L("a")) + 1, r"(?i)one object|exactly one")
_l = L("a") + b" x"
syntax("trailing_garbage", _l + b"\n", 1, len(L("a")) + 2, None)
syntax("bom", b"\xef\xbb\xbf" + _a + b"\n", 1, 1, r"(?i)byte[- ]order mark")
syntax("bom_alone", b"\xef\xbb\xbf", 1, 1, r"(?i)byte[- ]order mark")
syntax("empty_file", b"", 1, None, r"(?i)no (json )?objects?|empty")
syntax("whitespace_only_file", b" \n\t\n\r\n   \n", None, None, r"(?i)no (json )?objects?|empty")
syntax("newlines_only_file", b"\n\n\n", None, None, r"(?i)no (json )?objects?|empty")
syntax("blank_lines_still_count", b"\n" + _a + b"\n\n   \n\t\r\n" + b"[1]\n", 6, 1, r"(?i)object")
syntax("crlf_lines_count", _a + b"\r\n" + L("b") + b"\r\n" + b"{bad}\r\n", 3, 2, None)
syntax("object_across_lines", b'{"custom_id":"a",\n"method":"POST"}\n', 1, None,
       r"(?i)line|closed")
syntax("unterminated_at_eof", b'{"custom_id":"a"', 1, None, None)
syntax("string_unterminated_at_eof", b'{"custom_id":"a', 1, None, None)
syntax("lone_cr_inside_line", _a[:5] + b"\r" + _a[5:] + b"\n", 1, 6, None)
syntax("vertical_tab_not_json_whitespace", b"\x0b" + _a + b"\n", 1, 1, None)
syntax("nbsp_not_json_whitespace", b"\xc2\xa0" + _a + b"\n", 1, 1, None)
syntax("error_on_line_5000", b"".join(L("r%d" % i) + b"\n" for i in range(4999)) + b"{,}\n",
       5000, 2, None)


def _nest(depth):
    """A batch line whose nesting depth (objects + arrays, the line's object
    counting 1) is exactly depth: line object, body object, then arrays."""
    arrays = depth - 2
    return body_line(b'{"x":' + b"[" * arrays + b"]" * arrays + b"}")


syntax("nesting_513_rejected", _nest(513) + b"\n", 1, col(_nest(513), b"[" * 511, 510),
       r"(?i)nest|deep|depth")
syntax("nesting_10000_rejected", _nest(10000) + b"\n", 1, col(_nest(10000), b"[" * 511, 510),
       r"(?i)nest|deep|depth")


# Accepted: name -> content
_ok = {
    "single_line": _a + b"\n",
    "last_line_without_newline": _a + b"\n" + L("b"),
    "single_line_without_newline": _a,
    "crlf_line_ends": _a + b"\r\n" + L("b") + b"\r\n",
    "crlf_without_final_newline": _a + b"\r\n" + L("b"),
    "blank_and_whitespace_lines_skipped": b"\n\n" + _a + b"\n\n   \n\t\n\r\n" + L("b") + b"\n\n \n",
    "whitespace_around_object": b" \t" + _a + b" \t\r\n",
    "nesting_512_accepted": _nest(512) + b"\n",
    "escapes_and_unicode": body_line(
        '{"s":"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00 \\u0000","raw":"é 日本 🚀 \u007f"}'.encode()) + b"\n",
    "numbers": body_line(b'{"a":0,"b":-0,"c":1.5,"d":-1.5e10,"e":1E+2,"f":2e-3,"g":0.0,'
                         b'"h":123456789012345678901234567890}') + b"\n",
    "literals": body_line(b'{"a":true,"b":false,"c":null,"d":[],"e":{}}') + b"\n",
    "other_members_allowed": L("a", extra={"metadata": {"k": "v"}, "note": 1}) + b"\n",
    "embeddings_url": L("a", url="/v1/embeddings") + b"\n" + L("b", url="/v1/embeddings") + b"\n",
    "images_url": L("a", url="/v1/images/generations") + b"\n",
    "speech_url": L("a", url="/v1/audio/speech") + b"\n",
    "member_order_free": b'{"body":{},"url":"/v1/chat/completions","method":"POST","custom_id":"z"}\n',
    "long_line_over_256k": body_line(b'{"content":"' + b"y" * 600000 + b'"}') + b"\n" + _a + b"\n",
    "many_lines": b"".join(L("m%d" % i) + b"\n" for i in range(20000)),
    # past the 16,384 custom_ids the validator keeps in memory (the rest go to
    # a scratch file and are compared at the end)
    "lines_beyond_memory_ids": b"".join(L("m%d" % i) + b"\n" for i in range(40000)),
}

MEMORY_IDS = 16384
_far = [L("s%d" % i) for i in range(40000)]


# Batch rules: name -> (content, line, reason_code, message regex)
_batch = {
    "duplicate_custom_id": ([L("a"), L("b"), L("a")], 3, "duplicate_custom_id", r"(?i)custom_id"),
    "duplicate_custom_id_far_apart": ([L("dup")] + [L("f%d" % i) for i in range(3000)] + [L("dup")],
                                      3002, "duplicate_custom_id", None),
    # both uses past the ids kept in memory: found at the end, naming the first
    "duplicate_custom_id_both_spilled": (_far[:39999] + [L("s%d" % (MEMORY_IDS + 100))], 40000,
                                         "duplicate_custom_id", r"already used by line %d;"
                                         % (MEMORY_IDS + 101)),
    # the first use in memory, the second past it: found at once, quoted
    "duplicate_custom_id_of_one_in_memory": (_far[:39999] + [L("s5")], 40000,
                                             "duplicate_custom_id", r'"s5"'),
    # at the limit: line 16,384's id is the last kept in memory (quoted at
    # once), line 16,385's the first spilled (found at the end)
    "duplicate_custom_id_of_the_last_in_memory": (
        _far[:20000] + [L("s%d" % (MEMORY_IDS - 1))], 20001, "duplicate_custom_id",
        r'"s%d"' % (MEMORY_IDS - 1)),
    "duplicate_custom_id_of_the_first_spilled": (
        _far[:20000] + [L("s%d" % MEMORY_IDS)], 20001, "duplicate_custom_id",
        r"already used by line %d;" % (MEMORY_IDS + 1)),
    # a spilled duplicate comes before a syntax error further on: it is the first problem
    "duplicate_custom_id_spilled_before_bad_line": (
        _far[:36000] + [L("s%d" % (MEMORY_IDS + 10))] + _far[36001:38000] + [b"{oops"],
        36001, "duplicate_custom_id", r"already used by line %d" % (MEMORY_IDS + 11)),
    "missing_custom_id": ([b'{"method":"POST","url":"/v1/chat/completions","body":{}}'], 1,
                          "missing_required_parameter", r"custom_id"),
    "empty_custom_id": ([L("")], 1, "missing_required_parameter", r"custom_id"),
    "custom_id_not_string": ([b'{"custom_id":7,"method":"POST","url":"/v1/chat/completions","body":{}}'],
                             1, "missing_required_parameter", r"custom_id"),
    "missing_method": ([b'{"custom_id":"a","url":"/v1/chat/completions","body":{}}'], 1,
                       "missing_required_parameter", r"method"),
    "missing_url": ([b'{"custom_id":"a","method":"POST","body":{}}'], 1,
                    "missing_required_parameter", r"url"),
    "missing_body": ([L("a"), b'{"custom_id":"b","method":"POST","url":"/v1/chat/completions"}'], 2,
                     "missing_required_parameter", r"body"),
    "invalid_method_get": ([L("a", method="GET")], 1, "invalid_method", r"POST"),
    "invalid_method_lowercase": ([L("a", method="post")], 1, "invalid_method", None),
    "invalid_method_number": ([b'{"custom_id":"a","method":1,"url":"/v1/chat/completions","body":{}}'],
                              1, "invalid_method", None),
    "invalid_url": ([L("a", url="/v1/completions")], 1, "invalid_url", r"url"),
    "invalid_url_absolute": ([L("a", url="https://api.openai.com/v1/chat/completions")], 1,
                             "invalid_url", None),
    "invalid_url_not_string": ([b'{"custom_id":"a","method":"POST","url":5,"body":{}}'], 1,
                               "invalid_url", None),
    "url_mismatch": ([L("a"), L("b"), L("c", url="/v1/embeddings")], 3, "url_mismatch", r"url"),
    "invalid_body_string": ([L("a", body="hello")], 1, "invalid_body", r"body"),
    "invalid_body_array": ([L("a", body=[1])], 1, "invalid_body", None),
    "invalid_body_null": ([b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":null}'],
                          1, "invalid_body", None),
}


class JsonlTest(ApiTestCase):
    def setUp(self):
        self.c = STACK.new_client()

    def assert_rejected(self, content, line, columns, message):
        resp = self.c.upload(content)
        err = self.assertError(resp, 400, "INFERENCE_3303")
        self.assertIn(err["param"], (None, "file"), err)
        details = err.get("details") or {}
        self.assertIsInstance(details.get("line"), int, err)
        self.assertIsInstance(details.get("column"), int, err)
        self.assertGreaterEqual(details["line"], 1, err)
        self.assertGreaterEqual(details["column"], 1, err)
        if line is not None:
            self.assertEqual(details["line"], line, err)
        if columns is not None:
            allowed = columns if isinstance(columns, tuple) else (columns,)
            self.assertIn(details["column"], allowed, err)
        # the message names the place and says what is wrong; details carry the reason too
        self.assertRegex(err["message"], r"\bline %d\b" % details["line"], err)
        self.assertRegex(err["message"], r"\bcolumn %d\b" % details["column"], err)
        reasons = [v for k, v in details.items()
                   if isinstance(v, str) and k != "reason_code" and len(v) > 5]
        self.assertTrue(any(r in err["message"] for r in reasons),
                        "no human reason in details that the message carries: %s" % err)
        if message is not None:
            self.assertRegex(err["message"], message, err)
        self.assertEqual(self.c.all_ids(), [], "a rejected upload left a file behind")
        return err

    def assert_accepted(self, content):
        resp = self.c.upload(content)
        self.assertEqual(resp.status, 200, resp.body[:600])
        obj = resp.json()
        self.assertEqual(obj["bytes"], len(content))
        self.assertEqual(self.c.content(obj["id"]).body, content)


def _add(name, fn):
    fn.__name__ = name
    setattr(JsonlTest, name, fn)


for _name, (_content, _line, _cols, _msg) in _syntax.items():
    _add("test_rejects_" + _name,
         lambda self, c=_content, l=_line, k=_cols, m=_msg: self.assert_rejected(c, l, k, m))

for _name, _content in _ok.items():
    _add("test_accepts_" + _name, lambda self, c=_content: self.assert_accepted(c))


def _batch_case(self, lines, line, code, message):
    content = b"\n".join(lines) + b"\n"
    err = self.assert_rejected(content, line, None, message)
    self.assertEqual(err["details"].get("reason_code"), code, err)
    self.assertLessEqual(err["details"]["column"], len(lines[line - 1]) + 1, err)


for _name, (_lines, _line, _code, _msg) in _batch.items():
    _add("test_batch_" + _name,
         lambda self, a=_lines, l=_line, c=_code, m=_msg: _batch_case(self, a, l, c, m))


class SyntaxErrorsHaveNoReasonCodeTest(ApiTestCase):
    def test_syntax_error_has_no_batch_reason_code(self):
        c = STACK.new_client()
        err = c.upload(b"{,}\n").json()["error"]
        self.assertEqual(err["code"], "INFERENCE_3303")
        self.assertNotIn(err["details"].get("reason_code"),
                         ("duplicate_custom_id", "missing_required_parameter", "invalid_method",
                          "invalid_url", "url_mismatch", "invalid_body"), err)

    def test_first_problem_is_reported(self):
        c = STACK.new_client()
        content = L("a") + b"\n" + L("a") + b"\n" + b"[bad\n"
        err = c.upload(content).json()["error"]
        self.assertEqual(err["details"]["line"], 2, err)
        self.assertEqual(err["details"].get("reason_code"), "duplicate_custom_id", err)
