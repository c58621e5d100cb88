/* Unit tests for the streaming JSONL validator (src/jsonl.c, included below to
 * reach its static functions and to count its allocations).
 *
 * Runs the conformance corpus in tests/jsonl-corpus (each case whole, split at
 * every byte position, and in small pieces down to one byte), cross-checks
 * random inputs against a small recursive reference validator written here,
 * and tests the limits, batch rules, memory and out-of-memory behaviour.
 * The corpus is found through $JSONL_CORPUS, else next to this file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocation accounting and failure injection ---- */

static long test_alloc_calls;   /* allocations so far */
static long test_alloc_fail_at; /* fail the allocation with this number (1-based); 0: never */
static size_t test_alloc_live;  /* bytes held */
static size_t test_alloc_peak;  /* most bytes held at once */

static void *test_malloc(size_t n)
{
    unsigned char *p;
    if (++test_alloc_calls == test_alloc_fail_at)
        return NULL;
    p = malloc(n + 16);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    test_alloc_live += n;
    if (test_alloc_live > test_alloc_peak)
        test_alloc_peak = test_alloc_live;
    return p + 16;
}

static void *test_calloc(size_t n, size_t size)
{
    void *p;
    if (size && n > SIZE_MAX / size)
        return NULL;
    p = test_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static void test_free(void *p)
{
    size_t n;
    if (!p)
        return;
    memcpy(&n, (unsigned char *)p - 16, sizeof n);
    test_alloc_live -= n;
    free((unsigned char *)p - 16);
}

#define JSONL_MALLOC(n) test_malloc(n)
#define JSONL_CALLOC(n, size) test_calloc((n), (size))
#define JSONL_FREE(p) test_free(p)
/* The merge's bucket, small: the spill tests below fill it, compact it and grow
 * it (past 32 distinct fingerprints of one top byte), each checked against the
 * set alone. */
#define JSONL_BUCKET_MAX 64

#include "../../src/jsonl_ids.c"
#include "../../src/jsonl.c"
#include "testlib.h"

/* ---- running the validator ---- */

struct outcome {
    int rc;
    uint64_t line, column, objects;
    const char *code;
    char reason[192];
    char message[256];
};

static const struct jsonl_options plain_options = {0};
static const struct jsonl_options batch_options = {.check_batch = 1, .hash_seed = 0x5eed};

/* Runs checked in run_cuts that broke an API rule (counted, reported once). */
static unsigned long api_rule_breaks;

#define RULE(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond) && api_rule_breaks++ < 5)                                                      \
            fprintf(stderr, "%s:%d: API rule broken: %s\n", __FILE__, __LINE__, #cond);            \
    } while (0)

/* Feeds len bytes in pieces ending at cuts[0..ncuts) (ascending, inside the
 * data), then the rest, then finishes; fills *out. Also checks that errors are
 * sticky and that zero-length feeds are harmless. */
static void run_cuts(const unsigned char *d, size_t len, const struct jsonl_options *o,
                     const size_t *cuts, size_t ncuts, struct outcome *out)
{
    struct jsonl_validator *v = jsonl_validator_new(o);
    size_t at = 0;
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (!v) {
        out->rc = -3;
        return;
    }
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        rc = jsonl_validator_feed(v, d + at, to - at);
        if (rc == 0)
            rc = jsonl_validator_feed(v, d + to, 0);
        at = to;
    }
    if (rc == 0) {
        RULE(jsonl_validator_error(v) == NULL);
        rc = jsonl_validator_finish(v);
    }
    out->rc = rc;
    out->objects = jsonl_validator_objects(v);
    if (rc) {
        const struct jsonl_error *e = jsonl_validator_error(v);
        out->line = e->line;
        out->column = e->column;
        out->code = e->reason_code;
        snprintf(out->reason, sizeof out->reason, "%s", e->reason);
        snprintf(out->message, sizeof out->message, "%s", e->message);
        /* sticky */
        RULE(jsonl_validator_feed(v, "{}", 2) == rc);
        RULE(jsonl_validator_finish(v) == rc);
        RULE(jsonl_validator_error(v) == e && e->line == out->line && e->column == out->column);
    } else {
        RULE(jsonl_validator_finish(v) == 0);
    }
    jsonl_validator_free(v);
}

static void run_whole(const unsigned char *d, size_t len, const struct jsonl_options *o,
                      struct outcome *out)
{
    run_cuts(d, len, o, NULL, 0, out);
}

/* Pieces of chunk bytes each. */
static void run_chunks(const unsigned char *d, size_t len, const struct jsonl_options *o,
                       size_t chunk, struct outcome *out)
{
    size_t n = len ? (len - 1) / chunk : 0;
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = (i + 1) * chunk;
    run_cuts(d, len, o, cuts, n, out);
    free(cuts);
}

static int same_outcome(const struct outcome *a, const struct outcome *b)
{
    return a->rc == b->rc && a->line == b->line && a->column == b->column &&
           a->objects == b->objects && a->code == b->code && strcmp(a->message, b->message) == 0;
}

static void print_bytes(const unsigned char *d, size_t len)
{
    for (size_t i = 0; i < len && i < 300; i++)
        fprintf(stderr, d[i] >= 0x20 && d[i] < 0x7f && d[i] != '\\' ? "%c" : "\\x%02X", d[i]);
    fputc('\n', stderr);
}

/* Every way of splitting d gives the same outcome as feeding it whole. */
static void check_splits(const char *name, const unsigned char *d, size_t len,
                         const struct jsonl_options *o, const struct outcome *whole)
{
    static const size_t chunks[] = {1, 2, 3, 5, 7, 16, 31, 64};
    struct outcome got;
    int bad = 0;
    if (len <= 600) {
        for (size_t cut = 1; cut < len && !bad; cut++) {
            run_cuts(d, len, o, &cut, 1, &got);
            if (!same_outcome(&got, whole)) {
                bad = 1;
                fprintf(stderr, "%s: split at %zu: rc %d %s / whole rc %d %s\n", name, cut, got.rc,
                        got.message, whole->rc, whole->message);
            }
        }
    }
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0] && !bad; i++) {
        if (chunks[i] >= len)
            break;
        run_chunks(d, len, o, chunks[i], &got);
        if (!same_outcome(&got, whole)) {
            bad = 1;
            fprintf(stderr, "%s: chunks of %zu: rc %d %s / whole rc %d %s\n", name, chunks[i],
                    got.rc, got.message, whole->rc, whole->message);
        }
    }
    CHECKF(!bad, "%s: splitting changes the outcome", name);
    if (bad)
        print_bytes(d, len);
}

/* ---- the corpus ---- */

static char corpus_dir[1024];

static void find_corpus(void)
{
    const char *env = getenv("JSONL_CORPUS");
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    if (env && *env) {
        snprintf(corpus_dir, sizeof corpus_dir, "%s", env);
        return;
    }
    /* __FILE__ is tests/unit/test_jsonl.c (or absolute): ../jsonl-corpus beside it */
    if (slash)
        snprintf(corpus_dir, sizeof corpus_dir, "%.*s/../jsonl-corpus", (int)(slash - file), file);
    else
        snprintf(corpus_dir, sizeof corpus_dir, "../jsonl-corpus");
}

static char *read_file(const char *name, size_t *len)
{
    char path[1200];
    FILE *f;
    char *buf;
    long n;
    snprintf(path, sizeof path, "%s/%s", corpus_dir, name);
    f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (set JSONL_CORPUS to the corpus directory)\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a case: \xHH is a byte, all else stands for itself. Returns the length. */
static size_t decode_case(const char *s, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 3 < n && s[i + 1] == 'x' && hexval(s[i + 2]) >= 0 &&
            hexval(s[i + 3]) >= 0) {
            out[o++] = (unsigned char)(hexval(s[i + 2]) * 16 + hexval(s[i + 3]));
            i += 3;
        } else {
            out[o++] = (unsigned char)s[i];
        }
    }
    return o;
}

struct expect {
    int reject;
    uint64_t line, column;
    const char *code; /* NULL: none */
};

static int corpus_cases;

static void corpus_case(const char *name, const unsigned char *d, size_t len,
                        const struct jsonl_options *o, const struct expect *x)
{
    struct outcome whole;
    corpus_cases++;
    run_whole(d, len, o, &whole);
    if (!x->reject) {
        CHECKF(whole.rc == 0 && whole.objects >= 1, "%s: should be accepted: %s", name,
               whole.message);
    } else {
        CHECKF(whole.rc == -1 && whole.line == x->line && whole.column == x->column &&
                   (x->code ? whole.code && strcmp(whole.code, x->code) == 0 : !whole.code),
               "%s: expected %s at %llu:%llu, got rc %d %s (code %s)", name,
               x->code ? x->code : "syntax error", (unsigned long long)x->line,
               (unsigned long long)x->column, whole.rc, whole.message,
               whole.code ? whole.code : "-");
        if (whole.rc == -1) {
            char prefix[64];
            snprintf(prefix, sizeof prefix,
                     "line %llu, column %llu: ", (unsigned long long)whole.line,
                     (unsigned long long)whole.column);
            CHECK(strncmp(whole.message, prefix, strlen(prefix)) == 0);
            CHECK(strcmp(whole.message + strlen(prefix), whole.reason) == 0);
            CHECK(whole.reason[0] != '\0');
        }
    }
    check_splits(name, d, len, o, &whole);
}

/* Runs one corpus file; kind: 'a' accept, 'r' reject (L:C), 'b' batch reject (L:C:CODE). */
static void corpus_file(const char *file, char kind, const struct jsonl_options *o)
{
    size_t n, lineno = 0;
    char *text = read_file(file, &n);
    char *p, *next;
    int cases = 0;
    CHECKF(text != NULL, "corpus file %s", file);
    if (!text)
        return;
    for (p = text; p < text + n; p = next) {
        char *nl = memchr(p, '\n', (size_t)(text + n - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(text + n - p);
        const char *body = p;
        struct expect x = {0};
        char name[128];
        unsigned char *d, *v2;
        size_t dl;
        next = p + l + 1;
        lineno++;
        if (l == 0 || p[0] == '#')
            continue;
        CHECKF(memchr(p, '\r', l) == NULL, "%s:%zu: CR in the corpus file", file, lineno);
        if (kind != 'a') {
            unsigned long long line, column;
            char code[64] = "";
            const char *sp = memchr(p, ' ', l);
            int ok =
                sp && (kind == 'r' ? sscanf(p, "%llu:%llu ", &line, &column) == 2
                                   : sscanf(p, "%llu:%llu:%63[^ ] ", &line, &column, code) == 3);
            CHECKF(ok, "%s:%zu: bad case header", file, lineno);
            if (!ok)
                continue;
            x.reject = 1;
            x.line = line;
            x.column = column;
            if (kind == 'b' && strcmp(code, "-") != 0) {
                static const char *const codes[] = {
                    "duplicate_custom_id", "missing_required_parameter",
                    "invalid_method",      "invalid_url",
                    "url_mismatch",        "invalid_body"};
                for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
                    if (strcmp(code, codes[i]) == 0)
                        x.code = codes[i];
                CHECKF(x.code != NULL, "%s:%zu: unknown code %s", file, lineno, code);
            }
            body = sp + 1;
        }
        d = malloc(l + 1);
        dl = decode_case(body, (size_t)(p + l - body), d);
        snprintf(name, sizeof name, "%s:%zu", file, lineno);
        corpus_case(name, d, dl, o, &x);
        cases++;

        /* the same case after a blank line: one line further down, same column */
        v2 = malloc(dl + 16);
        v2[0] = '\n';
        memcpy(v2 + 1, d, dl);
        snprintf(name, sizeof name, "%s:%zu (after a blank line)", file, lineno);
        {
            struct expect x2 = x;
            if (x2.reject)
                x2.line++;
            corpus_case(name, v2, dl + 1, o, &x2);
        }
        if (!x.reject) {
            /* with LF and with CRLF at the end: still accepted */
            memcpy(v2, d, dl);
            memcpy(v2 + dl, "\n", 1);
            snprintf(name, sizeof name, "%s:%zu (+LF)", file, lineno);
            corpus_case(name, v2, dl + 1, o, &x);
            memcpy(v2 + dl, "\r\n", 2);
            snprintf(name, sizeof name, "%s:%zu (+CRLF)", file, lineno);
            corpus_case(name, v2, dl + 2, o, &x);
        } else if (kind == 'r') {
            /* after a valid line */
            struct expect x2 = x;
            memcpy(v2, "{}\n", 3);
            memcpy(v2 + 3, d, dl);
            x2.line++;
            snprintf(name, sizeof name, "%s:%zu (after {})", file, lineno);
            corpus_case(name, v2, dl + 3, o, &x2);
        }
        free(v2);
        free(d);
    }
    printf("corpus %s: %d cases\n", file, cases);
    free(text);
}

static void test_corpus(void)
{
    find_corpus();
    corpus_file("accept.txt", 'a', &plain_options);
    corpus_file("reject.txt", 'r', &plain_options);
    corpus_file("batch-accept.txt", 'a', &batch_options);
    corpus_file("batch-reject.txt", 'b', &batch_options);
    /* every plain-mode accept is also a valid line for a validator with batch off
     * and a depth limit high enough; and every batch accept is plain-valid */
    {
        size_t n;
        char *text = read_file("batch-accept.txt", &n);
        if (text) {
            for (char *p = text, *next; p < text + n; p = next) {
                char *nl = memchr(p, '\n', (size_t)(text + n - p));
                size_t l = nl ? (size_t)(nl - p) : (size_t)(text + n - p);
                next = p + l + 1;
                if (l && p[0] != '#') {
                    unsigned char *d = malloc(l);
                    size_t dl = decode_case(p, l, d);
                    struct outcome out;
                    run_whole(d, dl, &plain_options, &out);
                    CHECK(out.rc == 0);
                    free(d);
                }
            }
            free(text);
        }
    }
}

/* ---- a reference validator: recursive, whole input, written for clarity ---- */

struct ref {
    const unsigned char *d;
    size_t len, pos; /* pos: the next byte */
    size_t line_end; /* offset of the current line's LF (or len) */
    unsigned depth, max_depth;
    size_t err; /* offset of the first problem */
};

static int ref_fail(struct ref *r, size_t at)
{
    r->err = at;
    return -1;
}

static int ref_peek(struct ref *r)
{
    return r->pos < r->line_end ? r->d[r->pos] : -1;
}

static void ref_ws(struct ref *r)
{
    while (r->pos < r->line_end &&
           (r->d[r->pos] == ' ' || r->d[r->pos] == '\t' || r->d[r->pos] == '\r'))
        r->pos++;
}

static int ref_value(struct ref *r);

static int ref_hex4(struct ref *r, unsigned *out)
{
    *out = 0;
    for (int i = 0; i < 4; i++) {
        int c = ref_peek(r), h = c < 0 ? -1 : hexval(c);
        if (h < 0)
            return ref_fail(r, r->pos);
        *out = *out * 16 + (unsigned)h;
        r->pos++;
    }
    return 0;
}

static int ref_string(struct ref *r)
{
    r->pos++; /* the opening quote */
    for (;;) {
        int c = ref_peek(r);
        if (c < 0)
            return ref_fail(r, r->pos);
        if (c == '"') {
            r->pos++;
            return 0;
        }
        if (c < 0x20)
            return ref_fail(r, r->pos);
        if (c == '\\') {
            unsigned u, lo;
            r->pos++;
            c = ref_peek(r);
            if (c < 0 || !strchr("\"\\/bfnrtu", c) || c == 0)
                return ref_fail(r, r->pos);
            r->pos++;
            if (c != 'u')
                continue;
            if (ref_hex4(r, &u))
                return -1;
            if (u >= 0xDC00 && u <= 0xDFFF)
                return ref_fail(r, r->pos - 1);
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (ref_peek(r) != '\\')
                    return ref_fail(r, r->pos);
                r->pos++;
                if (ref_peek(r) != 'u')
                    return ref_fail(r, r->pos);
                r->pos++;
                if (ref_hex4(r, &lo))
                    return -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return ref_fail(r, r->pos - 1);
            }
            continue;
        }
        if (c < 0x80) {
            r->pos++;
            continue;
        }
        /* RFC 3629 §4, as a table of (lead range, first continuation range, count) */
        {
            unsigned lo = 0x80, hi = 0xBF, need;
            if (c >= 0xC2 && c <= 0xDF)
                need = 1;
            else if (c >= 0xE0 && c <= 0xEF)
                need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
            else if (c >= 0xF0 && c <= 0xF4)
                need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
            else
                return ref_fail(r, r->pos);
            r->pos++;
            for (unsigned i = 0; i < need; i++) {
                int b = ref_peek(r);
                if (b < (int)lo || b > (int)hi)
                    return ref_fail(r, r->pos);
                lo = 0x80;
                hi = 0xBF;
                r->pos++;
            }
        }
    }
}

static int ref_digits(struct ref *r)
{
    int c = ref_peek(r);
    if (c < '0' || c > '9')
        return ref_fail(r, r->pos);
    while ((c = ref_peek(r)) >= '0' && c <= '9')
        r->pos++;
    return 0;
}

static int ref_number(struct ref *r)
{
    int c;
    if (ref_peek(r) == '-')
        r->pos++;
    c = ref_peek(r);
    if (c == '0') {
        r->pos++;
        c = ref_peek(r);
        if (c >= '0' && c <= '9')
            return ref_fail(r, r->pos);
    } else if (ref_digits(r)) {
        return -1;
    }
    if (ref_peek(r) == '.') {
        r->pos++;
        if (ref_digits(r))
            return -1;
    }
    c = ref_peek(r);
    if (c == 'e' || c == 'E') {
        r->pos++;
        c = ref_peek(r);
        if (c == '+' || c == '-')
            r->pos++;
        if (ref_digits(r))
            return -1;
    }
    return 0;
}

static int ref_container(struct ref *r, int object)
{
    int close = object ? '}' : ']';
    if (r->depth >= r->max_depth)
        return ref_fail(r, r->pos);
    r->depth++;
    r->pos++;
    ref_ws(r);
    if (ref_peek(r) == close) {
        r->pos++;
        r->depth--;
        return 0;
    }
    for (;;) {
        if (object) {
            ref_ws(r);
            if (ref_peek(r) != '"')
                return ref_fail(r, r->pos);
            if (ref_string(r))
                return -1;
            ref_ws(r);
            if (ref_peek(r) != ':')
                return ref_fail(r, r->pos);
            r->pos++;
        }
        ref_ws(r);
        if (ref_value(r))
            return -1;
        ref_ws(r);
        if (ref_peek(r) == ',') {
            r->pos++;
            continue;
        }
        if (ref_peek(r) == close) {
            r->pos++;
            r->depth--;
            return 0;
        }
        return ref_fail(r, r->pos);
    }
}

static int ref_literal(struct ref *r, const char *word)
{
    for (size_t i = 0; word[i]; i++) {
        if (ref_peek(r) != (unsigned char)word[i])
            return ref_fail(r, r->pos);
        r->pos++;
    }
    return 0;
}

static int ref_value(struct ref *r)
{
    int c = ref_peek(r);
    if (c == '{' || c == '[')
        return ref_container(r, c == '{');
    if (c == '"')
        return ref_string(r);
    if (c == '-' || (c >= '0' && c <= '9'))
        return ref_number(r);
    if (c == 't')
        return ref_literal(r, "true");
    if (c == 'f')
        return ref_literal(r, "false");
    if (c == 'n')
        return ref_literal(r, "null");
    return ref_fail(r, r->pos);
}

/* Returns 0 if d is valid JSONL (plain mode), else -1 with the line and column of
 * the first problem. */
static int ref_validate(const unsigned char *d, size_t len, unsigned max_depth, uint64_t *line,
                        uint64_t *column)
{
    struct ref r = {.d = d, .len = len, .max_depth = max_depth};
    size_t start = 0;
    uint64_t lineno = 1, objects = 0;
    while (start <= len) {
        const unsigned char *nl = memchr(d + start, '\n', len - start);
        r.line_end = nl ? (size_t)(nl - d) : len;
        r.pos = start;
        r.depth = 0;
        ref_ws(&r);
        if (r.pos < r.line_end) {
            int failed = 0;
            size_t err = 0;
            if (ref_peek(&r) != '{') {
                failed = 1;
                err = r.pos;
            } else if (ref_container(&r, 1)) {
                failed = 1;
                err = r.err;
            } else {
                ref_ws(&r);
                if (r.pos < r.line_end) {
                    failed = 1;
                    err = r.pos;
                }
            }
            if (failed) {
                *line = lineno;
                *column = err - start + 1;
                return -1;
            }
            objects++;
        }
        if (!nl)
            break;
        start = r.line_end + 1;
        lineno++;
    }
    if (!objects) {
        *line = 1;
        *column = 1;
        return -1;
    }
    return 0;
}

/* ---- random inputs against the reference ---- */

static uint64_t rng_state = 0x243F6A8885A308D3u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static unsigned below(unsigned n)
{
    return (unsigned)(rng() % n);
}

struct gen {
    unsigned char *d;
    size_t len, cap;
};

static void gen_put(struct gen *g, const char *s, size_t n)
{
    if (g->len + n > g->cap)
        return;
    memcpy(g->d + g->len, s, n);
    g->len += n;
}

static void gen_puts(struct gen *g, const char *s)
{
    gen_put(g, s, strlen(s));
}

static void gen_ws(struct gen *g)
{
    static const char *const ws[] = {"", "", "", " ", "\t", "\r", "  "};
    gen_puts(g, ws[below(7)]);
}

static void gen_string(struct gen *g)
{
    static const char *const parts[] = {"a",
                                        "xyz",
                                        " ",
                                        "\\n",
                                        "\\\"",
                                        "\\\\",
                                        "\\/",
                                        "\\u0041",
                                        "\\u00e9",
                                        "\\uD83D\\uDE00",
                                        "\xC3\xA9",
                                        "\xE2\x82\xAC",
                                        "\xF0\x9F\x98\x80",
                                        "\x7F",
                                        "\\t",
                                        "0123456789abcdefghij",
                                        "\\b\\f\\r",
                                        "\xEF\xBB\xBF",
                                        "'"};
    unsigned n = below(8) ? below(5) : below(40);
    gen_puts(g, "\"");
    for (unsigned i = 0; i < n; i++)
        gen_puts(g, parts[below(sizeof parts / sizeof parts[0])]);
    gen_puts(g, "\"");
}

static void gen_value(struct gen *g, unsigned depth)
{
    static const char *const numbers[] = {"0",   "-0",        "1",      "-1",   "12",
                                          "0.5", "-1.25",     "1e5",    "1E-5", "2e+10",
                                          "0e0", "123456789", "1.0e-0", "-0.0"};
    unsigned k = below(depth > 4 ? 6 : 8);
    switch (k) {
    case 0:
    case 1:
        gen_string(g);
        break;
    case 2:
    case 3:
        gen_puts(g, numbers[below(sizeof numbers / sizeof numbers[0])]);
        break;
    case 4:
        gen_puts(g, below(2) ? "true" : below(2) ? "false" : "null");
        break;
    case 5:
        gen_puts(g, "[]");
        break;
    case 6: {
        unsigned n = below(4);
        gen_puts(g, "[");
        for (unsigned i = 0; i < n; i++) {
            if (i)
                gen_puts(g, ",");
            gen_ws(g);
            gen_value(g, depth + 1);
            gen_ws(g);
        }
        gen_puts(g, "]");
        break;
    }
    default: {
        unsigned n = below(4);
        gen_puts(g, "{");
        for (unsigned i = 0; i < n; i++) {
            if (i)
                gen_puts(g, ",");
            gen_ws(g);
            gen_string(g);
            gen_ws(g);
            gen_puts(g, ":");
            gen_ws(g);
            gen_value(g, depth + 1);
            gen_ws(g);
        }
        gen_puts(g, "}");
    }
    }
}

static void gen_file(struct gen *g)
{
    unsigned lines = 1 + below(3);
    for (unsigned i = 0; i < lines; i++) {
        if (below(4) == 0)
            gen_puts(g, below(2) ? "\n" : " \r\n");
        gen_ws(g);
        gen_puts(g, "{");
        for (unsigned m = 0, n = below(4); m < n; m++) {
            if (m)
                gen_puts(g, ",");
            gen_string(g);
            gen_puts(g, ":");
            gen_ws(g);
            gen_value(g, 1);
        }
        gen_puts(g, "}");
        gen_ws(g);
        if (i + 1 < lines || below(2))
            gen_puts(g, below(3) ? "\n" : "\r\n");
    }
}

/* Damages the input in one to three places with bytes that matter to JSON. */
static void gen_mutate(struct gen *g)
{
    static const unsigned char bytes[] = {
        '{',  '}',  '[',  ']',  ',',  ':',  '"',  '\\', 'u',  '0',  '1',  '-',  '+',  '.',  'e',
        'E',  't',  'f',  'n',  ' ',  '\t', '\r', '\n', 0x00, 0x01, 0x1F, 0x7F, 0x80, 0xBF, 0xC0,
        0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 'D',  '8',  'A',  'x'};
    unsigned n = 1 + below(3);
    for (unsigned i = 0; i < n && g->len; i++) {
        size_t at = below((unsigned)g->len);
        switch (below(3)) {
        case 0: /* replace */
            g->d[at] = bytes[below(sizeof bytes)];
            break;
        case 1: /* delete */
            memmove(g->d + at, g->d + at + 1, g->len - at - 1);
            g->len--;
            break;
        default: /* insert */
            if (g->len < g->cap) {
                memmove(g->d + at + 1, g->d + at, g->len - at);
                g->d[at] = bytes[below(sizeof bytes)];
                g->len++;
            }
        }
    }
}

static void test_against_reference(void)
{
    unsigned char buf[4096];
    int mismatches = 0, accepted = 0, rejected = 0;
    for (int i = 0; i < 30000; i++) {
        struct gen g = {buf, 0, sizeof buf};
        struct outcome out;
        uint64_t line = 0, column = 0;
        int ref_rc;
        gen_file(&g);
        if (i % 3)
            gen_mutate(&g);
        ref_rc = ref_validate(g.d, g.len, JSONL_DEFAULT_MAX_DEPTH, &line, &column);
        if (i % 50 == 0) {
            /* feeding in pieces must not matter either */
            struct outcome whole;
            run_whole(g.d, g.len, &plain_options, &whole);
            check_splits("random", g.d, g.len, &plain_options, &whole);
        }
        run_chunks(g.d, g.len, &plain_options, 1 + below(40), &out);
        if (out.rc == 0)
            accepted++;
        else
            rejected++;
        if ((out.rc == 0) != (ref_rc == 0) ||
            (ref_rc && (out.line != line || out.column != column))) {
            if (mismatches++ < 5) {
                fprintf(stderr,
                        "reference mismatch: validator rc %d %s; reference rc %d at %llu:%llu\n",
                        out.rc, out.message, ref_rc, (unsigned long long)line,
                        (unsigned long long)column);
                print_bytes(g.d, g.len);
            }
        }
    }
    CHECKF(mismatches == 0, "%d mismatches with the reference validator", mismatches);
    CHECK(accepted > 5000 && rejected > 5000);
    printf("reference cross-check: %d accepted, %d rejected, %d mismatches\n", accepted, rejected,
           mismatches);
}

/* ---- specific behaviour ---- */

static void check_reject(const char *name, const char *text, const struct jsonl_options *o,
                         uint64_t line, uint64_t column, const char *code, const char *needle)
{
    struct outcome out;
    size_t len = strlen(text);
    run_whole((const unsigned char *)text, len, o, &out);
    CHECKF(out.rc == -1 && out.line == line && out.column == column &&
               (code ? out.code && strcmp(out.code, code) == 0 : out.code == NULL),
           "%s: expected %llu:%llu %s, got rc %d %s", name, (unsigned long long)line,
           (unsigned long long)column, code ? code : "-", out.rc, out.message);
    if (needle)
        CHECKF(strstr(out.reason, needle) != NULL, "%s: reason \"%s\" lacks \"%s\"", name,
               out.reason, needle);
    check_splits(name, (const unsigned char *)text, len, o, &out);
}

static void check_accept(const char *name, const char *text, const struct jsonl_options *o,
                         uint64_t objects)
{
    struct outcome out;
    size_t len = strlen(text);
    run_whole((const unsigned char *)text, len, o, &out);
    CHECKF(out.rc == 0 && out.objects == objects, "%s: rc %d objects %llu: %s", name, out.rc,
           (unsigned long long)out.objects, out.message);
    check_splits(name, (const unsigned char *)text, len, o, &out);
}

static void test_plain_table(void)
{
    int bad = 0;
    jsonl_validator_free(jsonl_validator_new(NULL)); /* detects the CPU's AVX2 */
    for (unsigned c = 0; c < 256; c++)
        if (jsonl_plain[c] != (c >= 0x20 && c < 0x80 && c != '"' && c != '\\'))
            bad++;
    CHECK(bad == 0);
    /* the SIMD skipper agrees with the table at every offset and length */
    {
        unsigned char buf[200];
        bad = 0;
        for (unsigned stop = 0; stop < 256; stop++) {
            for (size_t at = 0; at < 140; at += 13) {
                for (size_t i = 0; i < sizeof buf; i++)
                    buf[i] = 'a' + (unsigned char)(i % 26);
                buf[at] = (unsigned char)stop;
                for (size_t len = at; len <= sizeof buf; len += 37) {
                    const unsigned char *want =
                        jsonl_plain[stop] || at >= len ? buf + len : buf + at;
                    if (jsonl_skip_plain(buf, buf + len) != want)
                        bad++;
                }
            }
        }
        CHECKF(bad == 0, "%d skipper disagreements", bad);
    }
}

/* Length of the well-formed UTF-8 character at s (n bytes left), 0 if none. */
static size_t ref_utf8_char(const unsigned char *s, size_t n)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (len > n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* The string skipper (SSE2 alone, and with the AVX2 UTF-8 path if the CPU has
 * it) on random text: it stops no later than the first quote, backslash,
 * control byte or invalid sequence, and everything it skips is plain ASCII or
 * whole valid characters. */
static void test_skipper_utf8(void)
{
    static const char *const pieces[] = {"a",
                                         "bc",
                                         "hello ",
                                         "\xC3\xA9",
                                         "\xE2\x82\xAC",
                                         "\xF0\x9F\x98\x80",
                                         "\xE6\x97\xA5\xE6\x9C\xAC",
                                         "\xD0\xBF",
                                         "\xEF\xBF\xBF",
                                         "\xF4\x8F\xBF\xBF",
                                         "0123456789abcdef"};
    static const unsigned char bad[] = {'"',  '\\', 0x00, 0x0A, 0x1F, 0x80, 0xBF, 0xC0,
                                        0xC1, 0xC3, 0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF};
    int saved, errors = 0, skipped_utf8 = 0;
    unsigned char buf[300];
    jsonl_validator_free(jsonl_validator_new(NULL)); /* detects the CPU's AVX2 */
    saved = jsonl_have_avx2;
    for (int mode = 0; mode < 2; mode++) {
        jsonl_have_avx2 = mode ? saved : 0;
        for (int iter = 0; iter < 20000; iter++) {
            size_t len = 0, stop, good;
            const unsigned char *q;
            while (len < 200) {
                unsigned char piece[16];
                const char *pc = pieces[below(sizeof pieces / sizeof pieces[0])];
                size_t n = decode_case(pc, strlen(pc), piece);
                memcpy(buf + len, piece, n);
                len += n;
            }
            if (below(4)) /* one damaging byte somewhere */
                buf[below((unsigned)len)] = bad[below(sizeof bad)];
            /* the reference: the first position that is not plain or valid */
            for (stop = 0; stop < len;) {
                size_t k;
                if (buf[stop] == '"' || buf[stop] == '\\' || buf[stop] < 0x20)
                    break;
                k = ref_utf8_char(buf + stop, len - stop);
                if (!k)
                    break;
                stop += k;
            }
            q = jsonl_skip_plain(buf, buf + len);
            good = (size_t)(q - buf);
            if (good > stop) {
                if (errors < 3) {
                    fprintf(stderr,
                            "skipper (avx2 %d) went to %zu past the stop at %zu: ", jsonl_have_avx2,
                            good, stop);
                    print_bytes(buf, len);
                }
                errors++;
            }
            /* q is at a stop, a non-ASCII byte, or the end */
            if (good < len && jsonl_plain[buf[good]])
                errors++;
            /* what was skipped is made of whole characters */
            for (size_t i = 0; i < good;) {
                size_t k = ref_utf8_char(buf + i, good - i);
                if (!k) {
                    errors++;
                    break;
                }
                i += k;
            }
            for (size_t i = 0; i < good; i++)
                if (buf[i] >= 0x80) {
                    skipped_utf8++;
                    break;
                }
        }
    }
    jsonl_have_avx2 = saved;
    CHECKF(errors == 0, "%d skipper errors", errors);
    if (saved)
        CHECK(skipped_utf8 > 1000); /* the AVX2 path does skip UTF-8 */
    printf("skipper: AVX2 %s, %d inputs skipped UTF-8\n", saved ? "used" : "not available",
           skipped_utf8);
}

/* A lead byte followed by a byte that cannot continue it: the message says
 * the sequence was cut short. */
static void test_truncated_utf8(void)
{
    check_reject("lead byte then ASCII",
                 "{\"a\":\"\xC3"
                 "A\"}\n",
                 &plain_options, 1, 8, NULL, "truncated sequence");
}

static void test_lines_and_blanks(void)
{
    check_accept("three lines", "{}\n{\"a\":1}\n{\"b\":[2]}", &plain_options, 3);
    check_accept("three lines + LF", "{}\n{\"a\":1}\n{\"b\":[2]}\n", &plain_options, 3);
    check_accept("CRLF", "{}\r\n{}\r\n", &plain_options, 2);
    check_accept("blank lines", "\n\n{}\n\n \t \r\n{}\n\n", &plain_options, 2);
    check_accept("whitespace-only last line", "{}\n   ", &plain_options, 1);
    check_reject("empty file", "", &plain_options, 1, 1, NULL, "no JSON objects");
    check_reject("only LF", "\n", &plain_options, 1, 1, NULL, "no JSON objects");
    check_reject("only blank lines", "\n  \r\n\t\n\n", &plain_options, 1, 1, NULL,
                 "no JSON objects");
    check_reject("error line numbers count blank lines", "{}\n\n\n{\"a\":01}", &plain_options, 4, 7,
                 NULL, "leading zero");
    check_reject("object split over lines", "{\"a\":1,\n\"b\":2}", &plain_options, 1, 8, NULL,
                 "single line");
    check_reject("string across lines", "{\"a\":\"x\ny\"}", &plain_options, 1, 8, NULL,
                 "line ends inside a string");
    check_reject("file ends in object", "{\"a\":[1,2]", &plain_options, 1, 11, NULL,
                 "ends before the JSON object is closed");
    check_reject("two objects on a line", "{}{}", &plain_options, 1, 3, NULL, "exactly one object");
    check_reject("array line", "[1,2]", &plain_options, 1, 1, NULL, "must be a JSON object");
    check_reject("tab in string", "{\"a\":\"x\ty\"}", &plain_options, 1, 8, NULL,
                 "U+0009 in a string; write it as \\t");
    check_reject("NUL in string", "{\"a\":\"\x01\"}", &plain_options, 1, 7, NULL, "U+0001");
    check_reject("lone surrogate", "{\"a\":\"\\uD800\"}", &plain_options, 1, 13, NULL,
                 "lone high surrogate");
    check_reject("overlong", "{\"a\":\"\xC0\xAF\"}", &plain_options, 1, 7, NULL, "overlong");
    check_reject("encoded surrogate", "{\"a\":\"\xED\xA0\x80\"}", &plain_options, 1, 8, NULL,
                 "surrogate");
    check_reject("above U+10FFFF", "{\"a\":\"\xF4\x90\x80\x80\"}", &plain_options, 1, 8, NULL,
                 "above U+10FFFF");
    check_reject("truncated at EOF", "{\"a\":\"\xE2\x82", &plain_options, 1, 9, NULL, "truncated");
    check_reject("trailing comma", "{\"a\":1,}", &plain_options, 1, 8, NULL, "trailing comma");
    check_reject("comment", "{} // note", &plain_options, 1, 4, NULL, "comments");
    check_reject("single quotes", "{'a':1}", &plain_options, 1, 2, NULL, "double quotes");
    check_reject("1.", "{\"a\":1.}", &plain_options, 1, 8, NULL, "decimal point");
    check_reject("+1", "{\"a\":+1}", &plain_options, 1, 6, NULL, "'+'");
    check_reject("NaN", "{\"a\":NaN}", &plain_options, 1, 6, NULL, "expected a value");
    check_reject("invalid escape", "{\"a\":\"\\x\"}", &plain_options, 1, 8, NULL,
                 "invalid escape '\\x'");
}

static void test_bom(void)
{
    check_reject("BOM", "\xEF\xBB\xBF{}", &plain_options, 1, 1, NULL, "byte-order mark");
    check_reject("BOM says how to fix", "\xEF\xBB\xBF{}\n", &plain_options, 1, 1, NULL,
                 "without a byte-order mark");
    check_reject("BOM alone", "\xEF\xBB\xBF", &plain_options, 1, 1, NULL, "file starts");
    check_reject("BOM on line 2", "{}\n\xEF\xBB\xBF{}", &plain_options, 2, 1, NULL,
                 "line starts with a UTF-8 byte-order mark");
    check_reject("EF without BOM", "\xEF{}", &plain_options, 1, 1, NULL, "byte 0xEF");
    check_reject("BOM in batch mode", "\xEF\xBB\xBF{}", &batch_options, 1, 1, NULL,
                 "byte-order mark");
}

/* {"a": + n '[' + n ']' + } : depth n + 1; or the same with n nested objects */
static char *nested(unsigned n, int objects)
{
    size_t len = 5 + (size_t)n * (objects ? 5 : 1) + n + 2;
    char *s = malloc(len + 1), *p = s;
    p += sprintf(p, "{\"a\":");
    for (unsigned i = 0; i < n; i++)
        p += sprintf(p, objects ? (i + 1 < n ? "{\"a\":" : "{") : "[");
    for (unsigned i = 0; i < n; i++)
        *p++ = objects ? '}' : ']';
    *p++ = '}';
    *p = '\0';
    return s;
}

static void test_depth(void)
{
    struct jsonl_options small = {.max_depth = 3};
    struct jsonl_options one = {.max_depth = 1};
    struct jsonl_options big = {.max_depth = 100000};
    char *s;
    char msg[64];

    /* default 512: the line's object plus 511 arrays is exactly the limit */
    s = nested(511, 0);
    check_accept("depth 512 arrays", s, &plain_options, 1);
    free(s);
    s = nested(512, 0);
    check_reject("depth 513 arrays", s, &plain_options, 1, 6 + 511, NULL, "512 levels");
    free(s);
    s = nested(511, 1);
    check_accept("depth 512 objects", s, &plain_options, 1);
    free(s);
    s = nested(512, 1);
    check_reject("depth 513 objects", s, &plain_options, 1, 6 + 5 * 511, NULL, "512 levels");
    free(s);
    {
        /* batch mode: line object 1, body 2, 510 arrays */
        size_t n = 510;
        char *b = malloc(200 + 2 * n);
        char *p = b + sprintf(b, "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":"
                                 "\"/v1/embeddings\",\"body\":{\"x\":");
        size_t at = (size_t)(p - b);
        memset(p, '[', n);
        memset(p + n, ']', n);
        strcpy(p + 2 * n, "}}");
        check_accept("depth 512 in batch mode", b, &batch_options, 1);
        memmove(p + 1, p, 2 * n + 3);
        *p = '[';
        p[2 * n + 1] = ']';
        memmove(p + 2 * n + 2, "}}", 3);
        check_reject("depth 513 in batch mode", b, &batch_options, 1, at + 511, NULL, "512");
        free(b);
    }

    /* a small limit */
    check_accept("depth 3 of 3", "{\"a\":[{}]}", &small, 1);
    check_accept("depth 3 of 3, twice", "{\"a\":[{}],\"b\":{\"c\":[]}}\n{\"x\":[[]]}", &small, 2);
    snprintf(msg, sizeof msg, "%u levels", 3u);
    check_reject("depth 4 of 3", "{\"a\":[{\"b\":[]}]}", &small, 1, 12, NULL, msg);
    check_reject("depth 4 of 3 arrays", "{\"a\":[[[]]]}", &small, 1, 8, NULL, msg);
    check_accept("depth 1 of 1", "{}\n{\"a\":1}", &one, 2);
    check_reject("depth 2 of 1", "{\"a\":[]}", &one, 1, 6, NULL, "1 levels");

    /* far beyond the limit: rejected at the limit, no recursion, no crash */
    {
        size_t n = 1000000;
        char *deep = malloc(n + 8);
        memcpy(deep, "{\"a\":", 5);
        memset(deep + 5, '[', n);
        deep[n + 5] = '\0';
        struct outcome out;
        run_chunks((const unsigned char *)deep, n + 5, &plain_options, 4096, &out);
        CHECK(out.rc == -1 && out.line == 1 && out.column == 6 + 511);
        free(deep);
    }
    /* a large configured limit works (the bit stack spans many bytes) */
    s = nested(99999, 0);
    {
        struct outcome out;
        run_chunks((const unsigned char *)s, strlen(s), &big, 1000, &out);
        CHECK(out.rc == 0 && out.objects == 1);
    }
    free(s);
    s = nested(100000, 0);
    {
        struct outcome out;
        run_chunks((const unsigned char *)s, strlen(s), &big, 1000, &out);
        CHECK(out.rc == -1 && out.column == 6 + 99999);
    }
    free(s);
}

#define REQ(id, method, url, body)                                                                 \
    "{\"custom_id\":" id ",\"method\":" method ",\"url\":" url ",\"body\":" body "}"
#define OK_REQ(id) REQ("\"" id "\"", "\"POST\"", "\"/v1/embeddings\"", "{}")
/* OK_REQ's line for an id known at run time (in one of three buffers, in
 * turn: one call's line lasts two more calls). */
static const char *ok_req_line(const char *id)
{
    static char lines[3][256];
    static int turn;
    char *line = lines[turn = (turn + 1) % 3];

    snprintf(line, sizeof lines[0], OK_REQ("%s"), id);
    return line;
}

static void test_batch(void)
{
    const char *urls[] = {"/v1/chat/completions", "/x"};
    struct jsonl_options custom = {.check_batch = 1, .batch_urls = urls, .batch_url_count = 2};
    check_accept("batch ok", OK_REQ("a") "\n" OK_REQ("b") "\n", &batch_options, 2);
    check_reject("missing all", "{\"x\":1}", &batch_options, 1, 1, "missing_required_parameter",
                 "\"custom_id\", \"method\", \"url\", \"body\"");
    check_reject("missing url", "{\"custom_id\":\"a\",\"method\":\"POST\",\"body\":{}}",
                 &batch_options, 1, 1, "missing_required_parameter", "member \"url\"");
    check_reject("empty custom_id", REQ("\"\"", "\"POST\"", "\"/v1/embeddings\"", "{}"),
                 &batch_options, 1, 14, "missing_required_parameter", "non-empty string");
    check_reject("numeric custom_id", REQ("7", "\"POST\"", "\"/v1/embeddings\"", "{}"),
                 &batch_options, 1, 14, "missing_required_parameter", "found a number");
    check_reject("duplicate", OK_REQ("req-42") "\n" OK_REQ("req-42"), &batch_options, 2, 14,
                 "duplicate_custom_id", "\"req-42\" is already used");
    check_reject("duplicate with escapes", OK_REQ("a\\\"b") "\n" OK_REQ("a\\u0022b"),
                 &batch_options, 2, 14, "duplicate_custom_id", "\"a\\\"b\"");
    check_reject("GET", REQ("\"a\"", "\"GET\"", "\"/v1/embeddings\"", "{}"), &batch_options, 1, 27,
                 "invalid_method", "found \"GET\"");
    check_reject("bad url", REQ("\"a\"", "\"POST\"", "\"/v2/x\"", "{}"), &batch_options, 1, 40,
                 "invalid_url", "/v1/chat/completions, /v1/embeddings");
    check_reject("url mismatch",
                 OK_REQ("a") "\n" REQ("\"b\"", "\"POST\"", "\"/v1/chat/completions\"", "{}"),
                 &batch_options, 2, 40, "url_mismatch", "\"/v1/embeddings\" on line 1");
    check_reject("body string", REQ("\"a\"", "\"POST\"", "\"/v1/embeddings\"", "\"{}\""),
                 &batch_options, 1, 64, "invalid_body", "found a string");
    check_reject("member twice", "{\"custom_id\":\"a\",\"custom_id\":\"b\"}", &batch_options, 1, 30,
                 "duplicate_custom_id", "more than once");
    /* configured urls */
    check_accept("custom urls", REQ("\"a\"", "\"POST\"", "\"/x\"", "{}"), &custom, 1);
    check_reject("custom urls exclude the defaults",
                 REQ("\"a\"", "\"POST\"", "\"/v1/embeddings\"", "{}"), &custom, 1, 40,
                 "invalid_url", "use one of /v1/chat/completions, /x");
    /* a url list with no count: the defaults */
    {
        struct jsonl_options no_count = {.check_batch = 1, .batch_urls = urls};
        check_accept("url list without a count", OK_REQ("a"), &no_count, 1);
    }
    /* A configured url longer than JSONL_ID_INLINE (64): the captured value
     * has room for it. Escaped ("\/"), it is copied byte by byte, and
     * check_accept feeds it in every split, one byte at a time too. */
    {
        char url[85], line[300];
        const char *long_urls[] = {url};
        struct jsonl_options long_url = {
            .check_batch = 1, .batch_urls = long_urls, .batch_url_count = 1};
        memcpy(url, "/v1/", 4);
        memset(url + 4, 'a', 80);
        url[84] = '\0';
        snprintf(line, sizeof line, REQ("\"a\"", "\"POST\"", "\"\\%s\"", "{}"), url);
        check_accept("escaped url of 84 bytes", line, &long_url, 1);
    }
    /* a long custom_id is quoted shortened */
    {
        char line[400];
        snprintf(line, sizeof line, "%s\n%s",
                 OK_REQ("0123456789012345678901234567890123456789012345678901234567890123456789"),
                 OK_REQ("0123456789012345678901234567890123456789012345678901234567890123456789"));
        check_reject("long duplicate", line, &batch_options, 2, 14, "duplicate_custom_id",
                     "\"012345678901234567890123456789012345678901234567\"...");
    }
    /* JSONL_QUOTE_MAX (48): a value of 48 bytes is quoted whole, one of 49 cut */
    {
        char id48[49], id49[50], line[400], want[64];
        memset(id48, 'q', 48);
        id48[48] = '\0';
        memset(id49, 'q', 49);
        id49[49] = '\0';
        snprintf(line, sizeof line, "%s\n%s", ok_req_line(id48), ok_req_line(id48));
        snprintf(want, sizeof want, "\"%s\" ", id48);
        check_reject("duplicate quoted whole at 48", line, &batch_options, 2, 14,
                     "duplicate_custom_id", want);
        snprintf(line, sizeof line, "%s\n%s", ok_req_line(id49), ok_req_line(id49));
        snprintf(want, sizeof want, "\"%s\"...", id48);
        check_reject("duplicate quoted cut at 49", line, &batch_options, 2, 14,
                     "duplicate_custom_id", want);
    }
    /* JSONL_ID_INLINE (64): ids up to it are hashed in one call, longer ones
     * in a streaming state; duplicates are found either way, and ids that
     * differ only past byte 64 are distinct. */
    {
        char a64[65], a65[66], b65[66], line[600];
        memset(a64, 'i', 64);
        a64[64] = '\0';
        memset(a65, 'i', 65);
        a65[65] = '\0';
        memcpy(b65, a65, sizeof b65);
        b65[64] = 'j';
        snprintf(line, sizeof line, "%s\n%s", ok_req_line(a64), ok_req_line(a64));
        check_reject("duplicate at 64", line, &batch_options, 2, 14, "duplicate_custom_id",
                     "already used by an earlier line");
        snprintf(line, sizeof line, "%s\n%s", ok_req_line(a65), ok_req_line(a65));
        check_reject("duplicate at 65", line, &batch_options, 2, 14, "duplicate_custom_id",
                     "already used by an earlier line");
        snprintf(line, sizeof line, "%s\n%s\n%s", ok_req_line(a64), ok_req_line(a65),
                 ok_req_line(b65));
        check_accept("distinct past 64", line, &batch_options, 3);
    }
    /* JSONL_KEY_MAX (16): a member name is kept to 16 bytes to be compared with
     * the batch members'; longer names that begin like one are other members */
    check_reject("custom_id's name with 7 more bytes (16)",
                 "{\"custom_id1234567\":\"a\",\"method\":\"POST\",\"url\":\"/v1/embeddings\","
                 "\"body\":{}}",
                 &batch_options, 1, 1, "missing_required_parameter", "member \"custom_id\"");
    check_reject("custom_id's name with 8 more bytes (17)",
                 "{\"custom_id12345678\":\"a\",\"method\":\"POST\",\"url\":\"/v1/embeddings\","
                 "\"body\":{}}",
                 &batch_options, 1, 1, "missing_required_parameter", "member \"custom_id\"");
    check_accept("names of 16 and 17 bytes beside the batch members",
                 "{\"custom_id1234567\":1,\"custom_id12345678\":2,\"custom_id\":\"a\","
                 "\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{},"
                 "\"body\\u0000\":[],\"url_____________\":\"/v2\",\"url______________\":3}",
                 &batch_options, 1);
    /* batch off: no batch rules */
    check_accept("batch off", "{\"x\":1}\n" OK_REQ("a") "\n" OK_REQ("a"), &plain_options, 3);
}

/* The first and the 100001st line share a custom_id; nothing in between
 * collides (and the validator holds only the set, not the lines). */
static void test_far_duplicate(void)
{
    struct jsonl_options o = {.check_batch = 1, .hash_seed = 0xfeedface12345678u};
    struct jsonl_validator *v = jsonl_validator_new(&o);
    char line[200];
    int rc = 0;
    for (unsigned i = 0; i < 100000 && rc == 0; i++) {
        int n = snprintf(line, sizeof line,
                         "{\"custom_id\":\"request-%u\",\"method\":\"POST\",\"url\":"
                         "\"/v1/chat/completions\",\"body\":{}}\n",
                         i);
        rc = jsonl_validator_feed(v, line, (size_t)n);
    }
    CHECK(rc == 0 && jsonl_validator_objects(v) == 100000);
    CHECK(v->ids.set_count == 100000);
    {
        int n = snprintf(line, sizeof line,
                         "{\"custom_id\":\"request-0\",\"method\":\"POST\",\"url\":"
                         "\"/v1/chat/completions\",\"body\":{}}");
        rc = jsonl_validator_feed(v, line, (size_t)n);
    }
    CHECK(rc == 0);
    rc = jsonl_validator_finish(v);
    CHECK(rc == -1);
    if (rc == -1) {
        const struct jsonl_error *e = jsonl_validator_error(v);
        CHECK(e->line == 100001 && e->column == 14);
        CHECK(e->reason_code && strcmp(e->reason_code, "duplicate_custom_id") == 0);
        CHECK(strstr(e->message, "line 100001, column 14: custom_id \"request-0\"") != NULL);
    }
    jsonl_validator_free(v);
}

/* A 10 MB string fed in small pieces: no allocation while feeding, and in
 * batch mode a 10 MB custom_id costs one slot of the set. */
#define UTF8_AND_ESCAPES "\xC3\xA9\\n\\u00e9\xF0\x9F\x98\x80"

static void test_big_string(void)
{
    size_t big = 10 * 1000 * 1000;
    struct jsonl_validator *v = jsonl_validator_new(&plain_options);
    char piece[1000];
    long calls;
    int rc;
    memset(piece, 'x', sizeof piece);
    for (size_t i = 0; i < sizeof piece; i += 100)
        memcpy(piece + i, UTF8_AND_ESCAPES, sizeof UTF8_AND_ESCAPES - 1);
    calls = test_alloc_calls;
    rc = jsonl_validator_feed(v, "{\"a\":\"", 6);
    for (size_t done = 0; done < big && rc == 0; done += sizeof piece)
        rc = jsonl_validator_feed(v, piece, sizeof piece);
    if (rc == 0)
        rc = jsonl_validator_feed(v, "\"}\n", 3);
    if (rc == 0)
        rc = jsonl_validator_finish(v);
    CHECK(rc == 0 && jsonl_validator_objects(v) == 1);
    CHECK(test_alloc_calls == calls);
    jsonl_validator_free(v);

    v = jsonl_validator_new(&batch_options);
    calls = test_alloc_calls;
    rc = jsonl_validator_feed(v, "{\"custom_id\":\"", 14);
    for (size_t done = 0; done < big && rc == 0; done += sizeof piece)
        rc = jsonl_validator_feed(v, piece, sizeof piece);
    if (rc == 0)
        rc = jsonl_validator_feed(
            v, "\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{\"input\":\"", 58);
    for (size_t done = 0; done < big && rc == 0; done += 777)
        rc = jsonl_validator_feed(v, piece, 777);
    if (rc == 0)
        rc = jsonl_validator_feed(v, "\"}}\n", 4);
    CHECK(rc == 0);
    /* the shard directory and one shard table, nothing per byte */
    CHECKF(test_alloc_calls - calls == 2, "%ld allocations", test_alloc_calls - calls);
    CHECK(jsonl_validator_finish(v) == 0);
    jsonl_validator_free(v);

    {
        /* identical 10 MB ids, fed with different piece sizes, are duplicates */
        char *id = malloc(big);
        for (size_t i = 0; i < big; i += sizeof piece)
            memcpy(id + i, piece, sizeof piece);
        v = jsonl_validator_new(&batch_options);
        rc = 0;
        for (int k = 0; k < 2 && rc == 0; k++) {
            size_t step = k ? 4093 : 65536;
            rc = jsonl_validator_feed(v, "{\"custom_id\":\"", 14);
            for (size_t done = 0; done < big && rc == 0; done += step)
                rc = jsonl_validator_feed(v, id + done, big - done < step ? big - done : step);
            if (rc == 0)
                rc = jsonl_validator_feed(
                    v, "\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{}}\n", 52);
        }
        CHECK(rc == -1);
        if (rc == -1) {
            const struct jsonl_error *e = jsonl_validator_error(v);
            CHECK(e->line == 2 && e->column == 14 && e->reason_code &&
                  strcmp(e->reason_code, "duplicate_custom_id") == 0);
        }
        jsonl_validator_free(v);
        free(id);
    }
}

static void test_api_edges(void)
{
    struct jsonl_validator *v = jsonl_validator_new(NULL);
    CHECK(v != NULL);
    CHECK(jsonl_validator_feed(v, "{}\n{", 4) == 0);
    CHECK(jsonl_validator_objects(v) == 1);
    CHECK(jsonl_validator_feed(v, "}", 1) == 0);
    CHECK(jsonl_validator_objects(v) == 1); /* the line has not ended yet */
    CHECK(jsonl_validator_finish(v) == 0);
    CHECK(jsonl_validator_objects(v) == 2);
    CHECK(jsonl_validator_finish(v) == 0);
    CHECK(jsonl_validator_error(v) == NULL);
    CHECK(jsonl_validator_feed(v, "{}", 2) == -1);
    CHECK(jsonl_validator_error(v) != NULL);
    jsonl_validator_free(v);
    jsonl_validator_free(NULL);

    /* after finish even a whole valid line is refused */
    v = jsonl_validator_new(NULL);
    CHECK(jsonl_validator_feed(v, "{\"a\":1}\n", 8) == 0);
    CHECK(jsonl_validator_finish(v) == 0);
    CHECK(jsonl_validator_feed(v, "{\"b\":2}\n", 8) == -1);
    jsonl_validator_free(v);

    /* a problem is reported as soon as its byte is fed */
    v = jsonl_validator_new(NULL);
    CHECK(jsonl_validator_feed(v, "{\"a\":", 5) == 0);
    CHECK(jsonl_validator_feed(v, "01", 2) == -1);
    CHECK(jsonl_validator_error(v)->column == 7);
    jsonl_validator_free(v);

    /* batch errors wait for the end of the line (a syntax error there wins) */
    v = jsonl_validator_new(&batch_options);
    CHECK(jsonl_validator_feed(v, "{\"method\":\"GET\"}", 16) == 0);
    CHECK(jsonl_validator_feed(v, "\n", 1) == -1);
    CHECK(jsonl_validator_error(v)->column == 11);
    jsonl_validator_free(v);

    /* counters are 64-bit and the column is relative to the line */
    v = jsonl_validator_new(NULL);
    v->line = UINT64_C(5000000000);
    v->consumed = UINT64_C(9000000000);
    v->line_start = UINT64_C(9000000000);
    CHECK(jsonl_validator_feed(v, "{}\n {]", 6) == -1);
    CHECK(jsonl_validator_error(v)->line == UINT64_C(5000000001));
    CHECK(jsonl_validator_error(v)->column == 3);
    CHECK(strncmp(jsonl_validator_error(v)->message, "line 5000000001, column 3: ", 27) == 0);
    jsonl_validator_free(v);
}

static void test_set(void)
{
    struct jsonl_validator *v = jsonl_validator_new(&batch_options);
    uint64_t x = 88172645463325252u;
    int bad = 0;
    size_t bytes = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (jsonl_ids_reserve(&v->ids, x) != 0 || jsonl_ids_insert(&v->ids, x) != 0)
            bad++;
    }
    CHECK(bad == 0);
    x = 88172645463325252u;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (jsonl_ids_reserve(&v->ids, x) != 0 || jsonl_ids_insert(&v->ids, x) != 1)
            bad++;
    }
    CHECK(bad == 0);
    CHECK(v->ids.set_count == 200000);
    /* load stays under 7/8 and over ~0.6 per shard: memory is compact */
    for (unsigned i = 0; i < JSONL_SET_SHARDS; i++) {
        bytes += (size_t)v->ids.shards[i].cap * JSONL_SET_SLOT;
        if ((uint64_t)v->ids.shards[i].count * 8 > (uint64_t)v->ids.shards[i].cap * 7)
            bad++;
    }
    CHECK(bad == 0);
    CHECKF(bytes < 200000 * 9, "%zu bytes of slots for 200000 ids", bytes);
    /* remainder 0 is stored as 1: both are then the same fingerprint */
    CHECK(jsonl_ids_reserve(&v->ids, 0) == 0 && jsonl_ids_insert(&v->ids, 0) == 0);
    CHECK(jsonl_ids_reserve(&v->ids, 1) == 0 && jsonl_ids_insert(&v->ids, 1) == 1);
    /* only bits 0-47 and 52-63 decide */
    CHECK(jsonl_ids_reserve(&v->ids, 0xABC0000012345678u) == 0 &&
          jsonl_ids_insert(&v->ids, 0xABC0000012345678u) == 0);
    CHECK(jsonl_ids_reserve(&v->ids, 0xABCF000012345678u) == 0 &&
          jsonl_ids_insert(&v->ids, 0xABCF000012345678u) == 1);
    CHECK(jsonl_ids_reserve(&v->ids, 0xABD0000012345678u) == 0 &&
          jsonl_ids_insert(&v->ids, 0xABD0000012345678u) == 0);
    jsonl_validator_free(v);
}

/* ---- spilled custom_ids: an in-memory store that can be made to fail ---- */

struct mem_store {
    unsigned char *data;
    size_t len, cap;
    int fail_write, fail_read;
    int same_top_byte; /* reads give every fingerprint the top byte 0 */
    int reversed;      /* reads give the records in reverse order */
};

static int mem_write(void *ctx, const void *data, size_t len)
{
    struct mem_store *m = ctx;
    if (m->fail_write)
        return -1;
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->data = realloc(m->data, m->cap);
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
    return 0;
}

static int mem_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
    struct mem_store *m = ctx;
    if (m->fail_read || offset + len > m->len)
        return -1;
    memcpy(buf, m->data + offset, len);
    if (m->same_top_byte) {
        struct jsonl_spill_record *r = buf;
        for (size_t i = 0; i < len / sizeof *r; i++)
            r[i].fingerprint &= ~(UINT64_C(0xFF) << 56);
    }
    if (m->reversed) {
        struct jsonl_spill_record *r = buf, x;
        for (size_t i = 0, j = len / sizeof *r; i + 1 < j; i++, j--) {
            x = r[i];
            r[i] = r[j - 1];
            r[j - 1] = x;
        }
    }
    return 0;
}

/* A batch line whose custom_id is "id-N"; broken: the object is not closed. */
static size_t spill_line(char *out, size_t cap, unsigned id, int broken)
{
    return (size_t)snprintf(out, cap,
                            "{\"custom_id\":\"id-%u\",\"method\":\"POST\",\"url\":"
                            "\"/v1/chat/completions\",\"body\":{\"n\":%u}%s\n",
                            id, id, broken ? "" : "}");
}

struct spill_result {
    int rc;
    uint64_t line, column;
    char code[32];
    char reason[192];
};

/* A batch validator with a spill store (emptied first) keeping memory_ids in
 * memory, or without one (memory_ids 0, or store NULL). */
static struct jsonl_validator *spill_validator(size_t memory_ids, struct mem_store *store)
{
    struct jsonl_spill spill = {mem_write, mem_read, store}; /* copied by new */
    struct jsonl_options o = {.check_batch = 1,
                              .hash_seed = 77,
                              .memory_ids = memory_ids,
                              .spill = memory_ids && store ? &spill : NULL};
    if (store)
        store->len = 0;
    return jsonl_validator_new(&o);
}

/* Validates the lines ids[0..n) (broken_line: 1-based line left unclosed, 0
 * none), with a spill store keeping memory_ids in memory, or without one
 * (memory_ids 0). */
static struct spill_result spill_run(const unsigned *ids, unsigned n, unsigned broken_line,
                                     size_t memory_ids, struct mem_store *store)
{
    struct jsonl_validator *v = spill_validator(memory_ids, store);
    struct spill_result r = {0};
    char line[200];
    for (unsigned i = 0; i < n && r.rc == 0; i++) {
        size_t len = spill_line(line, sizeof line, ids[i], i + 1 == broken_line);
        r.rc = jsonl_validator_feed(v, line, len);
    }
    if (r.rc == 0)
        r.rc = jsonl_validator_finish(v);
    if (r.rc != 0) {
        const struct jsonl_error *e = jsonl_validator_error(v);
        r.line = e->line;
        r.column = e->column;
        snprintf(r.code, sizeof r.code, "%s", e->reason_code ? e->reason_code : "");
        snprintf(r.reason, sizeof r.reason, "%s", e->reason);
    }
    jsonl_validator_free(v);
    return r;
}

static void test_spilled_ids(void)
{
    enum { N = 10000 };
    static unsigned ids[N];
    struct mem_store store = {0};
    struct spill_result r;

    for (unsigned i = 0; i < N; i++)
        ids[i] = i;
    /* all distinct: valid, and all but memory_ids went to the store, in runs */
    r = spill_run(ids, N, 0, 4, &store);
    CHECK(r.rc == 0);
    CHECK(store.len == (N - 4) * sizeof(struct jsonl_spill_record));
    CHECK(N - 4 > 2 * JSONL_SPILL_RUN); /* several runs were merged */

    /* a duplicate among spilled ids, across runs: found at the end, at the
     * second use, naming the first */
    ids[8999] = 9;
    r = spill_run(ids, N, 0, 4, &store);
    CHECK(r.rc == -1 && r.line == 9000 && r.column == 14);
    CHECK_STR(r.code, "duplicate_custom_id");
    CHECKF(strstr(r.reason, "already used by line 10") != NULL, "%s", r.reason);
    /* the one that comes first in the file wins, whatever the fingerprints */
    ids[5000] = 7000;
    r = spill_run(ids, N, 0, 4, &store);
    CHECK(r.rc == -1 && r.line == 7001);
    ids[5000] = 5000;
    /* within one run */
    ids[12] = 11;
    r = spill_run(ids, N, 0, 4, &store);
    CHECK(r.rc == -1 && r.line == 13 && strstr(r.reason, "line 12") != NULL);
    ids[12] = 12;

    /* at the limit: the 4th id is the last kept in memory (a duplicate of it
     * is found at once and quoted), the 5th the first spilled (found by the
     * merge, which names its line) */
    ids[7000] = 3;
    r = spill_run(ids, N, 0, 4, &store);
    CHECK(r.rc == -1 && r.line == 7001);
    CHECKF(strstr(r.reason, "\"id-3\"") != NULL, "%s", r.reason);
    ids[7000] = 4;
    r = spill_run(ids, N, 0, 4, &store);
    CHECK(r.rc == -1 && r.line == 7001);
    CHECKF(strstr(r.reason, "already used by line 5;") != NULL, "%s", r.reason);
    ids[7000] = 7000;

    /* an id still in memory is found at once, quoted as usual */
    ids[8999] = 2;
    r = spill_run(ids, N, 0, 4, &store);
    CHECK(r.rc == -1 && r.line == 9000);
    CHECKF(strstr(r.reason, "\"id-2\"") != NULL, "%s", r.reason);
    ids[8999] = 8999;

    /* against another problem: the earlier line wins */
    ids[199] = 100;
    r = spill_run(ids, N, 300, 4, &store); /* duplicate at 200, line 300 unclosed */
    CHECK(r.rc == -1 && r.line == 200);
    CHECK_STR(r.code, "duplicate_custom_id");
    r = spill_run(ids, N, 150, 4, &store); /* line 150 unclosed, duplicate later */
    CHECK(r.rc == -1 && r.line == 150);
    CHECK_STR(r.code, "");
    ids[199] = 199;

    /* a failing store is -2 */
    store.fail_write = 1;
    r = spill_run(ids, N, 0, 4, &store);
    CHECK(r.rc == -2);
    store.fail_write = 0;
    store.fail_read = 1;
    r = spill_run(ids, N, 0, 4, &store);
    CHECK(r.rc == -2);
    store.fail_read = 0;
    /* a store that gives back other records than it was given: -2, not more
     * records of a top byte than the merge made room for */
    store.same_top_byte = 1;
    r = spill_run(ids, N, 0, 4, &store);
    CHECK(r.rc == -2);
    store.same_top_byte = 0;
    store.reversed = 1; /* each top byte's records are not where the merge looks */
    r = spill_run(ids, N, 0, 4, &store);
    CHECK(r.rc == -2);
    store.reversed = 0;
    /* a failed store does not stop the validation: a later problem is still
     * found (-1), only a file without one is -2 */
    store.fail_write = 1;
    r = spill_run(ids, N, 9000, 4, &store);
    CHECK(r.rc == -1 && r.line == 9000);
    store.fail_write = 0;
    /* one chunk of many lines after the store failed: the ids past it are
     * dropped, not gathered past the run buffer (the sanitizer build checks) */
    {
        static char text[N * 120];
        size_t len = 0;
        struct jsonl_validator *v = spill_validator(4, &store);
        for (unsigned i = 0; i < N; i++)
            len += spill_line(text + len, sizeof text - len, i, 0);
        store.fail_write = 1;
        CHECK(jsonl_validator_feed(v, text, len) == 0); /* two runs' writes fail in it */
        CHECK(jsonl_validator_finish(v) == -2);
        store.fail_write = 0;
        jsonl_validator_free(v);
    }

    /* random files with duplicates and broken lines: the same verdict, line
     * and column with a store (memory_ids 3) as with the set alone */
    for (int round = 0; round < 300; round++) {
        unsigned n = 1 + below(6000), broken = below(4) ? 0 : 1 + below(n);
        struct spill_result with, without;
        for (unsigned i = 0; i < n; i++)
            ids[i] = below(8) ? i : below(n);
        with = spill_run(ids, n, broken, 3, &store);
        without = spill_run(ids, n, broken, 0, NULL);
        CHECKF(with.rc == without.rc && with.line == without.line &&
                   with.column == without.column && strcmp(with.code, without.code) == 0,
               "round %d: %d line %llu col %llu %s vs %d line %llu col %llu %s", round, with.rc,
               (unsigned long long)with.line, (unsigned long long)with.column, with.code,
               without.rc, (unsigned long long)without.line, (unsigned long long)without.column,
               without.code);
    }
    free(store.data);
}

/* A line whose custom_id repeats a spilled one and that has a batch problem
 * noted after it: the custom_id is the first problem, with the store as with
 * the set alone (found by fuzz_jsonl). Noted before it, or a grammar problem:
 * the line's. */
static void test_spilled_id_on_a_line_with_another_problem(void)
{
    static const char *const third_lines[] = {
        "{\"custom_id\":\"b\",\"custom_id\":\"c\",\"method\":\"POST\",\"url\":\"/v1/embeddings\","
        "\"body\":{}}\n",
        "{\"custom_id\":\"b\",\"method\":\"GET\",\"url\":\"/v1/embeddings\",\"body\":{}}\n",
        "{\"method\":\"GET\",\"custom_id\":\"b\",\"url\":\"/v1/embeddings\",\"body\":{}}\n",
        "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{}\n",
        "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{},}\n",
        /* noted at the object's end, reported at its start: after the custom_id */
        "{\"custom_id\":\"b\",\"method\":\"POST\",\"body\":{}}\n",
        "{\"method\":\"POST\",\"body\":{},\"custom_id\":\"b\"}\n",
        /* a batch problem noted after the custom_id, then a grammar problem:
         * the grammar's, in both (the reason for error_after_spilled_id) */
        "{\"custom_id\":\"b\",\"custom_id\":\"c\",\"method\":\"POST\",\"url\":\"/v1/embeddings\","
        "\"body\":{},}\n",
    };
    static const uint64_t columns[] = {14, 14, 11, 66, 67, 14, 40, 83};
    struct mem_store store = {0};
    struct jsonl_spill spill = {mem_write, mem_read, &store};
    struct jsonl_options with_store = {
        .check_batch = 1, .hash_seed = 77, .memory_ids = 1, .spill = &spill};
    const char *head = "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/embeddings\","
                       "\"body\":{}}\n"
                       "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/v1/embeddings\","
                       "\"body\":{}}\n";
    char text[512];

    for (size_t i = 0; i < sizeof third_lines / sizeof *third_lines; i++) {
        struct outcome with, without;
        size_t len = (size_t)snprintf(text, sizeof text, "%s%s", head, third_lines[i]);
        store.len = 0;
        run_whole((const unsigned char *)text, len, &with_store, &with);
        run_whole((const unsigned char *)text, len, &batch_options, &without);
        CHECKF(with.rc == -1 && with.line == 3 && with.column == columns[i],
               "case %zu: %d line %llu column %llu", i, with.rc, (unsigned long long)with.line,
               (unsigned long long)with.column);
        /* the reason differs: the store knows the first line's number */
        CHECKF(without.rc == -1 && without.line == 3 && with.column == without.column &&
                   with.code == without.code,
               "case %zu: column %llu %s vs %llu %s", i, (unsigned long long)with.column,
               with.code ? with.code : "-", (unsigned long long)without.column,
               without.code ? without.code : "-");
    }
    free(store.data);
}

/* The merge's read-ahead: up to JSONL_SPILL_RUN / JSONL_SPILL_READ runs share
 * the run buffer, one more and each run gets a buffer of its own. At that
 * limit and one past it, at the end of the file and at an earlier problem,
 * the duplicate found is the one the set alone finds. */
static void spill_many_runs(unsigned runs, int broken_after)
{
    unsigned n = runs * JSONL_SPILL_RUN + 3; /* 3 in memory, the rest in runs */
    unsigned *ids = malloc(n * sizeof *ids);
    struct mem_store store = {0};
    struct spill_result with, without;
    unsigned broken = broken_after ? n - 5 : 0;

    if (!ids) {
        CHECK(!"out of memory");
        return;
    }
    for (unsigned i = 0; i < n; i++)
        ids[i] = i;
    ids[n - 10] = 12345; /* line n - 9 reuses line 12346's custom_id */
    with = spill_run(ids, n, broken, 3, &store);
    without = spill_run(ids, n, broken, 0, NULL);
    size_t records = store.len / sizeof(struct jsonl_spill_record);
    CHECK((records + JSONL_SPILL_RUN - 1) / JSONL_SPILL_RUN == runs);
    CHECKF(with.rc == -1 && with.line == n - 9 && strcmp(with.code, "duplicate_custom_id") == 0,
           "%u runs: %d line %llu %s", runs, with.rc, (unsigned long long)with.line, with.code);
    CHECK(without.rc == -1 && without.line == with.line && without.column == with.column);
    CHECK(strstr(with.reason, "line 12346") != NULL);
    free(ids);
    free(store.data);
}

/* Feeds lines ids[0..n) and then half of one more, and stops there (as at a
 * size limit): returns stop's verdict, *line the problem's line. */
static int stop_after(const unsigned *ids, unsigned n, size_t memory_ids, struct mem_store *store,
                      uint64_t *line)
{
    struct jsonl_validator *v = spill_validator(memory_ids, store);
    char text[200];
    int rc = 0;
    size_t len;

    for (unsigned i = 0; i < n && rc == 0; i++) {
        len = spill_line(text, sizeof text, ids[i], 0);
        rc = jsonl_validator_feed(v, text, len);
    }
    len = spill_line(text, sizeof text, 999999, 0);
    if (rc == 0)
        rc = jsonl_validator_feed(v, text, len / 2);
    if (rc == 0)
        rc = jsonl_validator_stop(v);
    CHECK(jsonl_validator_finish(v) == rc); /* no end-of-input check after a stop */
    *line = rc ? jsonl_validator_error(v)->line : 0;
    jsonl_validator_free(v);
    return rc;
}

/* One custom_id on every line past the 10th: the merge's memory stays
 * bounded (it keeps the two earliest uses of a fingerprint), and the
 * duplicate is the one the set alone finds. */
static void test_spilled_id_repeated_on_every_line(void)
{
    enum { N = 60000 };
    static unsigned ids[N];
    struct mem_store store = {0};
    struct spill_result with, without;
    size_t before;

    for (unsigned i = 0; i < N; i++)
        ids[i] = i < 10 ? i : 777777;
    before = test_alloc_peak = test_alloc_live;
    with = spill_run(ids, N, 0, 3, &store);
    CHECKF(test_alloc_peak - before < 1024 * 1024, "%zu bytes at once", test_alloc_peak - before);
    without = spill_run(ids, N, 0, 0, NULL);
    CHECK(with.rc == -1 && with.line == 12 && without.rc == -1 && without.line == 12);
    CHECK(with.column == without.column);
    free(store.data);
}

/* Stopped mid-file, a duplicate among the spilled custom_ids is found as the
 * set alone finds it; the cut line is not taken for the file's last. */
static void test_stop(void)
{
    unsigned ids[100];
    struct mem_store store = {0};
    uint64_t with_line, without_line;

    for (unsigned i = 0; i < 100; i++)
        ids[i] = i;
    CHECK(stop_after(ids, 100, 3, &store, &with_line) == 0);
    CHECK(store.len > 0);
    CHECK(stop_after(ids, 100, 0, NULL, &without_line) == 0);
    ids[80] = 40; /* line 81 repeats line 41's custom_id; both spilled */
    CHECK(stop_after(ids, 100, 3, &store, &with_line) == -1);
    CHECK(stop_after(ids, 100, 0, NULL, &without_line) == -1);
    CHECK(with_line == 81 && without_line == 81);

    /* the cut line repeats a spilled custom_id and has a problem noted after
     * it (which settles the id early): it never ends, so neither is reported */
    for (int with_store = 0; with_store < 2; with_store++) {
        struct jsonl_validator *v = spill_validator(3, with_store ? &store : NULL);
        static const char cut[] = "{\"custom_id\":\"id-50\",\"method\":\"GET\",\"url\":\"/v1/chat/";
        char text[200];
        int rc = 0;
        for (unsigned i = 0; i < 100 && rc == 0; i++)
            rc = jsonl_validator_feed(v, text, spill_line(text, sizeof text, i, 0));
        CHECK(rc == 0 && jsonl_validator_feed(v, cut, sizeof cut - 1) == 0);
        CHECKF(jsonl_validator_stop(v) == 0, "with a store: %d", with_store);
        jsonl_validator_free(v);
    }
    free(store.data);
}

static void test_spill_many_runs(void)
{
    unsigned shared_max = JSONL_SPILL_RUN / JSONL_SPILL_READ;

    spill_many_runs(shared_max, 0);
    spill_many_runs(shared_max + 1, 0);
    spill_many_runs(shared_max + 1, 1);
}

/* Every allocation failing in turn: NULL from new or -2 from feed, no leak
 * (the sanitizer build checks), and the error says out of memory. */
static void test_out_of_memory(void)
{
    int saw_null = 0, saw_oom = 0, saw_ok = 0;
    for (long fail = 1; fail < 400; fail++) {
        struct jsonl_validator *v;
        int rc = 0;
        char line[160];
        test_alloc_calls = 0;
        test_alloc_fail_at = fail;
        v = jsonl_validator_new(&batch_options);
        if (!v) {
            saw_null++;
            continue;
        }
        for (unsigned i = 0; i < 200 && rc == 0; i++) {
            int n = snprintf(line, sizeof line,
                             "{\"custom_id\":\"%u\",\"method\":\"POST\",\"url\":"
                             "\"/v1/embeddings\",\"body\":{}}\n",
                             i);
            rc = jsonl_validator_feed(v, line, (size_t)n);
        }
        if (rc == -2) {
            saw_oom++;
            CHECK(jsonl_validator_feed(v, "{}", 2) == -2);
            CHECK(jsonl_validator_finish(v) == -2);
            CHECK(strstr(jsonl_validator_error(v)->reason, "out of memory") != NULL);
        } else {
            CHECK(rc == 0 && jsonl_validator_finish(v) == 0);
            saw_ok++;
        }
        jsonl_validator_free(v);
    }
    test_alloc_fail_at = 0;
    CHECK(test_alloc_live == 0);
    CHECK(saw_null >= 4 && saw_oom > 100 && saw_ok > 0);
}

/* The same with a spill store: the run buffer and the merge's allocations
 * failing give -2 at feed or at finish, and nothing leaks. */
static void test_spill_out_of_memory(void)
{
    struct mem_store store = {0};
    struct jsonl_spill spill = {mem_write, mem_read, &store};
    struct jsonl_options o = {.check_batch = 1, .spill = &spill, .memory_ids = 3};
    int saw_feed = 0, saw_finish = 0, saw_ok = 0;
    for (long fail = 1; fail < 400; fail++) {
        struct jsonl_validator *v;
        int rc = 0;
        char line[200];
        store.len = 0;
        test_alloc_calls = 0;
        test_alloc_fail_at = fail;
        v = jsonl_validator_new(&o);
        if (!v)
            continue;
        for (unsigned i = 0; i < 200 && rc == 0; i++)
            rc = jsonl_validator_feed(v, line, spill_line(line, sizeof line, i, 0));
        if (rc == -2) {
            saw_feed++;
        } else {
            rc = jsonl_validator_finish(v);
            CHECK(rc == 0 || rc == -2);
            /* an allocation that failed is never passed over: the ids it
             * would have held went unchecked */
            CHECKF(rc != 0 || test_alloc_calls < fail, "allocation %ld failed, finish gave 0",
                   fail);
            saw_finish += rc == -2;
            saw_ok += rc == 0;
        }
        jsonl_validator_free(v);
    }
    test_alloc_fail_at = 0;
    CHECK(test_alloc_live == 0);
    CHECKF(saw_feed > 0 && saw_finish > 0 && saw_ok > 0, "%d %d %d", saw_feed, saw_finish, saw_ok);
    free(store.data);
}

/* memory_ids 0 keeps the default (JSONL_DEFAULT_MEMORY_IDS) in memory: 5000
 * ids never reach the store. */
static void test_default_memory_ids(void)
{
    struct mem_store store = {0};
    struct jsonl_spill spill = {mem_write, mem_read, &store};
    struct jsonl_options o = {.check_batch = 1, .spill = &spill};
    struct jsonl_validator *v = jsonl_validator_new(&o);
    char line[200];
    int rc = 0;

    for (unsigned i = 0; i < 5000 && rc == 0; i++)
        rc = jsonl_validator_feed(v, line, spill_line(line, sizeof line, i, 0));
    CHECK(rc == 0 && jsonl_validator_finish(v) == 0);
    CHECKF(store.len == 0, "%zu bytes written to the store", store.len);
    jsonl_validator_free(v);
    free(store.data);
}

static void test_no_leaks(void)
{
    CHECKF(test_alloc_live == 0, "%zu bytes still allocated", test_alloc_live);
}

int main(void)
{
    test_plain_table();
    test_skipper_utf8();
    test_corpus();
    test_lines_and_blanks();
    test_bom();
    test_truncated_utf8();
    test_depth();
    test_batch();
    test_api_edges();
    test_set();
    test_far_duplicate();
    test_spilled_ids();
    test_spill_many_runs();
    test_spilled_id_repeated_on_every_line();
    test_stop();
    test_spilled_id_on_a_line_with_another_problem();
    test_big_string();
    test_against_reference();
    test_out_of_memory();
    test_spill_out_of_memory();
    test_default_memory_ids();
    test_no_leaks();
    CHECKF(api_rule_breaks == 0, "%lu runs broke an API rule", api_rule_breaks);
    TEST_MAIN_END();
}
