/* libFuzzer target for the JSONL validator (src/jsonl.c), with a differential
 * oracle.
 *
 * The input is a file's content. It is validated in plain mode (max_depth 64)
 * and, if it mentions custom_id, in batch mode too. Checks:
 *  - splitting: fed whole, split at a point derived from the input, and (if
 *    short) one byte at a time, the outcome (status, line, column, reason_code,
 *    message, objects) is the same;
 *  - plain mode against an oracle built from other code: each line is judged by
 *    cJSON_ParseWithLengthOpts (the root must be an object and only JSON
 *    whitespace may follow it) AND an independent strictness pass for what
 *    cJSON 1.7.15 lets through (strict UTF-8 decoded by arithmetic, raw control
 *    characters, whitespace other than space/tab/CR, number grammar, \u hex
 *    digits, nesting depth, non-ASCII outside strings such as a BOM). The
 *    validator must accept exactly when every non-blank line passes and there
 *    is at least one, and otherwise name the first failing line;
 *  - batch mode against the batch rules evaluated on cJSON's tree: the first
 *    failing line must match, and a batch failure's reason_code must be one
 *    that the line deserves;
 *  - batch mode with every custom_id but the first going to a spill store
 *    (sorted runs merged at the end) against the in-memory set alone.
 * Documented differences that are reconciled, not reported: cJSON stops after
 * 63 characters of a number (such lines are not judged); cJSON strings cannot
 * hold U+0000 (inputs with \u0000 skip the batch oracle). Any mismatch prints
 * the details and calls abort().
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *         -o /tmp/fuzz_jsonl tests/fuzz/fuzz_jsonl.c src/jsonl.c src/jsonl_ids.c -lcjson -lxxhash
 *   mkdir -p /tmp/fuzz-jsonl && /tmp/fuzz_jsonl -dict=tests/fuzz/jsonl.dict \
 *         -max_total_time=60 /tmp/fuzz-jsonl tests/fuzz/corpus/jsonl
 * (new inputs go to the first directory; the committed seeds stay as they are)
 */
#include "jsonl.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_DEPTH 64

struct outcome {
    int rc;
    uint64_t line, column, objects;
    const char *code;
    char message[256];
};

enum run_mode {
    RUN_TWO_PIECES, /* d[0..cut), d[cut..len), finish */
    RUN_BYTEWISE,   /* one byte at a time, finish */
    RUN_STOPPED,    /* d[0..cut), then stop (as at a size limit) */
};

static void run(const uint8_t *d, size_t len, const struct jsonl_options *o, size_t cut,
                enum run_mode mode, struct outcome *out)
{
    struct jsonl_validator *v = jsonl_validator_new(o);
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (!v)
        abort();
    if (mode == RUN_BYTEWISE) {
        for (size_t i = 0; i < len && rc == 0; i++)
            rc = jsonl_validator_feed(v, d + i, 1);
    } else {
        rc = jsonl_validator_feed(v, d, cut);
        if (rc == 0 && mode == RUN_TWO_PIECES)
            rc = jsonl_validator_feed(v, d + cut, len - cut);
    }
    if (rc == 0)
        rc = mode == RUN_STOPPED ? jsonl_validator_stop(v) : jsonl_validator_finish(v);
    out->rc = rc;
    out->objects = jsonl_validator_objects(v);
    if (rc) {
        const struct jsonl_error *e = jsonl_validator_error(v);
        if (!e || rc != -1)
            abort();
        out->line = e->line;
        out->column = e->column;
        out->code = e->reason_code;
        snprintf(out->message, sizeof out->message, "%s", e->message);
        if (e->line < 1 || e->column < 1 || !e->reason[0])
            abort();
    } else if ((out->objects == 0 && mode != RUN_STOPPED) || jsonl_validator_error(v) != NULL) {
        abort();
    }
    jsonl_validator_free(v);
}

static int same(const struct outcome *a, const struct outcome *b)
{
    return a->rc == b->rc && a->line == b->line && a->column == b->column &&
           a->objects == b->objects && a->code == b->code && strcmp(a->message, b->message) == 0;
}

__attribute__((noreturn)) static void mismatch(const char *what, const uint8_t *d, size_t len,
                                               const struct outcome *o)
{
    fprintf(stderr, "MISMATCH: %s\nvalidator: rc %d, %s (code %s)\ninput (%zu bytes): ", what,
            o->rc, o->message, o->code ? o->code : "-", len);
    for (size_t i = 0; i < len && i < 400; i++)
        fprintf(stderr, d[i] >= 0x20 && d[i] < 0x7f ? "%c" : "\\x%02X", d[i]);
    fputc('\n', stderr);
    abort();
}

/* ---- the independent strictness pass ---- */

/* One UTF-8 character at s (n bytes available), decoded arithmetically.
 * Returns its length, or 0 if it is not a well-formed RFC 3629 character. */
static size_t utf8_char(const uint8_t *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0)
        len = 2, cp = s[0] & 0x1F;
    else if ((s[0] & 0xF0) == 0xE0)
        len = 3, cp = s[0] & 0x0F;
    else if ((s[0] & 0xF8) == 0xF0)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
        return 0; /* overlong */
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int is_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 8259 §6 number grammar on exactly [s, s+n). */
static int number_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t start;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
    }
    return i == n;
}

enum verdict { BAD = 0, GOOD = 1, UNKNOWN = 2 };

/* The things cJSON does not check, on one line (no LF inside). */
static enum verdict strict_line(const uint8_t *s, size_t n)
{
    unsigned depth = 0;
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == '"') {
            i++;
            for (;;) {
                size_t k;
                if (i >= n)
                    return BAD;
                c = s[i];
                if (c == '"') {
                    i++;
                    break;
                }
                if (c < 0x20)
                    return BAD;
                if (c == '\\') {
                    if (i + 1 < n && s[i + 1] == 'u') {
                        if (i + 6 > n || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) ||
                            !is_hex(s[i + 4]) || !is_hex(s[i + 5]))
                            return BAD;
                        i += 6;
                    } else {
                        i += 2; /* cJSON checks the escape letter */
                    }
                    continue;
                }
                k = utf8_char(s + i, n - i);
                if (k == 0)
                    return BAD;
                i += k;
            }
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = i;
            while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '+' ||
                             s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
                i++;
            if (!number_ok(s + start, i - start))
                return BAD;
            if (i - start > 63)
                return UNKNOWN; /* cJSON reads at most 63 characters of a number */
            continue;
        }
        if (c == '{' || c == '[') {
            if (++depth > FUZZ_MAX_DEPTH)
                return BAD;
        } else if (c == '}' || c == ']') {
            if (depth)
                depth--;
        } else if (c < 0x20 && c != '\t' && c != '\r') {
            return BAD; /* cJSON skips every byte <= 0x20 as whitespace */
        } else if (c >= 0x80) {
            return BAD; /* outside strings only ASCII (this also covers a BOM) */
        }
        i++;
    }
    return GOOD;
}

/* The whole verdict on one line: GOOD, BAD, or UNKNOWN; *root gets cJSON's
 * tree for a GOOD line (the caller frees it). */
static enum verdict judge_line(const uint8_t *s, size_t n, cJSON **root)
{
    const char *end = NULL;
    enum verdict strict = strict_line(s, n);
    cJSON *j;
    *root = NULL;
    if (strict == UNKNOWN)
        return UNKNOWN;
    j = cJSON_ParseWithLengthOpts((const char *)s, n, &end, 0);
    if (!j)
        return BAD;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return BAD;
    }
    for (const uint8_t *p = (const uint8_t *)end; p < s + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r') {
            cJSON_Delete(j);
            return BAD;
        }
    }
    if (strict == BAD) {
        cJSON_Delete(j);
        return BAD;
    }
    *root = j;
    return GOOD;
}

static int blank(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* ---- batch rules on cJSON's tree ---- */

#define CODE_MISSING (1u << 0)
#define CODE_DUPLICATE (1u << 1)
#define CODE_METHOD (1u << 2)
#define CODE_URL (1u << 3)
#define CODE_MISMATCH (1u << 4)
#define CODE_BODY (1u << 5)

static unsigned code_bit(const char *code)
{
    if (!code)
        return 0;
    if (!strcmp(code, "missing_required_parameter"))
        return CODE_MISSING;
    if (!strcmp(code, "duplicate_custom_id"))
        return CODE_DUPLICATE;
    if (!strcmp(code, "invalid_method"))
        return CODE_METHOD;
    if (!strcmp(code, "invalid_url"))
        return CODE_URL;
    if (!strcmp(code, "url_mismatch"))
        return CODE_MISMATCH;
    if (!strcmp(code, "invalid_body"))
        return CODE_BODY;
    return 1u << 31;
}

struct batch_state {
    char **ids;
    size_t nids, cap;
    int url; /* index of the first line's url, -1 before */
};

/* The reason codes line object j deserves (0: a valid request). */
static unsigned batch_codes(cJSON *j, struct batch_state *st, int *url_index)
{
    static const char *const names[] = {"custom_id", "method", "url", "body"};
    cJSON *member[4] = {0};
    int count[4] = {0};
    unsigned codes = 0;
    cJSON *c;
    *url_index = -1;
    for (c = j->child; c; c = c->next)
        for (int k = 0; k < 4; k++)
            if (c->string && strcmp(c->string, names[k]) == 0) {
                if (!count[k]++)
                    member[k] = c;
            }
    if (!count[0] || !count[1] || !count[2] || !count[3])
        codes |= CODE_MISSING;
    if (count[0] > 1)
        codes |= CODE_DUPLICATE;
    if (count[1] > 1)
        codes |= CODE_METHOD;
    if (count[2] > 1)
        codes |= CODE_URL;
    if (count[3] > 1)
        codes |= CODE_BODY;
    if (member[0]) {
        if (!cJSON_IsString(member[0]) || !member[0]->valuestring[0]) {
            codes |= CODE_MISSING;
        } else {
            for (size_t i = 0; i < st->nids; i++)
                if (!strcmp(st->ids[i], member[0]->valuestring))
                    codes |= CODE_DUPLICATE;
        }
    }
    if (member[1] && (!cJSON_IsString(member[1]) || strcmp(member[1]->valuestring, "POST")))
        codes |= CODE_METHOD;
    if (member[2]) {
        int found = -1;
        if (cJSON_IsString(member[2]))
            for (size_t k = 0; k < jsonl_default_batch_url_count; k++)
                if (!strcmp(member[2]->valuestring, jsonl_default_batch_urls[k]))
                    found = (int)k;
        if (found < 0)
            codes |= CODE_URL;
        else if (st->url >= 0 && found != st->url)
            codes |= CODE_MISMATCH;
        *url_index = found;
    }
    if (member[3] && !cJSON_IsObject(member[3]))
        codes |= CODE_BODY;
    if (!codes) {
        if (st->nids == st->cap) {
            st->cap = st->cap ? 2 * st->cap : 16;
            st->ids = realloc(st->ids, st->cap * sizeof *st->ids);
            if (!st->ids)
                abort();
        }
        st->ids[st->nids++] = strdup(member[0]->valuestring);
    }
    return codes;
}

/* ---- the target ---- */

static void check_splits(const uint8_t *d, size_t len, const struct jsonl_options *o,
                         const struct outcome *whole)
{
    struct outcome part;
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ d[i]) * 1099511628211u;
    run(d, len, o, len ? (size_t)(h % (len + 1)) : 0, RUN_TWO_PIECES, &part);
    if (!same(&part, whole))
        mismatch("split at a point changes the outcome", d, len, &part);
    if (len <= 256) {
        run(d, len, o, 0, RUN_BYTEWISE, &part);
        if (!same(&part, whole))
            mismatch("one byte at a time changes the outcome", d, len, &part);
    }
}

static int mentions(const uint8_t *d, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(d + i, needle, n) == 0)
            return 1;
    return 0;
}

/* The spill store for batch mode with memory_ids 1: in memory, reset per run. */
static unsigned char *spill_data;
static size_t spill_len, spill_cap;

static int spill_write(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    if (spill_len + len > spill_cap) {
        spill_cap = (spill_len + len) * 2;
        spill_data = realloc(spill_data, spill_cap);
        if (!spill_data)
            abort();
    }
    memcpy(spill_data + spill_len, data, len);
    spill_len += len;
    return 0;
}

static int spill_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
    (void)ctx;
    if (offset + len > spill_len)
        abort(); /* the validator reads only what it wrote */
    memcpy(buf, spill_data + offset, len);
    return 0;
}

/* With every custom_id but the first spilled, the verdict is the set's: same
 * status, line and column, and the same reason_code except that on one line a
 * spilled duplicate may lose to another batch problem of that line. The same
 * holds for the input stopped at cut (as at a size limit) when stopped. */
static void check_spilled(const uint8_t *d, size_t len, size_t cut, enum run_mode mode,
                          const struct outcome *set_only)
{
    static const struct jsonl_spill spill = {spill_write, spill_read, NULL};
    static const struct jsonl_options spilled = {.max_depth = FUZZ_MAX_DEPTH, .check_batch = 1,
                                                 .hash_seed = 12345, .spill = &spill,
                                                 .memory_ids = 1};
    struct outcome out;
    spill_len = 0;
    run(d, len, &spilled, cut, mode, &out);
    if (out.rc != set_only->rc || out.line != set_only->line)
        mismatch("spilled custom_ids: another verdict than the set's", d, len, &out);
    if (out.code != set_only->code &&
        (!out.code || !set_only->code || strcmp(out.code, set_only->code) != 0))
        mismatch("spilled custom_ids: another kind of problem than the set's", d, len, &out);
    if (out.column != set_only->column)
        mismatch("spilled custom_ids: another column than the set's", d, len, &out);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t len)
{
    static const struct jsonl_options plain = {.max_depth = FUZZ_MAX_DEPTH};
    static const struct jsonl_options batch = {
        .max_depth = FUZZ_MAX_DEPTH, .check_batch = 1, .hash_seed = 12345};
    int with_batch = mentions(d, len, "custom_id") && !mentions(d, len, "\\u0000");
    struct outcome whole, bwhole;
    struct batch_state st = {.url = -1};
    uint64_t lineno = 0, objects = 0;
    uint64_t first_bad = 0, first_batch_bad = 0;
    unsigned batch_codes_deserved = 0;
    int unknown = 0;

    run(d, len, &plain, len, RUN_TWO_PIECES, &whole);
    check_splits(d, len, &plain, &whole);
    if (with_batch) {
        run(d, len, &batch, len, RUN_TWO_PIECES, &bwhole);
        check_splits(d, len, &batch, &bwhole);
        struct outcome bstopped;
        size_t cut = len ? (size_t)((d[len - 1] * 2654435761u) % (len + 1)) : 0;
        check_spilled(d, len, len, RUN_TWO_PIECES, &bwhole);
        run(d, len, &batch, cut, RUN_STOPPED, &bstopped);
        check_spilled(d, len, cut, RUN_STOPPED, &bstopped);
    }

    /* the oracle, line by line */
    for (size_t start = 0; start <= len && !unknown && !first_bad;) {
        const uint8_t *nl = memchr(d + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - d) : len;
        lineno++;
        if (!blank(d + start, end - start)) {
            cJSON *root;
            enum verdict v = judge_line(d + start, end - start, &root);
            if (v == UNKNOWN) {
                unknown = 1;
            } else if (v == BAD) {
                first_bad = lineno;
                if (!first_batch_bad)
                    first_batch_bad = lineno; /* a syntax error: no reason_code */
            } else {
                objects++;
                if (with_batch && !first_batch_bad) {
                    int url;
                    unsigned codes = batch_codes(root, &st, &url);
                    if (codes) {
                        first_batch_bad = lineno;
                        batch_codes_deserved = codes;
                    } else if (st.url < 0) {
                        st.url = url;
                    }
                }
                cJSON_Delete(root);
            }
        }
        if (!nl)
            break;
        start = end + 1;
    }
    for (size_t i = 0; i < st.nids; i++)
        free(st.ids[i]);
    free(st.ids);
    if (unknown)
        return 0;

    /* plain mode */
    if (!first_bad && objects == 0)
        first_bad = 1; /* no objects */
    if (first_bad) {
        if (whole.rc != -1)
            mismatch("the oracle rejects, the validator accepts", d, len, &whole);
        if (whole.line != first_bad) {
            char what[96];
            snprintf(what, sizeof what, "the oracle's first bad line is %llu",
                     (unsigned long long)first_bad);
            mismatch(what, d, len, &whole);
        }
        if (whole.code)
            mismatch("a reason_code in plain mode", d, len, &whole);
    } else if (whole.rc != 0 || whole.objects != objects) {
        mismatch("the oracle accepts, the validator rejects", d, len, &whole);
    }

    /* batch mode */
    if (with_batch) {
        if (!first_batch_bad && objects == 0)
            first_batch_bad = 1;
        if (first_batch_bad) {
            if (bwhole.rc != -1 || bwhole.line != first_batch_bad)
                mismatch("batch mode: not rejected at the oracle's first bad line", d, len,
                         &bwhole);
            if (batch_codes_deserved ? !(code_bit(bwhole.code) & batch_codes_deserved)
                                     : bwhole.code != NULL)
                mismatch("batch mode: wrong reason_code", d, len, &bwhole);
        } else if (bwhole.rc != 0) {
            mismatch("batch mode: the oracle accepts, the validator rejects", d, len, &bwhole);
        }
    }
    return 0;
}
