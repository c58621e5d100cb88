/* Unit tests for the multipart parser. Every body is parsed whole, split at
 * every byte position, split at every pair of positions (small bodies) and
 * fed one byte at a time: status, message, events and data must not change.
 * Also runs every file of tests/multipart-corpus/ through the parser. */
#include "testlib.h"
#include "../../src/multipart.c"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>

#define LIT(s) (s), (sizeof(s) - 1)

/* ---- a growable byte buffer (tests may allocate) ---- */

struct buf {
    char *p;
    size_t len, cap;
};

/* Makes room for n more bytes and a NUL. */
static void buf_reserve(struct buf *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 256;

    if (b->len + n + 1 <= b->cap)
        return;
    while (b->len + n + 1 > cap)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (b->p == NULL)
        abort();
    b->cap = cap;
}

static void buf_add(struct buf *b, const void *d, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_addf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void buf_rep(struct buf *b, char c, size_t n)
{
    while (n--)
        buf_add(b, &c, 1);
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- recording the events ---- */

struct rec {
    struct buf log;      /* B ... / D:data| / E lines */
    int in_data;         /* the last event was data */
    size_t pieces;       /* on_part_data calls */
    size_t empty_pieces; /* ... with len 0 (never allowed) */
    size_t max_piece;    /* the largest piece */
    int abort_on;        /* 'B', 'D' or 'E': return nonzero there */
};

static void rec_close_data(struct rec *r)
{
    if (r->in_data) {
        buf_adds(&r->log, "|\n");
        r->in_data = 0;
    }
}

static int rec_begin(void *ctx, const struct multipart_part *part)
{
    struct rec *r = ctx;
    rec_close_data(r);
    buf_addf(&r->log, "B name=%s file=%s has=%d ct=%s\n", part->name, part->filename,
             part->has_filename, part->content_type);
    return r->abort_on == 'B';
}

static int rec_data(void *ctx, const char *data, size_t len)
{
    struct rec *r = ctx;
    if (len == 0)
        r->empty_pieces++;
    r->pieces++;
    if (len > r->max_piece)
        r->max_piece = len;
    if (!r->in_data)
        buf_adds(&r->log, "D:");
    r->in_data = 1;
    buf_add(&r->log, data, len);
    return r->abort_on == 'D';
}

static int rec_end(void *ctx)
{
    struct rec *r = ctx;
    rec_close_data(r);
    buf_adds(&r->log, "E\n");
    return r->abort_on == 'E';
}

static const struct multipart_callbacks rec_callbacks = {rec_begin, rec_data, rec_end};

struct result {
    int status;
    char error[MULTIPART_MAX_ERROR];
    struct rec rec;
};

/* Parses body fed in the pieces that cuts[0..ncuts) (increasing offsets) make. */
static void run_cuts(struct result *res, const char *boundary, const char *body, size_t len,
                     const size_t *cuts, size_t ncuts, int abort_on)
{
    struct multipart_parser p;
    size_t at = 0, i;
    int st = MULTIPART_OK;

    memset(res, 0, sizeof *res);
    res->rec.abort_on = abort_on;
    if (multipart_parser_init(&p, boundary, &rec_callbacks, &res->rec) != 0) {
        res->status = 99;
        snprintf(res->error, sizeof res->error, "%s", multipart_parser_error(&p));
        return;
    }
    for (i = 0; i <= ncuts && st == MULTIPART_OK; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        st = multipart_parser_feed(&p, body + at, to - at);
        at = to;
    }
    if (st == MULTIPART_OK)
        st = multipart_parser_finish(&p);
    rec_close_data(&res->rec);
    res->status = st;
    snprintf(res->error, sizeof res->error, "%s", multipart_parser_error(&p));
}

static int result_same(const struct result *a, const struct result *b)
{
    return a->status == b->status && strcmp(a->error, b->error) == 0 &&
           a->rec.log.len == b->rec.log.len &&
           (a->rec.log.len == 0 || memcmp(a->rec.log.p, b->rec.log.p, a->rec.log.len) == 0) &&
           b->rec.empty_pieces == 0;
}

static void result_free(struct result *r)
{
    buf_free(&r->rec.log);
}

static unsigned long split_runs;

/* Feeds body split at every position (bodies over 16 KiB: every position in
 * the first and last KiB and every 97th), at every pair of positions (bodies
 * up to 160 bytes), and one byte at a time; each must give the same result as
 * whole. */
static void check_splits(const char *what, const char *boundary, const char *body, size_t len,
                         const struct result *whole)
{
    struct result r;
    size_t cuts[2], i, j, *every;
    int bad = 0;

    for (i = 1; i < len && !bad; i++) {
        /* long bodies: every position near the ends, a sample in between */
        if (len > 16384 && i > 1024 && i < len - 1024 && i % 97 != 0)
            continue;
        cuts[0] = i;
        run_cuts(&r, boundary, body, len, cuts, 1, 0);
        split_runs++;
        if (!result_same(whole, &r)) {
            bad = 1;
            CHECKF(0, "%s: split at %zu differs: status %d \"%s\" vs whole %d \"%s\"", what, i,
                   r.status, r.error, whole->status, whole->error);
        }
        result_free(&r);
    }
    if (!bad)
        CHECK(1);
    if (len <= 160) {
        bad = 0;
        for (i = 1; i < len && !bad; i++)
            for (j = i + 1; j < len && !bad; j++) {
                cuts[0] = i;
                cuts[1] = j;
                run_cuts(&r, boundary, body, len, cuts, 2, 0);
                split_runs++;
                if (!result_same(whole, &r)) {
                    bad = 1;
                    CHECKF(0, "%s: split at %zu,%zu differs", what, i, j);
                }
                result_free(&r);
            }
        if (!bad)
            CHECK(1);
    }
    every = malloc((len ? len : 1) * sizeof *every);
    if (every == NULL)
        abort();
    for (i = 1; i < len; i++)
        every[i - 1] = i;
    run_cuts(&r, boundary, body, len, every, len ? len - 1 : 0, 0);
    split_runs++;
    CHECKF(result_same(whole, &r), "%s: byte-at-a-time differs: %d \"%s\" vs %d \"%s\"", what,
           r.status, r.error, whole->status, whole->error);
    result_free(&r);
    free(every);
}

/* The body must parse, giving exactly the events in want[0..want_len). */
static void expect_okn(const char *what, const char *boundary, const char *body, size_t len,
                       const char *want, size_t want_len)
{
    struct result whole;

    run_cuts(&whole, boundary, body, len, NULL, 0, 0);
    CHECKF(whole.status == MULTIPART_OK, "%s: status %d: %s", what, whole.status, whole.error);
    CHECKF(whole.error[0] == '\0', "%s: error message \"%s\" while OK", what, whole.error);
    CHECKF(whole.rec.log.len == want_len && memcmp(whole.rec.log.p, want, want_len) == 0,
           "%s: events\n---got---\n%s\n---want---\n%s", what,
           whole.rec.log.p ? whole.rec.log.p : "", want);
    check_splits(what, boundary, body, len, &whole);
    result_free(&whole);
}

static void expect_ok(const char *what, const char *boundary, const char *body, size_t len,
                      const char *want)
{
    expect_okn(what, boundary, body, len, want, strlen(want));
}

/* The body must be rejected with a message containing want. */
static void expect_error(const char *what, const char *boundary, const char *body, size_t len,
                         const char *want)
{
    struct result whole;

    run_cuts(&whole, boundary, body, len, NULL, 0, 0);
    CHECKF(whole.status == MULTIPART_ERROR, "%s: status %d, want an error", what, whole.status);
    CHECKF(strstr(whole.error, want) != NULL, "%s: message \"%s\" lacks \"%s\"", what, whole.error,
           want);
    check_splits(what, boundary, body, len, &whole);
    result_free(&whole);
}

/* ---- multipart_boundary_from_content_type ---- */

static void ct_ok(const char *ct, const char *want)
{
    char out[MULTIPART_MAX_BOUNDARY + 1];
    const char *why = "unset";
    int rc = multipart_boundary_from_content_type(ct, out, sizeof out, &why);
    CHECKF(rc == 0, "\"%s\": %s", ct, why);
    if (rc == 0)
        CHECKF(strcmp(out, want) == 0, "\"%s\": got \"%s\" want \"%s\"", ct, out, want);
}

static void ct_bad(const char *ct, const char *want)
{
    char out[MULTIPART_MAX_BOUNDARY + 1];
    const char *why = NULL;
    int rc = multipart_boundary_from_content_type(ct, out, sizeof out, &why);
    CHECKF(rc == -1, "\"%s\" accepted", ct ? ct : "(null)");
    CHECKF(why != NULL && strstr(why, want) != NULL, "\"%s\": why \"%s\" lacks \"%s\"",
           ct ? ct : "(null)", why ? why : "(null)", want);
}

static void test_content_type(void)
{
    struct buf b = {0};
    char small[4];
    const char *why;

    ct_ok("multipart/form-data; boundary=abc", "abc");
    ct_ok("Multipart/Form-Data; BOUNDARY=abc", "abc");
    ct_ok("MULTIPART/FORM-DATA;boundary=abc", "abc");
    ct_ok("multipart/form-data; boundary=\"a b:c?=/()+_,.'\"", "a b:c?=/()+_,.'");
    ct_ok("multipart/form-data; boundary=\"ab\\c\"", "abc"); /* quoted-pair */
    ct_ok("multipart/form-data; charset=utf-8; boundary=xyz", "xyz");
    ct_ok("multipart/form-data; boundary=xyz; charset=utf-8", "xyz");
    ct_ok("multipart/form-data; foo=\"x;boundary=evil\"; boundary=good", "good");
    ct_ok("  multipart/form-data ;  boundary=abc  ", "abc");
    ct_ok("multipart/form-data; boundary = abc", "abc");
    ct_ok("multipart/form-data; boundary=abc;", "abc");
    /* what curl 7.88, undici (Node fetch), httpx and form-data-encoder send */
    ct_ok("multipart/form-data; boundary=------------------------52218836e2157edc",
          "------------------------52218836e2157edc");
    ct_ok("multipart/form-data; boundary=----formdata-undici-018520871491",
          "----formdata-undici-018520871491");
    ct_ok("multipart/form-data; boundary=9d1a7fe2d4c64b2c8cfb3f7ad9e2b4e1",
          "9d1a7fe2d4c64b2c8cfb3f7ad9e2b4e1");
    ct_ok("multipart/form-data; boundary=form-data-boundary-n2vw38xdagaq6lrv",
          "form-data-boundary-n2vw38xdagaq6lrv");
    ct_ok("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
          "----WebKitFormBoundary7MA4YWxkTrZu0gW");

    /* the limit: 70 accepted, 71 rejected, quoted or not */
    buf_adds(&b, "multipart/form-data; boundary=");
    buf_rep(&b, 'x', 70);
    ct_ok(b.p, b.p + strlen("multipart/form-data; boundary="));
    buf_adds(&b, "y");
    ct_bad(b.p, "longer than 70");
    buf_free(&b);
    buf_adds(&b, "multipart/form-data; boundary=\"");
    buf_rep(&b, 'q', 70);
    buf_adds(&b, "\"");
    ct_ok(b.p, "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq");
    buf_free(&b);
    buf_adds(&b, "multipart/form-data; boundary=\"");
    buf_rep(&b, 'q', 71);
    buf_adds(&b, "\"");
    ct_bad(b.p, "longer than 70");
    buf_free(&b);

    ct_bad("multipart/form-data; boundary=\"\"", "empty");
    ct_bad("multipart/form-data; boundary=", "empty");
    ct_bad("multipart/form-data; boundary=;charset=x", "empty");
    ct_bad("multipart/form-data; boundary=ab!c", "not allowed by RFC 2046");
    ct_bad("multipart/form-data; boundary=\"ab\x01c\"", "not allowed by RFC 2046");
    ct_bad("multipart/form-data; boundary=\"ab\\\"c\"", "not allowed by RFC 2046");
    ct_bad("multipart/form-data; boundary=\"abc \"", "ends with a space");
    ct_bad("multipart/form-data; boundary=\"abc\\", "malformed");
    ct_bad("multipart/form-data; boundary=\"ab\xc3\xa9\"", "not allowed by RFC 2046");
    ct_bad("multipart/form-data", "no boundary");
    ct_bad("multipart/form-data;", "no boundary");
    ct_bad("multipart/form-data; charset=utf-8", "no boundary");
    ct_bad("multipart/form-data; boundaryx=abc", "no boundary");
    ct_bad("multipart/form-data; boundary=a; boundary=b", "more than one boundary");
    ct_bad("multipart/form-data; boundary=\"abc", "malformed");
    ct_bad("multipart/form-data; boundary=a/b", "malformed");
    ct_bad("multipart/form-data boundary=abc", "malformed");
    ct_bad("multipart/form-data; =abc", "malformed");
    ct_bad("multipart/form-data; boundary", "malformed");
    ct_bad("application/json", "not multipart/form-data");
    ct_bad("multipart/mixed; boundary=abc", "not multipart/form-data");
    ct_bad("multipart/form-datax; boundary=abc", "not multipart/form-data");
    ct_bad("multipart; boundary=abc", "not multipart/form-data");
    ct_bad("multipart/; boundary=abc", "not multipart/form-data");
    ct_bad("text/plain", "not multipart/form-data");
    ct_bad("form-data; boundary=abc", "not multipart/form-data");
    ct_bad("", "no Content-Type");
    ct_bad(NULL, "no Content-Type");

    CHECK(multipart_boundary_from_content_type("multipart/form-data; boundary=abcd", small,
                                               sizeof small, &why) == -1);
    CHECK(multipart_boundary_from_content_type("multipart/form-data; boundary=abc", small,
                                               sizeof small, NULL) == 0);
    CHECK_STR(small, "abc");
    CHECK(multipart_boundary_from_content_type("text/plain", small, sizeof small, NULL) == -1);
}

/* ---- multipart_parser_init ---- */

static void test_init(void)
{
    struct multipart_parser p;
    struct buf b = {0};

    buf_rep(&b, 'b', 70);
    CHECK(multipart_parser_init(&p, b.p, NULL, NULL) == 0);
    CHECK_STR(multipart_parser_error(&p), "");
    buf_adds(&b, "b");
    CHECK(multipart_parser_init(&p, b.p, NULL, NULL) == -1);
    CHECK(strstr(multipart_parser_error(&p), "longer than 70") != NULL);
    CHECK(multipart_parser_feed(&p, LIT("--x")) == MULTIPART_ERROR);
    CHECK(multipart_parser_finish(&p) == MULTIPART_ERROR);
    buf_free(&b);
    CHECK(multipart_parser_init(&p, "", NULL, NULL) == -1);
    CHECK(strstr(multipart_parser_error(&p), "empty") != NULL);
    CHECK(multipart_parser_init(&p, "a\rb", NULL, NULL) == -1);
    CHECK(multipart_parser_init(&p, "a ", NULL, NULL) == -1);
    CHECK(multipart_parser_init(&p, NULL, NULL, NULL) == -1);
    CHECK(multipart_parser_init(&p, "a b", NULL, NULL) == 0);
    /* the struct is embeddable and constant-size */
    CHECKF(sizeof(struct multipart_parser) < 10 * 1024, "sizeof %zu",
           sizeof(struct multipart_parser));
}

/* ---- what real clients send ---- */

#define JSONL_LINE                                                                                 \
    "{\"custom_id\":\"r1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{}}\n"

static void test_clients(void)
{
    /* curl 7.88.1: curl -F purpose=batch -F file=@x.jsonl (captured on the wire) */
    expect_ok("curl", "------------------------52218836e2157edc",
              LIT("--------------------------52218836e2157edc\r\n"
                  "Content-Disposition: form-data; name=\"purpose\"\r\n"
                  "\r\n"
                  "batch\r\n"
                  "--------------------------52218836e2157edc\r\n"
                  "Content-Disposition: form-data; name=\"file\"; filename=\"x.jsonl\"\r\n"
                  "Content-Type: application/octet-stream\r\n"
                  "\r\n" JSONL_LINE "\r\n"
                  "--------------------------52218836e2157edc--\r\n"),
              "B name=purpose file= has=0 ct=\nD:batch|\nE\n"
              "B name=file file=x.jsonl has=1 ct=application/octet-stream\nD:" JSONL_LINE "|\nE\n");

    /* openai-python via httpx: data fields first, then files; 32-hex boundary;
     * '"' sent as %22 and '\' as \\; mimetypes does not know .jsonl */
    expect_ok(
        "httpx", "9d1a7fe2d4c64b2c8cfb3f7ad9e2b4e1",
        LIT("--9d1a7fe2d4c64b2c8cfb3f7ad9e2b4e1\r\n"
            "Content-Disposition: form-data; name=\"purpose\"\r\n"
            "\r\n"
            "batch\r\n"
            "--9d1a7fe2d4c64b2c8cfb3f7ad9e2b4e1\r\n"
            "Content-Disposition: form-data; name=\"file\"; filename=\"my %22batch%22.jsonl\"\r\n"
            "Content-Type: application/octet-stream\r\n"
            "\r\n" JSONL_LINE JSONL_LINE "\r\n"
            "--9d1a7fe2d4c64b2c8cfb3f7ad9e2b4e1--\r\n"),
        "B name=purpose file= has=0 ct=\nD:batch|\nE\n"
        "B name=file file=my \"batch\".jsonl has=1 ct=application/octet-stream\n"
        "D:" JSONL_LINE JSONL_LINE "|\nE\n");

    /* Node 20 fetch (undici FormData), captured */
    expect_ok("undici", "----formdata-undici-018520871491",
              LIT("------formdata-undici-018520871491\r\n"
                  "Content-Disposition: form-data; name=\"purpose\"\r\n"
                  "\r\n"
                  "batch\r\n"
                  "------formdata-undici-018520871491\r\n"
                  "Content-Disposition: form-data; name=\"file\"; filename=\"x.jsonl\"\r\n"
                  "Content-Type: application/octet-stream\r\n"
                  "\r\n" JSONL_LINE "\r\n"
                  "------formdata-undici-018520871491--\r\n"),
              "B name=purpose file= has=0 ct=\nD:batch|\nE\n"
              "B name=file file=x.jsonl has=1 ct=application/octet-stream\nD:" JSONL_LINE "|\nE\n");

    /* openai-node (formdata-node + form-data-encoder): file first, the footer
     * ends with two CRLFs */
    expect_ok("form-data-encoder", "form-data-boundary-n2vw38xdagaq6lrv",
              LIT("--form-data-boundary-n2vw38xdagaq6lrv\r\n"
                  "Content-Disposition: form-data; name=\"file\"; filename=\"batch.jsonl\"\r\n"
                  "Content-Type: application/jsonl\r\n"
                  "\r\n" JSONL_LINE "\r\n"
                  "--form-data-boundary-n2vw38xdagaq6lrv\r\n"
                  "Content-Disposition: form-data; name=\"purpose\"\r\n"
                  "\r\n"
                  "batch\r\n"
                  "--form-data-boundary-n2vw38xdagaq6lrv--\r\n\r\n"),
              "B name=file file=batch.jsonl has=1 ct=application/jsonl\nD:" JSONL_LINE "|\nE\n"
              "B name=purpose file= has=0 ct=\nD:batch|\nE\n");

    /* a browser: CRLF file content, WebKit boundary */
    expect_ok("browser", "----WebKitFormBoundary7MA4YWxkTrZu0gW",
              LIT("------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
                  "Content-Disposition: form-data; name=\"file\"; filename=\"win.jsonl\"\r\n"
                  "Content-Type: application/octet-stream\r\n"
                  "\r\n"
                  "{\"a\":1}\r\n{\"a\":2}\r\n"
                  "\r\n"
                  "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
                  "Content-Disposition: form-data; name=\"purpose\"\r\n"
                  "\r\n"
                  "batch\r\n"
                  "------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n"),
              "B name=file file=win.jsonl has=1 ct=application/octet-stream\n"
              "D:{\"a\":1}\r\n{\"a\":2}\r\n|\nE\n"
              "B name=purpose file= has=0 ct=\nD:batch|\nE\n");
}

/* ---- framing: boundaries, preamble, epilogue, padding ---- */

#define CD_A "Content-Disposition: form-data; name=\"a\"\r\n"

static void test_framing(void)
{
    expect_ok("preamble and epilogue ignored", "b",
              LIT("This is the preamble.\r\nIt has --b not at a line start, and -- lines.\r\n"
                  "--b\r\n" CD_A "\r\nv\r\n--b--\r\nThis is the epilogue.\r\n--b\r\ngarbage"),
              "B name=a file= has=0 ct=\nD:v|\nE\n");
    expect_ok("preamble with a partial boundary", "bound",
              LIT("x\r\n--bou\r\n--boun\r\n--bound\r\n" CD_A "\r\nv\r\n--bound--"),
              "B name=a file= has=0 ct=\nD:v|\nE\n");
    expect_ok("preamble starting with CRLF", "b", LIT("\r\n--b\r\n" CD_A "\r\nv\r\n--b--"),
              "B name=a file= has=0 ct=\nD:v|\nE\n");
    expect_ok("no CRLF after the closing boundary", "b", LIT("--b\r\n" CD_A "\r\nv\r\n--b--"),
              "B name=a file= has=0 ct=\nD:v|\nE\n");
    expect_ok("transport padding", "b",
              LIT("--b \t \r\n" CD_A "\r\nv\r\n--b\t\r\n" CD_A "\r\nw\r\n--b-- \r\n"),
              "B name=a file= has=0 ct=\nD:v|\nE\nB name=a file= has=0 ct=\nD:w|\nE\n");
    expect_ok("empty value", "b", LIT("--b\r\n" CD_A "\r\n\r\n--b--\r\n"),
              "B name=a file= has=0 ct=\nE\n");
    expect_ok("empty value without the body's CRLF", "b", LIT("--b\r\n" CD_A "\r\n--b--\r\n"),
              "B name=a file= has=0 ct=\nE\n");
    expect_ok("value that is CRLF", "b", LIT("--b\r\n" CD_A "\r\n\r\n\r\n--b--"),
              "B name=a file= has=0 ct=\nD:\r\n|\nE\n");
    expect_ok(
        "data with near-boundaries", "bound",
        LIT("--bound\r\n" CD_A "\r\n"
            "\r\r\n\r\n-\r\n--\r\n--b\r\n--boun--bound\n--bound\r--bound-\r\r\n--bounc\r"
            "\r\n--bound--"),
        "B name=a file= has=0 ct=\n"
        "D:\r\r\n\r\n-\r\n--\r\n--b\r\n--boun--bound\n--bound\r--bound-\r\r\n--bounc\r|\nE\n");
    expect_okn("data with NUL and 8-bit bytes", "b",
               LIT("--b\r\n" CD_A "\r\n\0\xff\x80\r\0\r\n\0--b\r\n--b--"),
               LIT("B name=a file= has=0 ct=\nD:\0\xff\x80\r\0\r\n\0--b|\nE\n"));
    expect_ok("boundary made of every bchar", "'()+_,-./:=? z",
              LIT("--'()+_,-./:=? z\r\n" CD_A "\r\nv\r\n--'()+_,-./:=? z--"),
              "B name=a file= has=0 ct=\nD:v|\nE\n");
    expect_ok("nested multipart with another boundary is data", "outer",
              LIT("--outer\r\n"
                  "Content-Disposition: form-data; name=\"file\"; filename=\"n.txt\"\r\n"
                  "Content-Type: multipart/mixed; boundary=inner\r\n\r\n"
                  "--inner\r\nContent-Type: text/plain\r\n\r\nhi\r\n--inner--\r\n"
                  "\r\n--outer--\r\n"),
              "B name=file file=n.txt has=1 ct=multipart/mixed; boundary=inner\n"
              "D:--inner\r\nContent-Type: text/plain\r\n\r\nhi\r\n--inner--\r\n|\nE\n");
    expect_ok("a boundary that another boundary starts with is data", "inner-x",
              LIT("--inner-x\r\n" CD_A "\r\n\r\n--inner-\r\n--inner\r\n--inner-y\r\n--inner-x--"),
              "B name=a file= has=0 ct=\nD:\r\n--inner-\r\n--inner\r\n--inner-y|\nE\n");

    expect_error("nested boundary that starts with ours", "outer",
                 LIT("--outer\r\n" CD_A "\r\n\r\n--outerinner\r\nx\r\n--outerinner--\r\n"
                     "--outer--\r\n"),
                 "unexpected characters after a boundary");
    expect_error("garbage after a boundary", "b", LIT("--bX\r\n" CD_A "\r\nv\r\n--b--"),
                 "unexpected characters after a boundary");
    expect_error("garbage after padding", "b", LIT("--b  x\r\n" CD_A "\r\nv\r\n--b--"),
                 "unexpected characters after a boundary");
    expect_error("boundary line ends with CR alone", "b", LIT("--b\rX" CD_A "\r\nv\r\n--b--"),
                 "does not end with CRLF");
    expect_error("boundary line ends with LF alone", "b", LIT("--b\n" CD_A "\r\nv\r\n--b--"),
                 "unexpected characters after a boundary");
    expect_error("closing boundary with one dash", "b", LIT("--b\r\n" CD_A "\r\nv\r\n--b-\r\n"),
                 "ends with \"--\"");
    expect_error("closing boundary first", "b", LIT("--b--\r\n"), "no parts");
    expect_error("closing boundary first, after a preamble", "b", LIT("hello\r\n--b--"),
                 "no parts");
    expect_error("no closing boundary: inside data", "b", LIT("--b\r\n" CD_A "\r\nvalue"),
                 "closing boundary missing: the body ended inside a part");
    expect_error("no closing boundary: data ends with a partial boundary", "bound",
                 LIT("--bound\r\n" CD_A "\r\nvalue\r\n--bou"),
                 "closing boundary missing: the body ended inside a part");
    expect_error("no closing boundary: after a boundary", "b", LIT("--b\r\n" CD_A "\r\nv\r\n--b"),
                 "closing boundary missing");
    expect_error("no closing boundary: after a boundary's CRLF", "b",
                 LIT("--b\r\n" CD_A "\r\nv\r\n--b\r\n"), "inside a part's headers");
    expect_error("no closing boundary: inside headers", "b", LIT("--b\r\nContent-Disp"),
                 "inside a part's headers");
    expect_error("no closing boundary: after padding", "b", LIT("--b\r\n" CD_A "\r\nv\r\n--b  "),
                 "closing boundary missing");
    expect_error("no closing boundary: after the boundary's CR", "b",
                 LIT("--b\r\n" CD_A "\r\nv\r\n--b\r"), "closing boundary missing");
    expect_error("only a preamble", "b", LIT("just some text\r\n-- b\r\n--c--\r\n"),
                 "no boundary found");
    expect_error("boundary not at a line start", "b", LIT("x--b\r\n" CD_A "\r\nv\r\n"),
                 "no boundary found");
    expect_error("boundary not at a line start, then a closing one", "b",
                 LIT("x--b\r\n" CD_A "\r\nv\r\n--b--"), "no parts");
    expect_error("empty body", "b", "", 0, "the body is empty");
    expect_error("bare LF before the boundary does not count", "b",
                 LIT("x\n--b\r\n" CD_A "\r\nv\n--b--"), "no boundary found");
    expect_error("boundary inside a header block", "b", LIT("--b\r\n--b\r\n" CD_A "\r\nv\r\n--b--"),
                 "a boundary inside a part's header block");
}

/* ---- part headers ---- */

static void test_headers(void)
{
    expect_ok("header names are case-insensitive", "b",
              LIT("--b\r\ncontent-disposition: form-data; name=x\r\nCONTENT-TYPE:text/plain\r\n"
                  "\r\nv\r\n--b\r\nCoNtEnT-DiSpOsItIoN:FORM-DATA;NAME=\"y\"\r\n\r\nw\r\n--b--"),
              "B name=x file= has=0 ct=text/plain\nD:v|\nE\nB name=y file= has=0 ct=\nD:w|\nE\n");
    expect_ok("other headers are ignored; values are trimmed", "b",
              LIT("--b\r\nX-Custom: anything: at all\r\nContent-Transfer-Encoding: binary\r\n"
                  "Content-Disposition:\t form-data ; name=\"a\" \t\r\n"
                  "Content-Type:   text/plain; charset=utf-8  \r\n\r\nv\r\n--b--"),
              "B name=a file= has=0 ct=text/plain; charset=utf-8\nD:v|\nE\n");
    expect_ok("parameter names are case-insensitive; unknown ones ignored", "b",
              LIT("--b\r\nContent-Disposition: form-data; Foo=bar; NAME=\"f\"; FileName=\"a.txt\";"
                  " size=12; x=\"q;uoted\";\r\n\r\nv\r\n--b--"),
              "B name=f file=a.txt has=1 ct=\nD:v|\nE\n");
    expect_ok("unquoted (token) values", "b",
              LIT("--b\r\nContent-Disposition: form-data; name=file; filename=x.jsonl\r\n\r\n"
                  "v\r\n--b--"),
              "B name=file file=x.jsonl has=1 ct=\nD:v|\nE\n");
    expect_ok("whitespace around '='", "b",
              LIT("--b\r\nContent-Disposition: form-data; name = \"a\" ;filename= b\r\n\r\n"
                  "v\r\n--b--"),
              "B name=a file=b has=1 ct=\nD:v|\nE\n");
    expect_ok("empty Content-Type", "b", LIT("--b\r\n" CD_A "Content-Type:\r\n\r\nv\r\n--b--"),
              "B name=a file= has=0 ct=\nD:v|\nE\n");
    expect_ok("name with escapes and UTF-8", "b",
              LIT("--b\r\nContent-Disposition: form-data; name=\"a\\\"b%22c\\\\d\xc3\xa9/e\"\r\n"
                  "\r\nv\r\n--b--"),
              "B name=a\"b\"c\\d\xc3\xa9/e file= has=0 ct=\nD:v|\nE\n");

    expect_error("header starting with a space", "b",
                 LIT("--b\r\n" CD_A " folded: x\r\n\r\nv\r\n--b--"), "starts with whitespace");
    expect_error("folded header continuation", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=a;\r\n\tfilename=\"a\"\r\n\r\n"
                     "v\r\n--b--"),
                 "obsolete line folding");
    expect_error("folded Content-Disposition is read up to the fold", "b",
                 LIT("--b\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\nv\r\n--b--"),
                 "no name parameter");
    expect_error("header without a colon", "b",
                 LIT("--b\r\n" CD_A "Content-Type text/plain\r\n\r\nv\r\n--b--"),
                 "part header without a colon");
    expect_error("header with an empty name", "b", LIT("--b\r\n" CD_A ": x\r\n\r\nv\r\n--b--"),
                 "empty name");
    expect_error("header name with a space", "b",
                 LIT("--b\r\nContent-Disposition : form-data; name=a\r\n\r\nv\r\n--b--"),
                 "invalid character in a part header name");
    expect_error("header name with 8-bit bytes", "b",
                 LIT("--b\r\n" CD_A "X-\xc3\xa9: x\r\n\r\nv\r\n--b--"),
                 "invalid character in a part header name");
    expect_error("bare LF ends a header line", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=a\n\r\nv\r\n--b--"),
                 "LF without CR");
    expect_error("bare LF header block end", "b", LIT("--b\r\n" CD_A "\nv\r\n--b--"),
                 "LF without CR");
    expect_error("CR without LF in a header", "b",
                 LIT("--b\r\nContent-Disposition: form-data;\r name=a\r\n\r\nv\r\n--b--"),
                 "CR without LF");
    expect_error("NUL in a header", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=\"a\0b\"\r\n\r\nv\r\n--b--"),
                 "NUL byte");
    expect_error("control character in a header", "b",
                 LIT("--b\r\n" CD_A "X-A: \x01\r\n\r\nv\r\n--b--"), "control character");
    expect_error("DEL in a header", "b", LIT("--b\r\n" CD_A "X-A: \x7f\r\n\r\nv\r\n--b--"),
                 "control character");
    expect_error("part without headers", "b", LIT("--b\r\n\r\nv\r\n--b--"),
                 "no Content-Disposition");
    expect_error("part without Content-Disposition", "b",
                 LIT("--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--"),
                 "no Content-Disposition");
    expect_error("two Content-Dispositions", "b", LIT("--b\r\n" CD_A CD_A "\r\nv\r\n--b--"),
                 "two Content-Disposition");
    expect_error("two Content-Types", "b",
                 LIT("--b\r\n" CD_A "Content-Type: a/b\r\ncontent-type: a/b\r\n\r\nv\r\n--b--"),
                 "two Content-Type");
    expect_error("Content-Disposition attachment", "b",
                 LIT("--b\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--b--"),
                 "not form-data");
    expect_error("Content-Disposition inline", "b",
                 LIT("--b\r\nContent-Disposition: inline\r\n\r\nv\r\n--b--"), "not form-data");
    expect_error("Content-Disposition empty", "b",
                 LIT("--b\r\nContent-Disposition:\r\n\r\nv\r\n--b--"), "not form-data");
    expect_error("Content-Disposition form-data-x", "b",
                 LIT("--b\r\nContent-Disposition: form-data-x; name=a\r\n\r\nv\r\n--b--"),
                 "not form-data");
    expect_error("Content-Disposition without name", "b",
                 LIT("--b\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nv\r\n--b--"),
                 "no name parameter");
    expect_error("Content-Disposition with name* only", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name*=UTF-8''a\r\n\r\nv\r\n--b--"),
                 "no name parameter");
    expect_error("empty name", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nv\r\n--b--"),
                 "bad field name: it is empty");
    expect_error("empty unquoted name", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=\r\n\r\nv\r\n--b--"),
                 "bad field name: it is empty");
    expect_error("name with an encoded LF", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=\"a%0Ab\"\r\n\r\nv\r\n--b--"),
                 "bad field name: it contains a control character");
    expect_error("name with invalid UTF-8", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=\"a\xff\"\r\n\r\nv\r\n--b--"),
                 "bad field name: it is not valid UTF-8");
    expect_error("two names", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=a; Name=b\r\n\r\nv\r\n--b--"),
                 "two name parameters");
    expect_error("two filenames", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=a; filename=x; filename=y\r\n"
                     "\r\nv\r\n--b--"),
                 "two filename parameters");
    expect_error("two filename*", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=a; filename*=UTF-8''x; "
                     "filename*=UTF-8''y\r\n\r\nv\r\n--b--"),
                 "two filename* parameters");
    expect_error("unterminated quoted string", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--b--"),
                 "no closing quote");
    expect_error("quoted string ending in a backslash", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=\"a\\\"\r\n\r\nv\r\n--b--"),
                 "no closing quote");
    expect_error("quoted string cut after a backslash", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=file; filename=\"x.jsonl\\\r\n"
                     "\r\nv\r\n--b--"),
                 "no closing quote");
    expect_error("parameters without ';'", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=a filename=b\r\n\r\nv\r\n--b--"),
                 "expected ';'");
    expect_error("form-data without ';'", "b",
                 LIT("--b\r\nContent-Disposition: form-data name=a\r\n\r\nv\r\n--b--"),
                 "expected ';'");
    expect_error("parameter without a value", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name\r\n\r\nv\r\n--b--"),
                 "has no '='");
    expect_error("parameter without a name", "b",
                 LIT("--b\r\nContent-Disposition: form-data; =a\r\n\r\nv\r\n--b--"), "not a token");
    expect_error("8-bit bytes in an unquoted value", "b",
                 LIT("--b\r\nContent-Disposition: form-data; name=a; filename=\xc3\xa9\r\n\r\n"
                     "v\r\n--b--"),
                 "expected ';'");
}

/* ---- filenames ---- */

/* Parses one part whose Content-Disposition parameters are params. */
static void fname(const char *params, const char *want_filename)
{
    struct buf body = {0}, want = {0};

    buf_addf(&body, "--b\r\nContent-Disposition: form-data; name=\"file\"; %s\r\n\r\nv\r\n--b--",
             params);
    buf_addf(&want, "B name=file file=%s has=1 ct=\nD:v|\nE\n", want_filename);
    expect_ok(params, "b", body.p, body.len, want.p);
    buf_free(&body);
    buf_free(&want);
}

static void fname_bad(const char *params, const char *why)
{
    struct buf body = {0};

    buf_addf(&body, "--b\r\nContent-Disposition: form-data; name=\"file\"; %s\r\n\r\nv\r\n--b--",
             params);
    expect_error(params, "b", body.p, body.len, why);
    buf_free(&body);
}

static void test_filenames(void)
{
    struct buf p = {0}, w = {0};
    int i;

    fname("filename=\"x.jsonl\"", "x.jsonl");
    fname("filename=\"C:\\\\path\\\\a.jsonl\"", "a.jsonl"); /* escaped (httpx, RFC) */
    fname("filename=\"C:\\path\\a.jsonl\"", "a.jsonl");     /* raw (old IE) */
    fname("filename=\"C:\\fakepath\\a.jsonl\"", "a.jsonl");
    fname("filename=\"\\\\server\\share\\a.jsonl\"", "a.jsonl");
    fname("filename=\"dir/sub/a.jsonl\"", "a.jsonl");
    fname("filename=\"/abs/a.jsonl\"", "a.jsonl");
    fname("filename=\"mixed\\dir/sub\\a.jsonl\"", "a.jsonl");
    fname("filename=\"a\\\\b\"", "b");                /* an escaped backslash separates too */
    fname("filename=\"a\\\"b.jsonl\"", "a\"b.jsonl"); /* \" -> " */
    fname("filename=\"a\\\\\\\"b\"", "\"b");          /* \\\" -> \" -> cut */
    fname("filename=\"a\\x\"", "x");                  /* \x kept: '\' then cut */
    fname("filename=\"a%22b.jsonl\"", "a\"b.jsonl");  /* WHATWG */
    fname("filename=\"100%.jsonl\"", "100%.jsonl");
    fname("filename=\"a%25b%2Fc%20e%01\"", "a%25b%2Fc%20e%01"); /* only 4 are decoded */
    fname("filename=\"dir%5Ca.jsonl\"", "a.jsonl");             /* openai-node streams: \ as %5C */
    fname("filename=\"dir%5ca.jsonl\"", "a.jsonl");
    fname("filename=\"%2\"", "%2");
    fname("filename=\"%\"", "%");
    fname("filename=\"report%22\"", "report\""); /* an escape that ends the value */
    fname("filename=\"...\"", "...");
    fname("filename=\".hidden\"", ".hidden");
    fname("filename=\"a b  c\"", "a b  c");
    fname("filename=\"r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80.jsonl\"",
          "r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80.jsonl");
    fname("filename=x.jsonl", "x.jsonl");
    fname("FILENAME=\"x.jsonl\"", "x.jsonl");
    fname("filename*=UTF-8''%E2%82%AC%20rates.jsonl", "\xe2\x82\xac rates.jsonl");
    fname("filename*=utf-8'en'a.jsonl", "a.jsonl");
    fname("filename*=UTF-8''dir%2Fa.jsonl", "a.jsonl");
    fname("filename*=UTF-8''dir%5ca.jsonl", "a.jsonl");
    fname("filename*=ISO-8859-1''caf%E9.jsonl", "caf\xc3\xa9.jsonl");
    fname("filename*=UTF-8''%22q%22", "\"q\"");
    fname("filename=\"fallback.txt\"; filename*=UTF-8''real.jsonl", "real.jsonl");
    fname("filename*=UTF-8''real.jsonl; filename=\"fallback.txt\"", "real.jsonl");
    /* filename* wins: a bad or empty filename beside it is not looked at */
    fname("filename=\"\"; filename*=UTF-8''real.jsonl", "real.jsonl");
    fname("filename=\"bad\xff%0A\"; filename*=UTF-8''real.jsonl", "real.jsonl");
    fname("filename*=\"UTF-8''quoted.jsonl\"", "quoted.jsonl");

    /* the limit: 255 bytes accepted, 256 rejected; a longer path is fine */
    buf_adds(&p, "filename=\"");
    buf_rep(&p, 'n', 249);
    buf_adds(&p, ".jsonl\"");
    buf_rep(&w, 'n', 249);
    buf_adds(&w, ".jsonl");
    fname(p.p, w.p);
    buf_free(&p);
    buf_adds(&p, "filename=\"");
    buf_rep(&p, 'n', 250);
    buf_adds(&p, ".jsonl\"");
    fname_bad(p.p, "bad filename: it is longer than 255 bytes");
    buf_free(&p);
    buf_adds(&p, "filename=\"");
    buf_rep(&p, 'd', 400);
    buf_adds(&p, "/");
    buf_rep(&p, 'd', 400);
    buf_adds(&p, "\\\\");
    buf_adds(&p, w.p);
    buf_adds(&p, "\"");
    fname(p.p, w.p);
    buf_free(&p);
    buf_free(&w);
    buf_adds(&p, "filename=\"");
    for (i = 0; i < 85; i++)
        buf_adds(&p, "\xe2\x82\xac"); /* 255 bytes of euro signs */
    buf_adds(&p, "\"");
    for (i = 0; i < 85; i++)
        buf_adds(&w, "\xe2\x82\xac");
    fname(p.p, w.p);
    buf_free(&w);
    buf_free(&p);
    buf_adds(&p, "filename*=UTF-8''");
    for (i = 0; i < 86; i++)
        buf_adds(&p, "%E2%82%AC"); /* 258 bytes */
    fname_bad(p.p, "longer than 255 bytes");
    buf_free(&p);
    buf_adds(&p, "filename*=ISO-8859-1''");
    for (i = 0; i < 128; i++)
        buf_adds(&p, "%E9"); /* 256 bytes of UTF-8 */
    fname_bad(p.p, "longer than 255 bytes");
    buf_free(&p);

    fname_bad("filename=\"\"", "bad filename: it is empty");
    fname_bad("filename=", "bad filename: it is empty");
    fname_bad("filename*=UTF-8''", "bad filename: it is empty");
    fname_bad("filename=\"dir/\"", "nothing follows the last");
    fname_bad("filename=\"dir\\\\\"", "nothing follows the last");
    fname_bad("filename=\".\"", "\".\" is not a file name");
    fname_bad("filename=\"..\"", "\"..\" is not a file name");
    fname_bad("filename=\"a/..\"", "\"..\" is not a file name");
    fname_bad("filename*=UTF-8''%2E%2E", "\"..\" is not a file name");
    fname_bad("filename=\"a%0Db.jsonl\"", "bad filename: it contains a control character");
    fname_bad("filename=\"a%0ab.jsonl\"", "contains a control character");
    fname_bad("filename=\"a%0db\"", "contains a control character"); /* lowercase CR too */
    fname_bad("filename=\"a\tb\"", "contains a control character");
    fname_bad("filename*=UTF-8''a%00b", "contains a control character");
    fname_bad("filename*=UTF-8''a%7Fb", "contains a control character");
    fname_bad("filename*=UTF-8''a%1Bb", "contains a control character");
    fname_bad("filename*=UTF-8''a%1Fb", "contains a control character");    /* the last C0 */
    fname_bad("filename*=UTF-8''a%C2%80b", "contains a control character"); /* C1: U+0080 */
    fname_bad("filename=\"a\xc2\x85z\"", "contains a control character");   /* U+0085 NEL */
    fname_bad("filename=\"a\xc2\x9f\"", "contains a control character");    /* U+009F */
    fname_bad("filename*=ISO-8859-1''a%9Fb", "contains a control character");
    /* the first Latin-1 byte to convert: U+0080, not a raw (invalid UTF-8) 0x80 */
    fname_bad("filename*=ISO-8859-1''a%80b", "contains a control character");
    fname("filename=\"a\xc2\xa0z\"", "a\xc2\xa0z");         /* U+00A0, the first after C1 */
    fname("filename=\"a\xe2\x80\xa8z\"", "a\xe2\x80\xa8z"); /* U+2028 is not Cc */
    fname_bad("filename=\"\xff.jsonl\"", "bad filename: it is not valid UTF-8");
    fname_bad("filename=\"\xc0\xaf.jsonl\"", "not valid UTF-8");         /* overlong */
    fname_bad("filename=\"\xe0\x80\xaf.jsonl\"", "not valid UTF-8");     /* overlong '/' */
    fname_bad("filename=\"a\xe2\x82\xc0.jsonl\"", "not valid UTF-8");    /* 3rd byte no cont. */
    fname_bad("filename=\"\xed\xa0\x80.jsonl\"", "not valid UTF-8");     /* surrogate */
    fname_bad("filename=\"\xf4\x90\x80\x80.jsonl\"", "not valid UTF-8"); /* > U+10FFFF */
    fname_bad("filename=\"a\xe2\x82\"", "not valid UTF-8");              /* truncated */
    fname_bad("filename*=UTF-8''%FF.jsonl", "not valid UTF-8");
    fname_bad("filename*=UTF-16''a", "neither UTF-8 nor ISO-8859-1");
    fname_bad("filename*=a.jsonl", "charset'language'value");
    fname_bad("filename*=UTF-8'a.jsonl", "charset'language'value");
    fname_bad("filename*=UTF-8''a%2", "two hex digits");
    fname_bad("filename*=UTF-8''a%zz", "two hex digits");
    fname_bad("filename=\"good.jsonl\"; filename*=UTF-8''bad%0A", "contains a control character");
}

/* ---- limits: each at the limit and one over ---- */

static void test_limits(void)
{
    struct buf b = {0}, w = {0};
    size_t fixed;
    int i;

    /* MULTIPART_MAX_FIELD: a text field's value */
    buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n");
    buf_rep(&b, 'v', MULTIPART_MAX_FIELD);
    buf_adds(&b, "\r\n--b--");
    buf_adds(&w, "B name=purpose file= has=0 ct=\nD:");
    buf_rep(&w, 'v', MULTIPART_MAX_FIELD);
    buf_adds(&w, "|\nE\n");
    expect_ok("field at 4096", "b", b.p, b.len, w.p);
    buf_free(&b);
    buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n");
    buf_rep(&b, 'v', MULTIPART_MAX_FIELD + 1);
    buf_adds(&b, "\r\n--b--");
    expect_error("field at 4097", "b", b.p, b.len,
                 "the value of field \"purpose\" is longer than 4096 bytes");
    {
        /* exactly the first 4096 bytes were delivered */
        struct result r;
        run_cuts(&r, "b", b.p, b.len, NULL, 0, 0);
        CHECK(r.rec.log.len == strlen("B name=purpose file= has=0 ct=\nD:") + 4096 + 2);
        result_free(&r);
    }
    buf_free(&b);
    /* the 4097th byte may be the start of a would-be boundary */
    buf_adds(&b, "--bound\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n");
    buf_rep(&b, 'v', MULTIPART_MAX_FIELD);
    buf_adds(&b, "\r\n--bounX\r\n--bound--");
    expect_error("field at 4096 + a near-boundary", "bound", b.p, b.len,
                 "field \"f\" is longer than 4096 bytes");
    buf_free(&b);
    /* a part with a filename has no such limit */
    buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n");
    buf_rep(&b, 'v', 3 * MULTIPART_MAX_FIELD);
    buf_adds(&b, "\r\n--b--");
    buf_free(&w);
    buf_adds(&w, "B name=file file=a has=1 ct=\nD:");
    buf_rep(&w, 'v', 3 * MULTIPART_MAX_FIELD);
    buf_adds(&w, "|\nE\n");
    expect_ok("file part over 4096", "b", b.p, b.len, w.p);
    buf_free(&b);
    buf_free(&w);

    /* MULTIPART_MAX_PARTS */
    for (i = 0; i < MULTIPART_MAX_PARTS; i++) {
        buf_addf(&b, "--b\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\n%d\r\n", i, i);
        buf_addf(&w, "B name=f%d file= has=0 ct=\nD:%d|\nE\n", i, i);
    }
    buf_adds(&b, "--b--\r\n");
    expect_ok("16 parts", "b", b.p, b.len, w.p);
    b.len -= strlen("--b--\r\n");
    buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=\"f16\"\r\n\r\n16\r\n--b--\r\n");
    expect_error("17 parts", "b", b.p, b.len, "too many parts: at most 16");
    buf_free(&b);
    buf_free(&w);

    /* MULTIPART_MAX_HEADER_BLOCK: the bytes from after the boundary line to
     * the blank line's CRLF, both included */
    fixed = strlen(CD_A) + strlen("X-Pad: ") + 2 + 2;
    buf_adds(&b, "--b\r\n" CD_A "X-Pad: ");
    buf_rep(&b, 'p', MULTIPART_MAX_HEADER_BLOCK - fixed);
    buf_adds(&b, "\r\n\r\nv\r\n--b--");
    expect_ok("header block at 8192", "b", b.p, b.len, "B name=a file= has=0 ct=\nD:v|\nE\n");
    buf_free(&b);
    buf_adds(&b, "--b\r\n" CD_A "X-Pad: ");
    buf_rep(&b, 'p', MULTIPART_MAX_HEADER_BLOCK - fixed + 1);
    buf_adds(&b, "\r\n\r\nv\r\n--b--");
    expect_error("header block at 8193", "b", b.p, b.len, "header block is larger than 8192 bytes");
    buf_free(&b);
    buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=\"a\"; x=\"");
    buf_rep(&b, 'p', 3 * MULTIPART_MAX_HEADER_BLOCK);
    buf_adds(&b, "\"\r\n\r\nv\r\n--b--");
    expect_error("one endless header line", "b", b.p, b.len, "larger than 8192 bytes");
    buf_free(&b);

    /* MULTIPART_MAX_NAME for field names */
    buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=\"");
    buf_rep(&b, 'n', MULTIPART_MAX_NAME);
    buf_adds(&b, "\"\r\n\r\nv\r\n--b--");
    buf_adds(&w, "B name=");
    buf_rep(&w, 'n', MULTIPART_MAX_NAME);
    buf_adds(&w, " file= has=0 ct=\nD:v|\nE\n");
    expect_ok("name at 255", "b", b.p, b.len, w.p);
    buf_free(&b);
    buf_free(&w);
    buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=\"");
    buf_rep(&b, 'n', MULTIPART_MAX_NAME + 1);
    buf_adds(&b, "\"\r\n\r\nv\r\n--b--");
    expect_error("name at 256", "b", b.p, b.len, "bad field name: it is longer than 255 bytes");
    buf_free(&b);

    /* MULTIPART_MAX_CONTENT_TYPE */
    buf_adds(&b, "--b\r\n" CD_A "Content-Type: ");
    buf_rep(&b, 't', MULTIPART_MAX_CONTENT_TYPE);
    buf_adds(&b, "\r\n\r\nv\r\n--b--");
    buf_adds(&w, "B name=a file= has=0 ct=");
    buf_rep(&w, 't', MULTIPART_MAX_CONTENT_TYPE);
    buf_adds(&w, "\nD:v|\nE\n");
    expect_ok("Content-Type at 127", "b", b.p, b.len, w.p);
    buf_free(&b);
    buf_free(&w);
    buf_adds(&b, "--b\r\n" CD_A "Content-Type: ");
    buf_rep(&b, 't', MULTIPART_MAX_CONTENT_TYPE + 1);
    buf_adds(&b, "\r\n\r\nv\r\n--b--");
    expect_error("Content-Type at 128", "b", b.p, b.len, "Content-Type is longer than 127 bytes");
    buf_free(&b);

    /* MULTIPART_MAX_BOUNDARY in a body (71 is refused by init, see test_init) */
    buf_rep(&w, 'B', MULTIPART_MAX_BOUNDARY);
    buf_addf(&b, "--%s\r\n" CD_A "\r\nv\r\n--%s--", w.p, w.p);
    expect_ok("boundary at 70", w.p, b.p, b.len, "B name=a file= has=0 ct=\nD:v|\nE\n");
    buf_free(&b);
    buf_free(&w);
}

/* ---- streaming: pass-through, large parts, callbacks ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_streaming(void)
{
    struct buf b = {0}, data = {0};
    struct result r;
    size_t i, cuts[4096], ncuts;
    int round;

    /* a file part fed whole arrives in one piece, straight from the chunk */
    buf_adds(&b, "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n");
    for (i = 0; i < 1 << 20; i++)
        buf_add(&data, i % 100 == 99 ? "\n" : "x", 1);
    buf_add(&b, data.p, data.len);
    buf_adds(&b, "\r\n--b--\r\n");
    run_cuts(&r, "b", b.p, b.len, NULL, 0, 0);
    CHECK(r.status == MULTIPART_OK);
    CHECKF(r.rec.pieces == 1 && r.rec.max_piece == data.len, "pieces %zu max %zu", r.rec.pieces,
           r.rec.max_piece);
    result_free(&r);
    /* in 64 KiB chunks: one piece per chunk */
    for (ncuts = 0; (ncuts + 1) * 65536 < b.len; ncuts++)
        cuts[ncuts] = (ncuts + 1) * 65536;
    run_cuts(&r, "b", b.p, b.len, cuts, ncuts, 0);
    CHECK(r.status == MULTIPART_OK);
    CHECKF(r.rec.pieces == ncuts + 1, "pieces %zu for %zu chunks", r.rec.pieces, ncuts + 1);
    CHECK(r.rec.log.len > data.len &&
          memcmp(r.rec.log.p + r.rec.log.len - data.len - 4, data.p, data.len) == 0);
    result_free(&r);
    buf_free(&b);
    buf_free(&data);

    /* random binary data full of near-boundaries, random chunkings */
    for (round = 0; round < 20; round++) {
        static const char *bits[] = {"\r",       "\n",          "\r\n",       "\r\n-", "\r\n--",
                                     "\r\n--bo", "\r\n--bound", "--boundary", "x",     "\0"};
        struct result whole;
        buf_adds(&b, "pre\r\n--boundary\r\nContent-Disposition: form-data; name=\"file\"; "
                     "filename=\"r.bin\"\r\n\r\n");
        while (data.len < 200000) {
            size_t k = rng() % 11;
            if (k == 10) {
                char c = (char)rng();
                buf_add(&data, &c, 1);
            } else {
                buf_add(&data, bits[k], k == 9 ? 1 : strlen(bits[k]));
            }
        }
        /* the data must not contain the delimiter */
        for (i = 0; i + 12 <= data.len; i++)
            if (memcmp(data.p + i, "\r\n--boundary", 12) == 0)
                data.p[i] = 'X';
        while (data.len && data.p[data.len - 1] == '\r')
            data.len--;  /* keep "\r\r\n--boundary" out of the test's own way */
        data.p[0] = 'S'; /* "--boundary" right after the header block is a delimiter */
        buf_add(&b, data.p, data.len);
        buf_adds(&b, "\r\n--boundary--\r\n");
        run_cuts(&whole, "boundary", b.p, b.len, NULL, 0, 0);
        CHECKF(whole.status == MULTIPART_OK, "random round %d: %s", round, whole.error);
        ncuts = 0;
        for (i = 1 + rng() % 64; i < b.len && ncuts < 4096;
             i += 1 + rng() % (round < 10 ? 64 : 9000))
            cuts[ncuts++] = i;
        run_cuts(&r, "boundary", b.p, b.len, cuts, ncuts, 0);
        CHECKF(result_same(&whole, &r), "random round %d differs", round);
        {
            const char *d = memmem(whole.rec.log.p, whole.rec.log.len, "D:", 2);
            CHECK(d != NULL && memcmp(d + 2, data.p, data.len) == 0 && d[2 + data.len] == '|');
        }
        result_free(&whole);
        result_free(&r);
        buf_free(&b);
        buf_free(&data);
    }
}

static void test_callbacks(void)
{
    static const char body[] = "--b\r\n" CD_A "\r\nvalue\r\n--b--\r\n";
    struct multipart_parser p;
    struct result r;
    size_t cut = 12;
    int on;

    for (on = 0; on < 3; on++) {
        int which = "BDE"[on];
        run_cuts(&r, "b", LIT(body), NULL, 0, which);
        CHECKF(r.status == MULTIPART_ABORTED, "abort in %c: %d", which, r.status);
        CHECK(r.error[0] != '\0');
        result_free(&r);
        run_cuts(&r, "b", LIT(body), &cut, 1, which);
        CHECK(r.status == MULTIPART_ABORTED);
        result_free(&r);
    }
    /* aborted is sticky */
    {
        struct rec rec = {0};
        rec.abort_on = 'B';
        CHECK(multipart_parser_init(&p, "b", &rec_callbacks, &rec) == 0);
        CHECK(multipart_parser_feed(&p, LIT(body)) == MULTIPART_ABORTED);
        CHECK(multipart_parser_feed(&p, LIT("x")) == MULTIPART_ABORTED);
        CHECK(multipart_parser_finish(&p) == MULTIPART_ABORTED);
        buf_free(&rec.log);
    }
    /* errors are sticky and keep their message */
    CHECK(multipart_parser_init(&p, "b", NULL, NULL) == 0);
    CHECK(multipart_parser_feed(&p, LIT("--b\r\nbad\r\n")) == MULTIPART_ERROR);
    CHECK_STR(multipart_parser_error(&p), "part header without a colon");
    CHECK(multipart_parser_feed(&p, LIT("--b--")) == MULTIPART_ERROR);
    CHECK(multipart_parser_finish(&p) == MULTIPART_ERROR);
    CHECK_STR(multipart_parser_error(&p), "part header without a colon");
    /* NULL callbacks; empty feeds; feed after finish */
    CHECK(multipart_parser_init(&p, "b", NULL, NULL) == 0);
    CHECK(multipart_parser_feed(&p, NULL, 0) == MULTIPART_OK);
    CHECK(multipart_parser_feed(&p, LIT(body)) == MULTIPART_OK);
    CHECK(multipart_parser_feed(&p, LIT("epilogue, ignored")) == MULTIPART_OK);
    CHECK(multipart_parser_finish(&p) == MULTIPART_OK);
    CHECK(multipart_parser_finish(&p) == MULTIPART_OK);
    CHECK(multipart_parser_feed(&p, LIT("x")) == MULTIPART_ERROR);
    CHECK(strstr(multipart_parser_error(&p), "after the end") != NULL);
    /* a fresh parser can be copied (no pointers into itself) */
    {
        struct multipart_parser a, c;
        CHECK(multipart_parser_init(&a, "b", NULL, NULL) == 0);
        c = a;
        CHECK(multipart_parser_feed(&c, LIT(body)) == MULTIPART_OK);
        CHECK(multipart_parser_finish(&c) == MULTIPART_OK);
    }
}

/* ---- tests/multipart-corpus: every body must be rejected ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct buf b = {0};
    char tmp[65536];
    size_t n;

    if (f == NULL)
        return NULL;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_add(&b, tmp, n);
    fclose(f);
    if (b.p == NULL)
        buf_add(&b, "", 0);
    *len = b.len;
    return b.p;
}

static DIR *corpus_open(char *dir, size_t size)
{
    const char *env = getenv("MULTIPART_CORPUS_DIR");
    const char *slash = strrchr(__FILE__, '/');
    DIR *d;

    if (env != NULL) {
        snprintf(dir, size, "%s", env);
        return opendir(dir);
    }
    snprintf(dir, size, "tests/multipart-corpus");
    if ((d = opendir(dir)) != NULL)
        return d;
    snprintf(dir, size, "%.*s/../multipart-corpus", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".");
    return opendir(dir);
}

static void test_corpus(void)
{
    char dir[4096], path[4600];
    DIR *d = corpus_open(dir, sizeof dir);
    struct dirent *e;
    int files = 0, ctype_errors = 0;

    CHECKF(d != NULL, "cannot open the corpus (tried %s; set MULTIPART_CORPUS_DIR)", dir);
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        size_t nlen = strlen(e->d_name), blen, clen, xlen;
        char *body, *ct, *expect, boundary[MULTIPART_MAX_BOUNDARY + 1];
        const char *why = NULL;
        int rc;

        if (nlen < 6 || strcmp(e->d_name + nlen - 5, ".body") != 0)
            continue;
        files++;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        body = read_file(path, &blen);
        snprintf(path, sizeof path, "%s/%.*s.content-type", dir, (int)(nlen - 5), e->d_name);
        ct = read_file(path, &clen);
        snprintf(path, sizeof path, "%s/%.*s.expect", dir, (int)(nlen - 5), e->d_name);
        expect = read_file(path, &xlen);
        CHECKF(body && ct && expect, "%s: a .content-type or .expect sidecar is missing",
               e->d_name);
        if (body == NULL || ct == NULL || expect == NULL) {
            free(body);
            free(ct);
            free(expect);
            continue;
        }
        while (clen > 0 && (ct[clen - 1] == '\n' || ct[clen - 1] == '\r'))
            ct[--clen] = '\0';
        while (xlen > 0 && (expect[xlen - 1] == '\n' || expect[xlen - 1] == '\r'))
            expect[--xlen] = '\0';
        CHECKF(xlen > 0, "%s: empty .expect", e->d_name);
        rc = multipart_boundary_from_content_type(ct, boundary, sizeof boundary, &why);
        if (strncmp(e->d_name, "ctype-", 6) == 0) {
            CHECKF(rc == -1, "%s: the Content-Type \"%s\" was accepted", e->d_name, ct);
            CHECKF(rc == -1 && strstr(why, expect) != NULL, "%s: \"%s\" lacks \"%s\"", e->d_name,
                   why, expect);
            ctype_errors++;
        } else {
            CHECKF(rc == 0, "%s: Content-Type rejected: %s", e->d_name, why);
            if (rc == 0)
                expect_error(e->d_name, boundary, body, blen, expect);
        }
        free(body);
        free(ct);
        free(expect);
    }
    closedir(d);
    CHECKF(files >= 40, "only %d corpus bodies", files);
    printf("corpus: %d bodies rejected (%d by the Content-Type)\n", files, ctype_errors);
}

/* The name rules on their own, as the admin tool's import uses them. */
#define NAME_PROBLEM(s) multipart_name_problem((s), strlen(s))

static void test_name_problem(void)
{
    char name[MULTIPART_MAX_NAME + 2];

    memset(name, 'a', sizeof name);
    CHECK(NAME_PROBLEM("batch.jsonl") == NULL);
    CHECK(NAME_PROBLEM("r\xc3\xa9sum\xc3\xa9 \xf0\x9f\x93\x84.jsonl") == NULL);
    CHECK(multipart_name_problem(name, MULTIPART_MAX_NAME) == NULL);
    CHECK_STR(multipart_name_problem(name, MULTIPART_MAX_NAME + 1), "it is longer than 255 bytes");
    CHECK_STR(NAME_PROBLEM(""), "it is empty");
    CHECK_STR(NAME_PROBLEM("\xff\xfe.jsonl"), "it is not valid UTF-8");
    CHECK_STR(NAME_PROBLEM("\xed\xa0\x80"), "it is not valid UTF-8"); /* surrogate */
    CHECK_STR(NAME_PROBLEM("\xc0\xaf"), "it is not valid UTF-8");     /* overlong */
    CHECK(NAME_PROBLEM("a\r\nX-Evil: 1") != NULL);
    CHECK(NAME_PROBLEM("a\x7f") != NULL);
    CHECK(NAME_PROBLEM("a\x1f.jsonl") != NULL); /* U+001F, the last C0 control */
    CHECK(NAME_PROBLEM("a\xc2\x85") != NULL);   /* U+0085, a C1 control */
    CHECK(NAME_PROBLEM("a\xc2\xa0") == NULL);   /* U+00A0 is not one */
}

int main(void)
{
    test_content_type();
    test_init();
    test_clients();
    test_framing();
    test_headers();
    test_filenames();
    test_name_problem();
    test_limits();
    test_streaming();
    test_callbacks();
    test_corpus();
    printf("split runs: %lu\n", split_runs);
    TEST_MAIN_END();
}
