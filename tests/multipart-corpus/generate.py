#!/usr/bin/env python3
"""Writes the malformed multipart/form-data request bodies of this directory.

Each case is NAME.body (the request body, bytes as sent), NAME.content-type
(the Content-Type header value to send with it, one line) and NAME.expect (a
part of the error message it must be rejected with, one line). Every body must be
rejected: by multipart_boundary_from_content_type for names starting with
"ctype-", by the parser (multipart_parser_feed/finish) for all others.
tests/unit/test_multipart.c checks that. Run from anywhere:
    python3 tests/multipart-corpus/generate.py
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
B = "----corpus7MA4YWxkTrZu0gW"
CT = "multipart/form-data; boundary=" + B
JSONL = b'{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{}}\n'


def part(headers, data, boundary=B):
    return b"--" + boundary.encode() + b"\r\n" + headers + b"\r\n" + data + b"\r\n"


def purpose():
    return part(b'Content-Disposition: form-data; name="purpose"\r\n', b"batch")


def file_part(cd=b'Content-Disposition: form-data; name="file"; filename="x.jsonl"\r\n',
              extra=b"Content-Type: application/octet-stream\r\n", data=JSONL):
    return part(cd + extra, data)


def close(boundary=B):
    return b"--" + boundary.encode() + b"--\r\n"


def good():
    return purpose() + file_part() + close()


def with_filename(fn):
    return purpose() + file_part(
        b'Content-Disposition: form-data; name="file"; ' + fn + b"\r\n") + close()


CASES = {}
# A part of the message each case must be rejected with (NAME.expect).
EXPECT = {
    'header-starts-with-whitespace': 'starts with whitespace',
    'header-obsolete-folding': 'obsolete line folding',
    'header-without-colon': 'part header without a colon',
    'header-empty-name': 'part header with an empty name',
    'header-name-with-space': 'invalid character in a part header name',
    'header-bare-lf': 'LF without CR',
    'header-cr-without-lf': 'CR without LF',
    'header-nul-byte': 'NUL byte in a part header',
    'header-control-char': 'control character in a part header',
    'header-del-char': 'control character in a part header',
    'header-block-8193-bytes': 'header block is larger than 8192 bytes',
    'header-endless-line': 'header block is larger than 8192 bytes',
    'header-two-content-types': 'two Content-Type headers',
    'header-block-without-blank-line': "a boundary inside a part's header block",
    'part-without-content-disposition': 'no Content-Disposition header',
    'part-without-headers': 'no Content-Disposition header',
    'content-disposition-not-form-data': 'not form-data',
    'content-disposition-no-name': 'no name parameter',
    'content-disposition-empty-name': 'bad field name: it is empty',
    'content-disposition-two-names': 'two name parameters',
    'content-disposition-unterminated-quote': 'no closing quote',
    'content-disposition-missing-semicolon': "expected ';'",
    'content-disposition-twice': 'two Content-Disposition headers',
    'field-name-256-bytes': 'bad field name: it is longer than 255 bytes',
    'part-content-type-128-bytes': 'Content-Type is longer than 127 bytes',
    'filename-empty': 'bad filename: it is empty',
    'filename-control-char-tab': 'bad filename: it contains a control character',
    'filename-control-char-encoded-lf': 'bad filename: it contains a control character',
    'filename-star-control-char-nul': 'bad filename: it contains a control character',
    'filename-invalid-utf8': 'bad filename: it is not valid UTF-8',
    'filename-overlong-utf8': 'bad filename: it is not valid UTF-8',
    'filename-surrogate-utf8': 'bad filename: it is not valid UTF-8',
    'filename-256-bytes': 'bad filename: it is longer than 255 bytes',
    'filename-dotdot': 'is not a file name',
    'filename-dot': 'is not a file name',
    'filename-path-to-dotdot': 'is not a file name',
    'filename-trailing-slash': 'nothing follows the last',
    'filename-star-bad-charset': 'neither UTF-8 nor ISO-8859-1',
    'filename-star-bad-percent': 'two hex digits',
    'filename-star-not-ext-value': "charset'language'value",
    'field-4097-bytes': 'field "note" is longer than 4096 bytes',
    '17-parts': 'too many parts',
    'no-closing-boundary': 'closing boundary missing',
    'no-closing-boundary-ends-in-data': 'closing boundary missing: the body ended inside a part',
    'no-closing-boundary-ends-in-headers': "closing boundary missing: the body ended inside a part's headers",
    'no-closing-boundary-ends-after-boundary': 'closing boundary missing',
    'closing-boundary-single-dash': 'unexpected characters after a boundary',
    'only-preamble': 'no boundary found',
    'empty-body': 'the body is empty',
    'closing-boundary-first': 'the body has no parts',
    'boundary-not-at-line-start': 'no boundary found',
    'garbage-after-boundary': 'unexpected characters after a boundary',
    'lf-only-line-endings': 'unexpected characters after a boundary',
    'nested-boundary-prefix-trick': 'unexpected characters after a boundary',
    'ctype-boundary-71-chars': 'longer than 70 characters',
    'ctype-boundary-bad-characters': 'not allowed by RFC 2046',
    'ctype-boundary-trailing-space': 'ends with a space',
    'ctype-boundary-empty': 'boundary is empty',
    'ctype-missing-boundary': 'no boundary parameter',
    'ctype-not-multipart': 'not multipart/form-data',
    'ctype-multipart-mixed': 'not multipart/form-data',
    'ctype-two-boundaries': 'more than one boundary',
    'ctype-unterminated-quote': 'parameters are malformed',
    'ctype-empty': 'no Content-Type',
}


def case(name, body, ct=CT):
    CASES[name] = (body, ct, EXPECT[name])


# --- part headers
case("header-starts-with-whitespace",
     purpose() + file_part(extra=b" X-Indented: yes\r\n") + close())
case("header-obsolete-folding",
     purpose() + file_part(b'Content-Disposition: form-data; name="file";\r\n'
                           b'\tfilename="x.jsonl"\r\n') + close())
case("header-without-colon",
     purpose() + file_part(extra=b"Content-Type application/octet-stream\r\n") + close())
case("header-empty-name", purpose() + file_part(extra=b": no name\r\n") + close())
case("header-name-with-space",
     purpose() + file_part(extra=b"Content Type: text/plain\r\n") + close())
case("header-bare-lf",
     purpose() + file_part(extra=b"Content-Type: application/octet-stream\n") + close())
case("header-cr-without-lf",
     purpose() + file_part(extra=b"Content-Type: application/\roctet-stream\r\n") + close())
case("header-nul-byte",
     purpose() + file_part(b'Content-Disposition: form-data; name="file"; filename="x\0.jsonl"\r\n')
     + close())
case("header-control-char", purpose() + file_part(extra=b"X-Bell: \x07\r\n") + close())
case("header-del-char", purpose() + file_part(extra=b"X-Del: \x7f\r\n") + close())
pad = 8192 - len(b'Content-Disposition: form-data; name="file"; filename="x.jsonl"\r\n') \
    - len(b"X-Pad: \r\n") - 2 + 1
case("header-block-8193-bytes", purpose() + file_part(extra=b"X-Pad: " + b"p" * pad + b"\r\n")
     + close())
case("header-endless-line",
     purpose() + file_part(extra=b"X-Long: " + b"l" * 65536 + b"\r\n") + close())
case("header-two-content-types",
     purpose() + file_part(extra=b"Content-Type: a/b\r\nContent-Type: c/d\r\n") + close())
case("header-block-without-blank-line",
     b"--" + B.encode() + b'\r\nContent-Disposition: form-data; name="purpose"\r\n'
     + b"--" + B.encode() + b"\r\n" + file_part()[len(B) + 4:] + close())

# --- Content-Disposition
case("part-without-content-disposition",
     purpose() + part(b"Content-Type: application/octet-stream\r\n", JSONL) + close())
case("part-without-headers", purpose() + part(b"", JSONL) + close())
case("content-disposition-not-form-data",
     purpose() + file_part(b'Content-Disposition: attachment; name="file"; filename="x.jsonl"\r\n')
     + close())
case("content-disposition-no-name",
     purpose() + file_part(b'Content-Disposition: form-data; filename="x.jsonl"\r\n') + close())
case("content-disposition-empty-name",
     purpose() + file_part(b'Content-Disposition: form-data; name=""; filename="x.jsonl"\r\n')
     + close())
case("content-disposition-two-names",
     purpose() + file_part(b'Content-Disposition: form-data; name="file"; name="purpose"; '
                           b'filename="x.jsonl"\r\n') + close())
case("content-disposition-unterminated-quote",
     purpose() + file_part(b'Content-Disposition: form-data; name="file; filename=x.jsonl\r\n')
     + close())
case("content-disposition-missing-semicolon",
     purpose() + file_part(b'Content-Disposition: form-data name="file" filename="x.jsonl"\r\n')
     + close())
case("content-disposition-twice",
     purpose() + file_part(extra=b'Content-Disposition: form-data; name="other"\r\n') + close())
case("field-name-256-bytes",
     part(b'Content-Disposition: form-data; name="' + b"n" * 256 + b'"\r\n', b"x")
     + purpose() + file_part() + close())
case("part-content-type-128-bytes",
     purpose() + file_part(extra=b"Content-Type: application/" + b"x" * 116 + b"\r\n") + close())

# --- filenames
case("filename-empty", with_filename(b'filename=""'))
case("filename-control-char-tab", with_filename(b'filename="a\tb.jsonl"'))
case("filename-control-char-encoded-lf", with_filename(b'filename="a%0Ab.jsonl"'))
case("filename-star-control-char-nul", with_filename(b"filename*=UTF-8''a%00b.jsonl"))
case("filename-invalid-utf8", with_filename(b'filename="caf\xe9.jsonl"'))
case("filename-overlong-utf8", with_filename(b'filename="\xc0\xae\xc0\xae"'))
case("filename-surrogate-utf8", with_filename(b'filename="\xed\xa0\x80.jsonl"'))
case("filename-256-bytes", with_filename(b'filename="' + b"f" * 250 + b'.jsonl"'))
case("filename-dotdot", with_filename(b'filename=".."'))
case("filename-dot", with_filename(b'filename="."'))
case("filename-path-to-dotdot", with_filename(b'filename="/etc/.."'))
case("filename-trailing-slash", with_filename(b'filename="dir/"'))
case("filename-star-bad-charset", with_filename(b"filename*=UTF-16''x.jsonl"))
case("filename-star-bad-percent", with_filename(b"filename*=UTF-8''x%zz.jsonl"))
case("filename-star-not-ext-value", with_filename(b"filename*=x.jsonl"))

# --- limits
case("field-4097-bytes",  # (a field the upload ignores: a long purpose is a wrong one, 4007)
     purpose() + part(b'Content-Disposition: form-data; name="note"\r\n', b"b" * 4097)
     + file_part() + close())
many = b"".join(part(b'Content-Disposition: form-data; name="f%d"\r\n' % i, b"v")
                for i in range(15))
case("17-parts", purpose() + file_part() + many + close())

# --- framing
case("no-closing-boundary", purpose() + file_part())
case("no-closing-boundary-ends-in-data", purpose() + file_part()[:-2])
case("no-closing-boundary-ends-in-headers",
     purpose() + b"--" + B.encode() + b'\r\nContent-Disposition: form-data; name="file"')
case("no-closing-boundary-ends-after-boundary", purpose() + file_part() + b"--" + B.encode())
case("closing-boundary-single-dash", purpose() + file_part() + b"--" + B.encode() + b"-\r\n")
case("only-preamble", b"This body never mentions its boundary.\r\n" + JSONL)
case("empty-body", b"")
case("closing-boundary-first", close() + purpose() + file_part() + close())
case("boundary-not-at-line-start",
     b" --" + B.encode() + b'\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n')
case("garbage-after-boundary",
     purpose() + b"--" + B.encode() + b"garbage" + file_part()[len(B) + 2:] + close())
case("lf-only-line-endings", good().replace(b"\r\n", b"\n"))
case("nested-boundary-prefix-trick",
     purpose() + file_part(data=b"--" + B.encode() + b"-inner\r\nnot a part\r\n--"
                           + B.encode() + b"-inner--\r\n" + JSONL) + close())

# --- Content-Type header (rejected before the body is read)
case("ctype-boundary-71-chars", good().replace(B.encode(), b"b" * 71),
     "multipart/form-data; boundary=" + "b" * 71)
case("ctype-boundary-bad-characters", good().replace(B.encode(), b"bad@boundary"),
     "multipart/form-data; boundary=\"bad@boundary\"")
case("ctype-boundary-trailing-space", good().replace(B.encode(), b"boundary "),
     "multipart/form-data; boundary=\"boundary \"")
case("ctype-boundary-empty", good(), "multipart/form-data; boundary=\"\"")
case("ctype-missing-boundary", good(), "multipart/form-data")
case("ctype-not-multipart", good(), "application/json")
case("ctype-multipart-mixed", good(), "multipart/mixed; boundary=" + B)
case("ctype-two-boundaries", good(), CT + "; boundary=other")
case("ctype-unterminated-quote", good(), "multipart/form-data; boundary=\"" + B)
case("ctype-empty", good(), "")


def main():
    for name in os.listdir(HERE):
        if name.endswith((".body", ".content-type", ".expect")):
            os.unlink(os.path.join(HERE, name))
    for name, (body, ct, expect) in sorted(CASES.items()):
        with open(os.path.join(HERE, name + ".body"), "wb") as f:
            f.write(body)
        with open(os.path.join(HERE, name + ".content-type"), "w") as f:
            f.write(ct + "\n")
        with open(os.path.join(HERE, name + ".expect"), "w") as f:
            f.write(expect + "\n")
    print(len(CASES), "cases")


if __name__ == "__main__":
    main()
