/* libFuzzer target for the multipart parser (src/multipart.c).
 *
 * The input is a body for the fixed boundary "AaB03x". It is parsed whole, in
 * pieces whose sizes derive from the input, and (if short) one byte at a
 * time; all must give the same status, message and events. Invariants checked
 * on every event: fed whole, part data comes straight from the input, after a
 * blank line and up to a delimiter; part data never holds the delimiter; names
 * and filenames are bounded, valid UTF-8 without control characters; text
 * fields stay within MULTIPART_MAX_FIELD; at most MULTIPART_MAX_PARTS parts;
 * begin/end pair up.
 * The input's first line also goes through multipart_boundary_from_content_type.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *         -o /tmp/fuzz_multipart tests/fuzz/fuzz_multipart.c src/multipart.c
 *   mkdir -p /tmp/fuzz-multipart && /tmp/fuzz_multipart -dict=tests/fuzz/multipart.dict \
 *         -max_len=16384 -max_total_time=60 -artifact_prefix=/tmp/fuzz-multipart- \
 *         /tmp/fuzz-multipart tests/fuzz/corpus/multipart
 * (new inputs go to the first directory, crashes to /tmp; the committed seeds
 * stay as they are)
 */
#include "multipart.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOUNDARY "AaB03x"
#define DASH_BOUNDARY "--" BOUNDARY
#define DELIM "\r\n" DASH_BOUNDARY

#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct run {
    char *log;         /* events: B.../D<data>/E, data merged */
    size_t len, cap;   /* bytes in log, its size */
    int in_part;       /* between begin and end */
    int in_data;       /* the last event was data */
    size_t part_start; /* where the current part's data starts in log */
    int has_filename;  /* of the current part */
    unsigned begins;   /* on_part_begin calls */
    unsigned ends;     /* on_part_end calls */
    unsigned events;   /* begins + ends, for abort_at */
    unsigned abort_at; /* return nonzero at this begin/end event (0: never) */
    size_t data_bytes; /* all data delivered */
    size_t input_len;  /* the body's size */
    /* Fed whole, every piece must point into the input: a part's first piece
     * right after a blank line, the next ones contiguous, the last followed by
     * the delimiter. */
    const char *input; /* the body, or NULL when fed in pieces */
    const char *next;  /* where the current part's next piece must start */
    size_t held;       /* bytes of a first piece that came from the parser */
};

static void log_add(struct run *r, const void *d, size_t n)
{
    FUZZ_ASSERT(r->len + n <= r->cap);
    memcpy(r->log + r->len, d, n);
    r->len += n;
}

static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], k, len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        else
            return 0;
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += len;
    }
    return 1;
}

static void check_name(const char *s, int basename)
{
    size_t n = strnlen(s, MULTIPART_MAX_NAME + 1), i;
    FUZZ_ASSERT(n >= 1 && n <= MULTIPART_MAX_NAME);
    FUZZ_ASSERT(utf8_valid((const unsigned char *)s, n));
    for (i = 0; i < n; i++) {
        FUZZ_ASSERT((unsigned char)s[i] >= 0x20 && s[i] != 0x7F);
        FUZZ_ASSERT(!((unsigned char)s[i] == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] <= 0x9F));
    }
    if (basename) {
        FUZZ_ASSERT(strchr(s, '/') == NULL && strchr(s, '\\') == NULL);
        FUZZ_ASSERT(strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
    }
}

/* The data of the part that just ended must not hold the delimiter. */
static void part_done(struct run *r)
{
    const char *d = r->log + r->part_start;
    size_t n = r->len - r->part_start;
    FUZZ_ASSERT(memmem(d, n, DELIM, strlen(DELIM)) == NULL);
    if (!r->has_filename)
        FUZZ_ASSERT(n <= MULTIPART_MAX_FIELD);
}

static int on_begin(void *ctx, const struct multipart_part *part)
{
    struct run *r = ctx;
    size_t ct = strnlen(part->content_type, sizeof part->content_type);
    char head[16];

    FUZZ_ASSERT(!r->in_part);
    FUZZ_ASSERT(++r->begins <= MULTIPART_MAX_PARTS);
    FUZZ_ASSERT(ct < sizeof part->content_type);
    check_name(part->name, 0);
    if (part->has_filename)
        check_name(part->filename, 1);
    else
        FUZZ_ASSERT(part->filename[0] == '\0');
    r->in_data = 0;
    snprintf(head, sizeof head, "\nB%d:", part->has_filename);
    log_add(r, head, strlen(head));
    log_add(r, part->name, strlen(part->name) + 1);
    log_add(r, part->filename, strlen(part->filename) + 1);
    log_add(r, part->content_type, ct + 1);
    log_add(r, "D", 1);
    r->part_start = r->len;
    r->in_part = 1;
    r->has_filename = part->has_filename;
    r->next = NULL;
    r->held = 0;
    return ++r->events == r->abort_at;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    struct run *r = ctx;
    FUZZ_ASSERT(r->in_part);
    FUZZ_ASSERT(len >= 1);
    if (r->input != NULL) {
        int inside = data >= r->input && len <= r->input_len &&
                     data - r->input <= (ptrdiff_t)(r->input_len - len);
        if (!inside) {
            /* Only possible for a part's first piece: data that began like
             * a delimiter right after the blank line ("--AaB0" then not),
             * re-delivered from the parser's copy of the delimiter. */
            FUZZ_ASSERT(r->next == NULL && r->held == 0);
            FUZZ_ASSERT(len < strlen(DASH_BOUNDARY) && memcmp(data, DASH_BOUNDARY, len) == 0);
            r->held = len;
        } else if (r->next == NULL) {
            size_t back = 4 + r->held;
            FUZZ_ASSERT((size_t)(data - r->input) >= back);
            FUZZ_ASSERT(memcmp(data - back, "\r\n\r\n", 4) == 0);
            FUZZ_ASSERT(memcmp(data - r->held, DASH_BOUNDARY, r->held) == 0);
            r->next = data + len;
        } else {
            FUZZ_ASSERT(data == r->next);
            r->next = data + len;
        }
    }
    r->data_bytes += len;
    FUZZ_ASSERT(r->data_bytes <= r->input_len);
    log_add(r, data, len);
    return 0;
}

static int on_end(void *ctx)
{
    struct run *r = ctx;
    FUZZ_ASSERT(r->in_part);
    part_done(r);
    if (r->input != NULL && r->next != NULL)
        FUZZ_ASSERT((size_t)(r->input + r->input_len - r->next) >= strlen(DELIM) &&
                    memcmp(r->next, DELIM, strlen(DELIM)) == 0);
    r->next = NULL;
    r->held = 0;
    r->in_part = 0;
    r->ends++;
    log_add(r, "\nE", 2);
    return ++r->events == r->abort_at;
}

static const struct multipart_callbacks callbacks = {on_begin, on_data, on_end};

struct outcome {
    int status;
    char error[MULTIPART_MAX_ERROR];
};

/* Parses data in pieces: sizes[i] bytes at a time, cycling; 0 = whole. */
static void parse(struct run *r, struct outcome *o, const uint8_t *data, size_t size,
                  const size_t *sizes, size_t nsizes)
{
    struct multipart_parser p;
    size_t at = 0, k = 0;
    int st = MULTIPART_OK;

    FUZZ_ASSERT(multipart_parser_init(&p, BOUNDARY, &callbacks, r) == 0);
    while (at < size && st == MULTIPART_OK) {
        size_t n = nsizes ? sizes[k++ % nsizes] : size - at;
        if (n > size - at)
            n = size - at;
        st = multipart_parser_feed(&p, (const char *)data + at, n);
        at += n;
    }
    if (st == MULTIPART_OK)
        st = multipart_parser_finish(&p);
    FUZZ_ASSERT(st == MULTIPART_OK || st == MULTIPART_ERROR || st == MULTIPART_ABORTED);
    FUZZ_ASSERT((st == MULTIPART_OK) == (multipart_parser_error(&p)[0] == '\0'));
    if (st == MULTIPART_OK) {
        FUZZ_ASSERT(!r->in_part && r->begins >= 1 && r->begins == r->ends);
    }
    if (r->in_part)
        part_done(r); /* the data so far must not hold the delimiter either */
    /* sticky */
    FUZZ_ASSERT(multipart_parser_feed(&p, "x", 1) == (st == MULTIPART_OK ? MULTIPART_ERROR : st));
    o->status = st;
    snprintf(o->error, sizeof o->error, "%s", multipart_parser_error(&p));
}

static void run_init(struct run *r, size_t size, unsigned abort_at)
{
    memset(r, 0, sizeof *r);
    r->cap = size + (MULTIPART_MAX_PARTS + 1) * 1024;
    r->log = malloc(r->cap);
    FUZZ_ASSERT(r->log != NULL);
    r->abort_at = abort_at;
    r->input_len = size;
}

static void compare(const struct run *a, const struct outcome *oa, const struct run *b,
                    const struct outcome *ob)
{
    FUZZ_ASSERT(oa->status == ob->status);
    FUZZ_ASSERT(strcmp(oa->error, ob->error) == 0);
    FUZZ_ASSERT(a->len == b->len && memcmp(a->log, b->log, a->len) == 0);
}

static void fuzz_content_type(const uint8_t *data, size_t size)
{
    char ct[512], out[MULTIPART_MAX_BOUNDARY + 1];
    const char *why = NULL;
    size_t n = 0;
    struct multipart_parser p;

    while (n < size && n < sizeof ct - 1 && data[n] != '\n' && data[n] != '\0') {
        ct[n] = (char)data[n];
        n++;
    }
    ct[n] = '\0';
    if (multipart_boundary_from_content_type(ct, out, sizeof out, &why) == 0) {
        size_t len = strlen(out);
        FUZZ_ASSERT(len >= 1 && len <= MULTIPART_MAX_BOUNDARY);
        FUZZ_ASSERT(multipart_parser_init(&p, out, NULL, NULL) == 0);
    } else {
        FUZZ_ASSERT(why != NULL && why[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole, split;
    struct outcome ow, os;
    uint64_t h = 1469598103934665603ULL;
    size_t sizes[16], i, one = 1;
    unsigned abort_at;

    for (i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ULL;
    abort_at = (h >> 60) == 0 ? (unsigned)((h >> 40) % 8) + 1 : 0;
    for (i = 0; i < 16; i++) {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        sizes[i] = 1 + (size_t)(h % (i % 4 == 0 ? 2 : i % 4 == 1 ? 16 : 200));
    }

    fuzz_content_type(data, size);

    run_init(&whole, size, abort_at);
    whole.input = (const char *)data;
    parse(&whole, &ow, data, size, NULL, 0);

    run_init(&split, size, abort_at);
    parse(&split, &os, data, size, sizes, 16);
    compare(&whole, &ow, &split, &os);
    free(split.log);

    if (size <= 4096) {
        run_init(&split, size, abort_at);
        parse(&split, &os, data, size, &one, 1);
        compare(&whole, &ow, &split, &os);
        free(split.log);
    }
    free(whole.log);
    return 0;
}
