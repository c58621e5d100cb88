/* jsonl — streaming JSON Lines validator. See include/jsonl.h and docs/jsonl.md.
 *
 * Design: one resumable scanner. The state between two chunks is a handful of
 * fields (the grammar state, a sub-state for strings, escapes, UTF-8 sequences,
 * numbers and literals, and a bit stack of open containers), so a chunk may end
 * at any byte. Inside a chunk the scanner runs as straight-line code that jumps
 * from state to state; string contents, the bulk of a batch file, are skipped
 * 16 bytes at a time with SSE2 until a quote, a backslash, a control byte or a
 * non-ASCII byte, or, when the CPU has AVX2, 32 bytes at a time with multi-byte
 * UTF-8 validated in the same pass. No line or value is ever buffered: batch
 * members are compared and hashed as their bytes pass.
 */
#include "jsonl.h"
#include "jsonl_ids.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define JSONL_HAVE_AVX2_PATH 1
#endif

/* Allocation goes through these so that the unit test can count and fail them. */
#ifndef JSONL_MALLOC
#define JSONL_MALLOC(n) malloc(n)
#define JSONL_CALLOC(n, size) calloc((n), (size))
#define JSONL_FREE(p) free(p)
#endif

#define JSONL_LIKELY(x) __builtin_expect(!!(x), 1)
#define JSONL_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* custom_id values up to this many decoded bytes are hashed in one call;
 * longer ones go through a streaming XXH3 state (same result either way). */
#define JSONL_ID_INLINE 64
/* Bytes of a decoded value quoted in an error message. */
#define JSONL_QUOTE_MAX 48
/* Decoded bytes of a top-level member name kept to recognise the batch members. */
#define JSONL_KEY_MAX 16

const char *const jsonl_default_batch_urls[] = {"/v1/chat/completions", "/v1/embeddings",
                                                "/v1/images/generations", "/v1/audio/speech"};
const size_t jsonl_default_batch_url_count =
    sizeof jsonl_default_batch_urls / sizeof jsonl_default_batch_urls[0];

enum jsonl_state {
    ST_LINE,        /* before a line's object: whitespace, blank lines */
    ST_BOM,         /* saw 0xEF where a line's object should start */
    ST_AFTER_TOP,   /* after the line's object: whitespace up to LF */
    ST_OBJ_FIRST,   /* after '{': a name or '}' */
    ST_OBJ_KEY,     /* after ',' in an object: a name */
    ST_COLON,       /* after a member name */
    ST_VALUE,       /* after ':' or after ',' in an array */
    ST_ARR_FIRST,   /* after '[': a value or ']' */
    ST_AFTER_VALUE, /* after a value inside a container: ',' or the closing bracket */
    ST_STRING,      /* inside a string */
    ST_ESCAPE,      /* after a backslash */
    ST_HEX,         /* inside \uXXXX: hex_left digits to go */
    ST_SURR_BS,     /* after a high surrogate escape: expecting '\' */
    ST_SURR_U,      /* after a high surrogate escape and '\': expecting 'u' */
    ST_UTF8,        /* inside a multi-byte UTF-8 sequence in a string */
    ST_NUM_MINUS,   /* after '-' */
    ST_NUM_ZERO,    /* after a leading '0' */
    ST_NUM_INT,     /* in the integer digits */
    ST_NUM_DOT,     /* after '.' */
    ST_NUM_FRAC,    /* in the fraction digits */
    ST_NUM_E,       /* after 'e' or 'E' */
    ST_NUM_ESIGN,   /* after the exponent's sign */
    ST_NUM_EXP,     /* in the exponent digits */
    ST_LITERAL,     /* inside true, false or null */
};

enum jsonl_capture { CAP_NONE, CAP_KEY, CAP_CUSTOM_ID, CAP_METHOD, CAP_URL };
enum jsonl_member { M_NONE, M_CUSTOM_ID, M_METHOD, M_URL, M_BODY, M_OTHER };

struct jsonl_validator {
    int state;            /* enum jsonl_state */
    int status;           /* 0, -1 or -2, sticky */
    int finished;         /* jsonl_validator_finish was called */
    uint64_t consumed;    /* bytes fed before the current chunk */
    uint64_t line;        /* 1-based current line */
    uint64_t line_start;  /* offset of the current line's first byte */
    uint64_t objects;     /* lines accepted */
    unsigned depth;       /* open containers */
    unsigned max_depth;   /* limit on depth */
    unsigned char *stack; /* bit d-1 set: the container at depth d is an object */
    int in_object;        /* the innermost open container is an object (its stack bit) */
    int str_key;          /* the current string is a member name */
    int capture;          /* enum jsonl_capture for the current string */
    unsigned hex_left;    /* hex digits still expected in \uXXXX */
    uint32_t hex_value;   /* digits so far */
    uint32_t high;        /* pending high surrogate, 0 if none */
    unsigned utf8_need;   /* continuation bytes still expected */
    unsigned utf8_lo;     /* allowed range of the next continuation byte */
    unsigned utf8_hi;
    unsigned utf8_lead;   /* the sequence's lead byte, for messages */
    const char *literal;  /* "true", "false" or "null" while in ST_LITERAL */
    unsigned literal_pos; /* bytes of it matched */
    uint64_t bom_offset;  /* offset of the 0xEF in ST_BOM */
    unsigned bom_matched; /* bytes of EF BB BF matched */
    /* batch mode */
    int batch;              /* options->check_batch */
    int member;             /* enum jsonl_member whose value comes next */
    unsigned seen;          /* batch members seen in this line's object, 1 << member */
    uint64_t object_offset; /* offset of the line's '{' */
    uint64_t value_offset;  /* offset of the captured value's first byte */
    unsigned char key[JSONL_KEY_MAX];
    size_t key_len;       /* decoded bytes of the name, saturating at JSONL_KEY_MAX + 1 */
    unsigned char *value; /* value_cap bytes: the captured value's first bytes */
    size_t value_cap;
    size_t value_len;     /* bytes in value[] */
    uint64_t value_total; /* decoded bytes of the captured value */
    int hashing;          /* the custom_id outgrew JSONL_ID_INLINE: bytes go to xxh */
    XXH3_state_t *xxh;    /* owned */
    uint64_t seed;
    char **urls; /* url_count owned copies */
    size_t *url_lens;
    size_t url_count;
    size_t first_url; /* index in urls of the first line's url, url_count if none */
    uint64_t first_url_line;
    int id_deferred;                            /* id_fingerprint still to be checked and added */
    uint64_t id_fingerprint;                    /* of the line's custom_id */
    uint64_t id_offset;                         /* offset of the custom_id value */
    unsigned char id_text[JSONL_QUOTE_MAX + 4]; /* its first bytes, for a message */
    size_t id_text_len;
    int id_text_more;         /* the custom_id is longer than id_text_len */
    const char *pending_code; /* first batch problem in the current line, NULL if none */
    uint64_t pending_offset;
    /* The line's custom_id went to the spill store unchecked (id_spilled), and
     * its pending problem was noted after that: with the set alone, a
     * duplicate custom_id would have been noted first. error_after_spilled_id:
     * the same, for the problem that became v->error. */
    int id_spilled;
    int pending_after_spilled_id;
    int error_after_spilled_id;
    char pending_reason[sizeof(((struct jsonl_error *)0)->reason)];
    struct jsonl_ids ids; /* the custom_ids so far */
    int spill_checked;    /* the spilled ones were compared (once: at the end, the first
                             problem or a stop) */
    struct jsonl_error error;
};

/* 1 for bytes that may stand for themselves in a string and are ASCII. */
static const unsigned char jsonl_plain[256] = {
#define R8(x) x, x, x, x, x, x, x, x
    R8(0), R8(0), R8(0), R8(0),                 /* 0x00-0x1F: control characters */
    1,     1,     0,     1,     1,     1, 1, 1, /* 0x20-0x27: '"' is 0x22 */
    R8(1),                                      /* 0x28-0x2F */
    R8(1), R8(1), R8(1), R8(1), R8(1),          /* 0x30-0x57 */
    1,     1,     1,     1,     0,     1, 1, 1, /* 0x58-0x5F: '\\' is 0x5C */
    R8(1), R8(1), R8(1), R8(1),                 /* 0x60-0x7F */
#undef R8
};

static int jsonl_have_avx2 = -1;

/* ---- errors ---------------------------------------------------------------- */

/* Describes byte c for a message ("'x'", "a space", "control character U+0009",
 * "byte 0xC3", "the end of the line"). Returns buf. */
static const char *jsonl_describe(unsigned c, char buf[32])
{
    if (c == '\n')
        snprintf(buf, 32, "the end of the line");
    else if (c == ' ')
        snprintf(buf, 32, "a space");
    else if (c > 0x20 && c < 0x7f)
        snprintf(buf, 32, "'%c'", (int)c);
    else if (c < 0x20 || c == 0x7f)
        snprintf(buf, 32, "control character U+%04X", c);
    else
        snprintf(buf, 32, "byte 0x%02X", c);
    return buf;
}

static void jsonl_set_error(struct jsonl_validator *v, uint64_t offset, const char *code,
                            const char *reason)
{
    struct jsonl_error *e = &v->error;
    e->line = v->line;
    e->column = offset - v->line_start + 1;
    e->reason_code = code;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    snprintf(e->message, sizeof e->message, "line %" PRIu64 ", column %" PRIu64 ": %s", e->line,
             e->column, e->reason);
}

/* Records the first problem at byte offset (absolute) of the current line.
 * Returns -1 (the status from now on). */
__attribute__((format(printf, 4, 5), cold, noinline)) static int
jsonl_fail(struct jsonl_validator *v, uint64_t offset, const char *code, const char *format, ...)
{
    char reason[sizeof v->error.reason];
    va_list ap;
    va_start(ap, format);
    vsnprintf(reason, sizeof reason, format, ap);
    va_end(ap);
    jsonl_set_error(v, offset, code, reason);
    v->status = -1;
    return -1;
}

__attribute__((cold, noinline)) static int jsonl_out_of_memory(struct jsonl_validator *v,
                                                               uint64_t offset)
{
    jsonl_set_error(v, offset, NULL, "out of memory");
    v->status = -2;
    return -2;
}

/* "expected X, found Y" plus a hint for the usual non-JSON habits. */
__attribute__((cold, noinline)) static int
jsonl_unexpected(struct jsonl_validator *v, uint64_t offset, unsigned c, const char *expected)
{
    char found[32];
    const char *hint = "";
    if (c == '\n')
        return jsonl_fail(v, offset, NULL,
                          "the line ends before the JSON object is closed; each object must be "
                          "on a single line");
    if (c == '/')
        hint = "; comments are not allowed in JSON";
    else if (c == '\'')
        hint = "; strings and member names need double quotes";
    else if (c >= 0x80)
        hint = "; non-ASCII characters are allowed only inside strings";
    return jsonl_fail(v, offset, NULL, "expected %s, found %s%s", expected,
                      jsonl_describe(c, found), hint);
}

/* Writes len decoded bytes of s as a quoted string for a message, cut at a
 * character boundary after JSONL_QUOTE_MAX bytes (or at the capacity),
 * escaping quotes, backslashes and control characters. */
static void jsonl_quote(char *out, size_t cap, const unsigned char *s, size_t len, int more)
{
    size_t o = 0, i = 0;
    if (cap < 8)
        return;
    out[o++] = '"';
    while (i < len && o + 12 < cap) {
        unsigned c = s[i];
        size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (i >= JSONL_QUOTE_MAX || i + n > len) {
            more = 1;
            break;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04X", c);
        } else {
            memcpy(out + o, s + i, n);
            o += n;
        }
        i += n;
    }
    if (i < len)
        more = 1;
    out[o++] = '"';
    if (more && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* ---- spilled custom_ids ------------------------------------------------------ */

/* At the end, at the first other problem, or where the input stops: a
 * duplicate among the spilled custom_ids (of lines before below_line) whose
 * second use comes first is the first problem: on an earlier line, or on the
 * same line when that line's batch problem was noted after its custom_id (as
 * the set alone would have found the duplicate first; a line's grammar
 * problem always wins). If the store failed, a problem found is kept (a
 * spilled duplicate before it cannot be ruled out, but the file is refused
 * either way); with none, the verdict is -2. Returns the validator's status. */
static int jsonl_spill_verdict(struct jsonl_validator *v, uint64_t below_line)
{
    struct jsonl_spill_record second = {0};
    uint64_t first = 0;
    int found;

    if (!v->ids.spilling || v->spill_checked || v->status == -2)
        return v->status;
    v->spill_checked = 1;
    if (!jsonl_ids_spilled_any(&v->ids))
        return v->status; /* nothing went past the set */
    found = jsonl_ids_first_duplicate(&v->ids, below_line, &second, &first);
    if (found < 0 && v->status != -1) {
        jsonl_set_error(v, v->consumed, NULL, "could not keep the custom_ids to compare");
        v->status = -2;
    } else if (found > 0 && (v->status == 0 || second.line < v->error.line ||
                             (second.line == v->error.line && v->error_after_spilled_id))) {
        struct jsonl_error *e = &v->error;
        e->line = second.line;
        e->column = second.column;
        e->reason_code = "duplicate_custom_id";
        snprintf(e->reason, sizeof e->reason,
                 "custom_id is already used by line %" PRIu64
                 "; every request needs a unique custom_id",
                 first);
        snprintf(e->message, sizeof e->message, "line %" PRIu64 ", column %" PRIu64 ": %s", e->line,
                 e->column, e->reason);
        v->status = -1;
    }
    return v->status;
}

/* ---- batch rules ------------------------------------------------------------- */

static const char *const jsonl_member_names[] = {"", "custom_id", "method", "url", "body", ""};

static void jsonl_settle_id(struct jsonl_validator *v);

/* Notes a batch-rule problem of the current line; the first one found wins and
 * is reported when the line turns out to be valid JSON (jsonl_line_end). */
__attribute__((format(printf, 4, 5), cold, noinline)) static void
jsonl_pending(struct jsonl_validator *v, uint64_t offset, const char *code, const char *format, ...)
{
    va_list ap;
    if (v->id_deferred)
        jsonl_settle_id(v); /* the custom_id came first: it may be the first problem */
    if (v->pending_code)
        return;
    v->pending_after_spilled_id = v->id_spilled;
    v->pending_code = code;
    v->pending_offset = offset;
    va_start(ap, format);
    vsnprintf(v->pending_reason, sizeof v->pending_reason, format, ap);
    va_end(ap);
}

static const char *jsonl_value_kind(unsigned c)
{
    switch (c) {
    case '"':
        return "a string";
    case '{':
        return "an object";
    case '[':
        return "an array";
    case 't':
    case 'f':
        return "a boolean";
    case 'n':
        return "null";
    default:
        return "a number";
    }
}

/* Appends n decoded bytes of the current string to the capture. */
static void jsonl_capture(struct jsonl_validator *v, const unsigned char *s, size_t n)
{
    size_t room;
    if (n == 0)
        return;
    if (v->capture == CAP_KEY) {
        if (v->key_len > JSONL_KEY_MAX)
            return;
        room = JSONL_KEY_MAX - v->key_len;
        if (n > room) {
            memcpy(v->key + v->key_len, s, room);
            v->key_len = JSONL_KEY_MAX + 1;
        } else {
            memcpy(v->key + v->key_len, s, n);
            v->key_len += n;
        }
        return;
    }
    if (v->capture == CAP_CUSTOM_ID) {
        if (!v->hashing && v->value_total + n > JSONL_ID_INLINE) {
            XXH3_64bits_reset_withSeed(v->xxh, v->seed);
            XXH3_64bits_update(v->xxh, v->value, v->value_len);
            v->hashing = 1;
        }
        if (v->hashing)
            XXH3_64bits_update(v->xxh, s, n);
    }
    room = v->value_cap - v->value_len;
    memcpy(v->value + v->value_len, s, n < room ? n : room);
    v->value_len += n < room ? n : room;
    v->value_total += n;
}

/* Appends code point cp (from an escape) to the capture as UTF-8. */
static void jsonl_capture_code_point(struct jsonl_validator *v, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    jsonl_capture(v, b, n);
}

/* One piece of jsonl_same: the next sizeof(type) bytes of a and b, as whole
 * words of that width (a narrower copy into a wider word is stored and then
 * loaded whole, a store-forwarding stall). */
#define JSONL_SAME_PIECE(type)                                                                     \
    do {                                                                                           \
        type x_, y_;                                                                               \
        memcpy(&x_, a, sizeof x_);                                                                 \
        memcpy(&y_, b, sizeof y_);                                                                 \
        same &= x_ == y_;                                                                          \
        a += sizeof x_;                                                                            \
        b += sizeof y_;                                                                            \
    } while (0)

/* memcmp(a, b, n) == 0 for n known at compile time, in pieces of 8, 4, 2 and
 * 1 bytes: GCC 12 calls memcmp for such n, and b folds into immediates. */
static inline __attribute__((always_inline)) int jsonl_same(const unsigned char *a, const char *b,
                                                            size_t n)
{
    int same = 1;
    for (size_t words = n / 8; words > 0; words--)
        JSONL_SAME_PIECE(uint64_t);
    if (n & 4)
        JSONL_SAME_PIECE(uint32_t);
    if (n & 2)
        JSONL_SAME_PIECE(uint16_t);
    if (n & 1)
        JSONL_SAME_PIECE(uint8_t);
    return same;
}
#undef JSONL_SAME_PIECE

/* A member name at the line's top level ended: which batch member is next? */
static void jsonl_key_end(struct jsonl_validator *v, const unsigned char *k, size_t len)
{
    v->capture = CAP_NONE;
    switch (len) {
    case 9:
        v->member = jsonl_same(k, "custom_id", 9) ? M_CUSTOM_ID : M_OTHER;
        break;
    case 6:
        v->member = jsonl_same(k, "method", 6) ? M_METHOD : M_OTHER;
        break;
    case 3:
        v->member = jsonl_same(k, "url", 3) ? M_URL : M_OTHER;
        break;
    case 4:
        v->member = jsonl_same(k, "body", 4) ? M_BODY : M_OTHER;
        break;
    default:
        v->member = M_OTHER;
    }
}

/* The value of a top-level member starts with byte c at offset: check its
 * type, count the member, and start capturing the strings we compare. */
static void jsonl_member_value(struct jsonl_validator *v, unsigned c, uint64_t offset)
{
    int m = v->member;
    v->member = M_NONE;
    if (m == M_OTHER || v->pending_code)
        return;
    if (v->seen & 1u << m) {
        static const char *const dup_code[] = {NULL, "duplicate_custom_id", "invalid_method",
                                               "invalid_url", "invalid_body"};
        jsonl_pending(v, offset, dup_code[m],
                      "member \"%s\" appears more than once in the request; give it once",
                      jsonl_member_names[m]);
        return;
    }
    v->seen |= 1u << m;
    v->value_offset = offset;
    v->value_len = 0;
    v->value_total = 0;
    v->hashing = 0;
    switch (m) {
    case M_CUSTOM_ID:
        if (c == '"')
            v->capture = CAP_CUSTOM_ID;
        else
            jsonl_pending(v, offset, "missing_required_parameter",
                          "\"custom_id\" must be a non-empty string, found %s",
                          jsonl_value_kind(c));
        break;
    case M_METHOD:
        if (c == '"')
            v->capture = CAP_METHOD;
        else
            jsonl_pending(v, offset, "invalid_method", "\"method\" must be \"POST\", found %s",
                          jsonl_value_kind(c));
        break;
    case M_URL:
        if (c == '"')
            v->capture = CAP_URL;
        else
            jsonl_pending(v, offset, "invalid_url",
                          "\"url\" must be a string naming a batch endpoint, found %s",
                          jsonl_value_kind(c));
        break;
    case M_BODY:
        if (c != '{')
            jsonl_pending(v, offset, "invalid_body", "\"body\" must be a JSON object, found %s",
                          jsonl_value_kind(c));
        break;
    }
}

/* A captured value string of v->value_total bytes ended; text holds its first
 * len of them. Returns 0, or -2 on out of memory. */
static int jsonl_value_end(struct jsonl_validator *v, const unsigned char *text, size_t len)
{
    char quoted[JSONL_QUOTE_MAX * 2 + 16];
    int capture = v->capture;
    v->capture = CAP_NONE;
#define QUOTED() (jsonl_quote(quoted, sizeof quoted, text, len, v->value_total > len), quoted)
    if (capture == CAP_CUSTOM_ID) {
        uint64_t fp;
        if (v->value_total == 0) {
            jsonl_pending(v, v->value_offset, "missing_required_parameter",
                          "\"custom_id\" must be a non-empty string, found \"\"");
            return 0;
        }
        fp = v->hashing ? XXH3_64bits_digest(v->xxh) : XXH3_64bits_withSeed(text, len, v->seed);
        if (jsonl_ids_in_memory(&v->ids) && jsonl_ids_reserve(&v->ids, fp) < 0)
            return -2;
        /* The lookup, likely a cache miss, is done at the end of the line
         * (jsonl_settle_id) so that the memory arrives while the body is read. */
        jsonl_ids_prefetch(&v->ids, fp);
        v->id_fingerprint = fp;
        v->id_offset = v->value_offset;
        v->id_text_len = len < sizeof v->id_text ? len : sizeof v->id_text;
        memcpy(v->id_text, text, v->id_text_len);
        v->id_text_more = v->value_total > v->id_text_len;
        v->id_deferred = 1;
    } else if (capture == CAP_METHOD) {
        if (v->value_total != 4 || !jsonl_same(text, "POST", 4))
            jsonl_pending(v, v->value_offset, "invalid_method",
                          "\"method\" must be \"POST\", found %s", QUOTED());
    } else if (capture == CAP_URL) {
        size_t i;
        for (i = 0; i < v->url_count; i++)
            if (v->value_total == v->url_lens[i] && memcmp(text, v->urls[i], v->url_lens[i]) == 0)
                break;
        if (i == v->url_count) {
            char list[160];
            size_t o = 0;
            list[0] = '\0';
            for (size_t k = 0; k < v->url_count && o < sizeof list; k++)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", k ? ", " : "", v->urls[k]);
            jsonl_pending(v, v->value_offset, "invalid_url",
                          "\"url\" %s is not a batch endpoint; use one of %s", QUOTED(), list);
        } else if (v->first_url == v->url_count) {
            v->first_url = i;
            v->first_url_line = v->line;
        } else if (i != v->first_url) {
            jsonl_pending(v, v->value_offset, "url_mismatch",
                          "\"url\" %s differs from \"%s\" on line %" PRIu64
                          "; all requests in a file must use the same url",
                          QUOTED(), v->urls[v->first_url], v->first_url_line);
        }
    }
#undef QUOTED
    return 0;
}

/* The line's object closed: every required member must have been there. */
static void jsonl_object_end(struct jsonl_validator *v)
{
    char names[80];
    size_t o = 0;
    int missing = 0;
    if (v->pending_code)
        return;
    for (int m = M_CUSTOM_ID; m <= M_BODY; m++) {
        if (v->seen & 1u << m)
            continue;
        o += (size_t)snprintf(names + o, sizeof names - o, "%s\"%s\"", missing ? ", " : "",
                              jsonl_member_names[m]);
        missing++;
    }
    if (missing)
        jsonl_pending(v, v->object_offset, "missing_required_parameter",
                      "the request lacks the required member%s %s (a batch request needs "
                      "custom_id, method, url and body)",
                      missing > 1 ? "s" : "", names);
}

/* Checks the line's custom_id against the earlier lines' and adds it. */
static void jsonl_settle_id(struct jsonl_validator *v)
{
    char quoted[JSONL_QUOTE_MAX * 2 + 16];
    v->id_deferred = 0;
    if (jsonl_ids_in_memory(&v->ids)) {
        if (jsonl_ids_insert(&v->ids, v->id_fingerprint) == 0)
            return;
    } else if (!jsonl_ids_contains(&v->ids, v->id_fingerprint)) {
        jsonl_ids_spill(&v->ids, v->id_fingerprint, v->line, v->id_offset - v->line_start + 1);
        v->id_spilled = 1;
        return;
    }
    jsonl_quote(quoted, sizeof quoted, v->id_text, v->id_text_len, v->id_text_more);
    jsonl_pending(v, v->id_offset, "duplicate_custom_id",
                  "custom_id %s is already used by an earlier line; every request needs a "
                  "unique custom_id",
                  quoted);
}

/* The line (with an object) ended at a LF or at the end of input: report its
 * batch problem if it had one, else count it. Returns 0 or -1. */
static int jsonl_line_end(struct jsonl_validator *v)
{
    if (v->id_deferred)
        jsonl_settle_id(v);
    if (JSONL_UNLIKELY(v->pending_code != NULL)) {
        jsonl_set_error(v, v->pending_offset, v->pending_code, v->pending_reason);
        v->error_after_spilled_id = v->pending_after_spilled_id;
        v->status = -1;
        return -1;
    }
    v->objects++;
    return 0;
}

/* ---- string scanning ----------------------------------------------------------- */

#if JSONL_HAVE_AVX2_PATH
/* UTF-8 validation of 32 bytes at once: the "lookup" algorithm of Keiser and
 * Lemire ("Validating UTF-8 in less than one instruction per byte", 2021), as
 * in simdjson. Each byte is classified by three 16-entry tables (high nibble
 * of the previous byte, its low nibble, high nibble of this byte); a nonzero
 * AND of the three means an RFC 3629 violation ending at this byte, then
 * 3rd/4th bytes of long sequences are checked to be continuations. */
#define JSONL_TOO_SHORT (1 << 0)  /* lead or ASCII followed by a lead or ASCII... */
#define JSONL_TOO_LONG (1 << 1)   /* ASCII followed by a continuation */
#define JSONL_OVERLONG_3 (1 << 2) /* E0 80..9F */
#define JSONL_TOO_LARGE (1 << 3)  /* F4 90..BF, F5.. */
#define JSONL_SURROGATE (1 << 4)  /* ED A0..BF */
#define JSONL_OVERLONG_2 (1 << 5) /* C0, C1 */
#define JSONL_TOO_LARGE_1000 (1 << 6)
#define JSONL_OVERLONG_4 (1 << 6) /* F0 80..8F */
#define JSONL_TWO_CONTS (1 << 7)  /* continuation after continuation (or after ASCII) */
#define JSONL_CARRY (JSONL_TOO_SHORT | JSONL_TOO_LONG | JSONL_TWO_CONTS)
#define JSONL_TABLE16(...) _mm256_setr_epi8(__VA_ARGS__, __VA_ARGS__)
/* The 32 bytes ending n bytes before those of input (prev holds the 32 before input). */
#define JSONL_PREV(input, prev, n)                                                                 \
    _mm256_alignr_epi8((input), _mm256_permute2x128_si256((prev), (input), 0x21), 16 - (n))

/* Nonzero bytes where the 32 bytes of input, preceded by prev, break RFC 3629. */
__attribute__((target("avx2"))) static inline __m256i jsonl_utf8_errors(__m256i input, __m256i prev)
{
    const __m256i low_nibble = _mm256_set1_epi8(0x0F);
    const __m256i byte_1_high_table = JSONL_TABLE16(
        JSONL_TOO_LONG, JSONL_TOO_LONG, JSONL_TOO_LONG, JSONL_TOO_LONG, JSONL_TOO_LONG,
        JSONL_TOO_LONG, JSONL_TOO_LONG, JSONL_TOO_LONG, (char)JSONL_TWO_CONTS,
        (char)JSONL_TWO_CONTS, (char)JSONL_TWO_CONTS, (char)JSONL_TWO_CONTS,
        JSONL_TOO_SHORT | JSONL_OVERLONG_2, JSONL_TOO_SHORT,
        JSONL_TOO_SHORT | JSONL_OVERLONG_3 | JSONL_SURROGATE,
        (char)(JSONL_TOO_SHORT | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000 | JSONL_OVERLONG_4));
    const __m256i byte_1_low_table = JSONL_TABLE16(
        (char)(JSONL_CARRY | JSONL_OVERLONG_3 | JSONL_OVERLONG_2 | JSONL_OVERLONG_4),
        (char)(JSONL_CARRY | JSONL_OVERLONG_2), (char)JSONL_CARRY, (char)JSONL_CARRY,
        (char)(JSONL_CARRY | JSONL_TOO_LARGE),
        (char)(JSONL_CARRY | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000),
        (char)(JSONL_CARRY | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000),
        (char)(JSONL_CARRY | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000),
        (char)(JSONL_CARRY | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000),
        (char)(JSONL_CARRY | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000),
        (char)(JSONL_CARRY | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000),
        (char)(JSONL_CARRY | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000),
        (char)(JSONL_CARRY | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000),
        (char)(JSONL_CARRY | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000 | JSONL_SURROGATE),
        (char)(JSONL_CARRY | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000),
        (char)(JSONL_CARRY | JSONL_TOO_LARGE | JSONL_TOO_LARGE_1000));
    const __m256i byte_2_high_table =
        JSONL_TABLE16(JSONL_TOO_SHORT, JSONL_TOO_SHORT, JSONL_TOO_SHORT, JSONL_TOO_SHORT,
                      JSONL_TOO_SHORT, JSONL_TOO_SHORT, JSONL_TOO_SHORT, JSONL_TOO_SHORT,
                      (char)(JSONL_TOO_LONG | JSONL_OVERLONG_2 | JSONL_TWO_CONTS |
                             JSONL_OVERLONG_3 | JSONL_TOO_LARGE_1000 | JSONL_OVERLONG_4),
                      (char)(JSONL_TOO_LONG | JSONL_OVERLONG_2 | JSONL_TWO_CONTS |
                             JSONL_OVERLONG_3 | JSONL_TOO_LARGE),
                      (char)(JSONL_TOO_LONG | JSONL_OVERLONG_2 | JSONL_TWO_CONTS | JSONL_SURROGATE |
                             JSONL_TOO_LARGE),
                      (char)(JSONL_TOO_LONG | JSONL_OVERLONG_2 | JSONL_TWO_CONTS | JSONL_SURROGATE |
                             JSONL_TOO_LARGE),
                      JSONL_TOO_SHORT, JSONL_TOO_SHORT, JSONL_TOO_SHORT, JSONL_TOO_SHORT);
    __m256i prev1 = JSONL_PREV(input, prev, 1);
    __m256i byte_1_high = _mm256_shuffle_epi8(
        byte_1_high_table, _mm256_and_si256(_mm256_srli_epi16(prev1, 4), low_nibble));
    __m256i byte_1_low = _mm256_shuffle_epi8(byte_1_low_table, _mm256_and_si256(prev1, low_nibble));
    __m256i byte_2_high = _mm256_shuffle_epi8(
        byte_2_high_table, _mm256_and_si256(_mm256_srli_epi16(input, 4), low_nibble));
    __m256i special = _mm256_and_si256(_mm256_and_si256(byte_1_high, byte_1_low), byte_2_high);
    /* 3rd and 4th bytes of 3- and 4-byte sequences must be continuations (and
     * the special cases above flagged them as TWO_CONTS, so the XOR clears that) */
    __m256i prev2 = JSONL_PREV(input, prev, 2);
    __m256i prev3 = JSONL_PREV(input, prev, 3);
    __m256i third = _mm256_subs_epu8(prev2, _mm256_set1_epi8(0xE0 - 0x80));
    __m256i fourth = _mm256_subs_epu8(prev3, _mm256_set1_epi8((char)(0xF0 - 0x80)));
    __m256i must23 = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8((char)0x80));
    return _mm256_xor_si256(must23, special);
}

/* The AVX2 form of jsonl_skip_plain, 32 bytes per round, for p at a character
 * boundary with >= 32 bytes left. Besides plain ASCII it also skips multi-byte
 * UTF-8 that it has proven valid, so non-ASCII text needs no scalar work. It
 * never skips past a quote, a backslash or a control byte, nor over a byte of
 * an invalid or unfinished sequence: it returns there and the scalar code
 * (which reports errors) takes over. */
__attribute__((target("avx2"), noinline)) static const unsigned char *
jsonl_skip_string_avx2(const unsigned char *p, const unsigned char *end)
{
    const __m256i quote = _mm256_set1_epi8('"');
    const __m256i backslash = _mm256_set1_epi8('\\');
    const __m256i control_max = _mm256_set1_epi8(0x1F);
    while (end - p >= 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)p);
        /* x <= 0x1F unsigned: max(x, 0x1F) == 0x1F */
        __m256i stop = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(x, quote), _mm256_cmpeq_epi8(x, backslash)),
            _mm256_cmpeq_epi8(_mm256_max_epu8(x, control_max), control_max));
        uint32_t stops = (uint32_t)_mm256_movemask_epi8(stop);
        uint32_t high = (uint32_t)_mm256_movemask_epi8(x);
        unsigned limit = stops ? (unsigned)__builtin_ctz(stops) : 32;
        uint64_t before = (UINT64_C(1) << limit) - 1; /* bytes before the stop */
        uint32_t errors;
        unsigned advance;
        if (!(high & before)) {
            if (stops)
                return p + limit;
            p += 32;
            continue;
        }
        /* p is at a character boundary: the bytes before it count as ASCII */
        errors = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(
            jsonl_utf8_errors(x, _mm256_setzero_si256()), _mm256_setzero_si256()));
        if (stops) /* a sequence cut short by the stop byte shows as an error at it */
            return (errors & ((before << 1) | 1)) ? p : p + limit;
        /* no stop: keep an unfinished sequence at the end for the next round.
         * An error at the lead where we cut belongs to the bytes before it
         * (say E2 82 followed by that lead), so it counts too. */
        advance = p[31] >= 0xC0 ? 31 : p[30] >= 0xE0 ? 30 : p[29] >= 0xF0 ? 29 : 32;
        if (errors & (uint32_t)((UINT64_C(2) << advance) - 1))
            return p;
        p += advance;
    }
    return p;
}
#endif

/* Returns the first byte in [p, end) that is not plain string content: a
 * quote, a backslash, a control byte or a non-ASCII byte; end if none. With
 * AVX2 it may also skip valid multi-byte UTF-8 (see jsonl_skip_string_avx2);
 * p must be at a character boundary. */
static inline const unsigned char *jsonl_skip_plain(const unsigned char *p,
                                                    const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    /* The first 16 bytes inline: most strings (names, short values) end there. */
    if (end - p >= 16) {
        /* signed compare: bytes >= 0x80 are negative, so "< 0x20" also catches them */
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                         _mm_cmplt_epi8(x, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask) {
            const unsigned char *q = p + __builtin_ctz(mask);
#if JSONL_HAVE_AVX2_PATH
            if (*q < 0x80 || !jsonl_have_avx2 || end - p < 32)
                return q;
            p = jsonl_skip_string_avx2(p, end);
#else
            return q;
#endif
        } else {
            p += 16;
#if JSONL_HAVE_AVX2_PATH
            if (jsonl_have_avx2 && end - p >= 32)
                p = jsonl_skip_string_avx2(p, end);
#endif
        }
        /* After the AVX2 loop p is at a character boundary (at a stop, at the
         * start of a block it left to the scalar code, or within 32 bytes of
         * the end): go on to the first byte that is not plain ASCII. */
        while (end - p >= 16) {
            x = _mm_loadu_si128((const __m128i *)(const void *)p);
            m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                             _mm_cmplt_epi8(x, space));
            mask = (unsigned)_mm_movemask_epi8(m);
            if (mask)
                return p + __builtin_ctz(mask);
            p += 16;
        }
    }
#endif
    while (p < end && jsonl_plain[*p])
        p++;
    return p;
}

static int jsonl_hex(unsigned c)
{
    if (c - '0' < 10)
        return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6)
        return (int)(c - 'a' + 10);
    return -1;
}

/* ---- the scanner ---------------------------------------------------------------- */

#define OFF(ptr) (v->consumed + (uint64_t)((ptr)-base))
#define IS_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\r')
#define SUSPEND(st)                                                                                \
    do {                                                                                           \
        v->state = (st);                                                                           \
        return 0;                                                                                  \
    } while (0)
#define FLUSH_CAPTURE()                                                                            \
    do {                                                                                           \
        if (JSONL_UNLIKELY(v->capture != CAP_NONE))                                                \
            jsonl_capture(v, span, (size_t)(p - span));                                            \
    } while (0)

/* Checks [base, end), continuing from v->state. Returns 0 if all of it is
 * valid so far, -1 at the first problem (recorded in v->error), -2 on out of
 * memory. Every rule it applies is RFC 8259 §2-§7 (JSON text) or RFC 3629 §4
 * (UTF-8 syntax), restricted to one object per LF-terminated line. */
static int jsonl_scan(struct jsonl_validator *v, const unsigned char *base,
                      const unsigned char *end)
{
    const unsigned char *p = base;
    const unsigned char *span = p; /* start of the string bytes not yet captured */
    unsigned c;
    int rc;
    char found[32];

    switch (v->state) {
    case ST_LINE:
        goto line;
    case ST_BOM:
        goto bom;
    case ST_AFTER_TOP:
        goto after_top;
    case ST_OBJ_FIRST:
        goto obj_first;
    case ST_OBJ_KEY:
        goto obj_key;
    case ST_COLON:
        goto colon;
    case ST_VALUE:
        goto value;
    case ST_ARR_FIRST:
        goto arr_first;
    case ST_AFTER_VALUE:
        goto after_value;
    case ST_STRING:
        goto string;
    case ST_ESCAPE:
        goto escape;
    case ST_HEX:
        goto hex;
    case ST_SURR_BS:
        goto surrogate_backslash;
    case ST_SURR_U:
        goto surrogate_u;
    case ST_UTF8:
        goto utf8_continue;
    case ST_NUM_MINUS:
        goto num_minus;
    case ST_NUM_ZERO:
        goto num_zero;
    case ST_NUM_INT:
        goto num_int;
    case ST_NUM_DOT:
        goto num_dot;
    case ST_NUM_FRAC:
        goto num_frac;
    case ST_NUM_E:
        goto num_e;
    case ST_NUM_ESIGN:
        goto num_esign;
    case ST_NUM_EXP:
        goto num_exp;
    case ST_LITERAL:
        goto literal;
    }
    return jsonl_fail(v, OFF(p), NULL, "internal error: bad state");

line: /* RFC 8259 §2: ws before the value; a blank line is skipped */
    for (;;) {
        if (p == end)
            SUSPEND(ST_LINE);
        c = *p;
        if (JSONL_LIKELY(c == '{'))
            break;
        if (c == '\n') {
            v->line++;
            v->line_start = OFF(p) + 1;
            p++;
        } else if (IS_WS(c)) {
            p++;
        } else if (c == 0xEF) {
            v->bom_offset = OFF(p);
            v->bom_matched = 1;
            p++;
            goto bom;
        } else {
            return jsonl_fail(v, OFF(p), NULL,
                              "each line must be a JSON object starting with '{', found %s",
                              jsonl_describe(c, found));
        }
    }
    /* the line's object */
    if (v->batch) {
        v->seen = 0;
        v->id_spilled = 0;
        v->object_offset = OFF(p);
        v->member = M_NONE;
    }
    v->depth = 1;
    v->stack[0] |= 1;
    v->in_object = 1;
    p++;
    goto obj_first;

bom:
    while (v->bom_matched < 3) {
        static const unsigned char mark[3] = {0xEF, 0xBB, 0xBF};
        if (p == end)
            SUSPEND(ST_BOM);
        if (*p != mark[v->bom_matched])
            return jsonl_fail(v, v->bom_offset, NULL,
                              "each line must be a JSON object starting with '{', found byte 0xEF");
        v->bom_matched++;
        p++;
    }
    return jsonl_fail(v, v->bom_offset, NULL,
                      "the %s starts with a UTF-8 byte-order mark (bytes EF BB BF); save the file "
                      "as UTF-8 without a byte-order mark",
                      v->bom_offset == 0 ? "file" : "line");

after_top: /* RFC 8259 §2: ws after the value, then the line must end */
    for (;;) {
        if (p == end)
            SUSPEND(ST_AFTER_TOP);
        c = *p;
        if (c == '\n') {
            int rc = jsonl_line_end(v);
            if (rc)
                return rc;
            v->pending_code = NULL;
            v->line++;
            v->line_start = OFF(p) + 1;
            p++;
            goto line;
        }
        if (!IS_WS(c))
            return jsonl_fail(v, OFF(p), NULL,
                              "unexpected %s after the end of the JSON object; each line must hold "
                              "exactly one object%s",
                              jsonl_describe(c, found),
                              c == '/' ? " (comments are not allowed in JSON)" : "");
        p++;
    }

obj_first: /* RFC 8259 §4: begin-object [ member *( value-separator member ) ] end-object */
    for (;;) {
        if (p == end)
            SUSPEND(ST_OBJ_FIRST);
        c = *p;
        if (JSONL_LIKELY(c == '"'))
            goto key_start;
        if (c == '}') {
            p++;
            goto close;
        }
        if (!IS_WS(c))
            return jsonl_unexpected(v, OFF(p), c, "a member name in double quotes or '}'");
        p++;
    }

obj_key:
    for (;;) {
        if (p == end)
            SUSPEND(ST_OBJ_KEY);
        c = *p;
        if (JSONL_LIKELY(c == '"'))
            goto key_start;
        if (c == '}')
            return jsonl_fail(v, OFF(p), NULL, "trailing comma before '}' is not allowed");
        if (!IS_WS(c))
            return jsonl_unexpected(v, OFF(p), c, "a member name in double quotes after ','");
        p++;
    }

key_start:
    p++;
    v->str_key = 1;
    if (JSONL_UNLIKELY(v->batch) && v->depth == 1 && !v->pending_code) {
        v->capture = CAP_KEY;
        v->key_len = 0;
    }
    goto string;

colon: /* RFC 8259 §4: member = string name-separator value */
    for (;;) {
        if (p == end)
            SUSPEND(ST_COLON);
        c = *p;
        if (JSONL_LIKELY(c == ':')) {
            p++;
            break;
        }
        if (!IS_WS(c))
            return jsonl_unexpected(v, OFF(p), c, "':' after the member name");
        p++;
    }
    /* fall through to the member's value */

value: /* RFC 8259 §3: value = false / null / true / object / array / number / string */
    for (;;) {
        if (p == end)
            SUSPEND(ST_VALUE);
        c = *p;
        if (!IS_WS(c))
            break;
        p++;
    }
    if (JSONL_UNLIKELY(v->member != M_NONE))
        jsonl_member_value(v, c, OFF(p));
value_start:
    switch (c) {
    case '"':
        p++;
        v->str_key = 0;
        goto string;
    case '{':
        if (JSONL_UNLIKELY(v->depth >= v->max_depth))
            goto too_deep;
        v->stack[v->depth >> 3] |= (unsigned char)(1u << (v->depth & 7));
        v->depth++;
        v->in_object = 1;
        p++;
        goto obj_first;
    case '[':
        if (JSONL_UNLIKELY(v->depth >= v->max_depth))
            goto too_deep;
        v->stack[v->depth >> 3] &= (unsigned char)~(1u << (v->depth & 7));
        v->depth++;
        v->in_object = 0;
        p++;
        goto arr_first;
    case '-':
        p++;
        goto num_minus;
    case '0':
        p++;
        goto num_zero;
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        p++;
        goto num_int;
    case 't':
        v->literal = "true";
        goto literal_start;
    case 'f':
        v->literal = "false";
        goto literal_start;
    case 'n':
        v->literal = "null";
        goto literal_start;
    case ']':
        if (!v->in_object)
            return jsonl_fail(v, OFF(p), NULL, "trailing comma before ']' is not allowed");
        break;
    case '+':
        return jsonl_fail(v, OFF(p), NULL, "a number must not start with '+'");
    case '.':
        return jsonl_fail(v, OFF(p), NULL,
                          "a number must start with a digit ('.5' must be written as '0.5')");
    }
    return jsonl_unexpected(v, OFF(p), c,
                            "a value (string, number, object, array, true, false or null)");

too_deep:
    return jsonl_fail(v, OFF(p), NULL,
                      "objects and arrays are nested deeper than the limit of %u levels",
                      v->max_depth);

arr_first: /* RFC 8259 §5: begin-array [ value *( value-separator value ) ] end-array */
    for (;;) {
        if (p == end)
            SUSPEND(ST_ARR_FIRST);
        c = *p;
        if (!IS_WS(c))
            break;
        p++;
    }
    if (c == ']') {
        p++;
        goto close;
    }
    goto value_start;

after_value:
    for (;;) {
        if (p == end)
            SUSPEND(ST_AFTER_VALUE);
        c = *p;
        if (!IS_WS(c))
            break;
        p++;
    }
    {
        int in_object = v->in_object;
        if (c == ',') {
            p++;
            if (in_object)
                goto obj_key;
            goto value;
        }
        if (c == (in_object ? '}' : ']')) {
            p++;
            goto close;
        }
        return jsonl_unexpected(v, OFF(p), c,
                                in_object ? "',' or '}' after the member value"
                                          : "',' or ']' after the array element");
    }

close:
    if (--v->depth == 0) {
        if (JSONL_UNLIKELY(v->batch))
            jsonl_object_end(v);
        goto after_top;
    }
    v->in_object = (v->stack[(v->depth - 1) >> 3] >> ((v->depth - 1) & 7)) & 1;
    goto after_value;

    /* ---- strings: RFC 8259 §7 ---- */
string:
    span = p;
string_scan:
    p = jsonl_skip_plain(p, end);
    if (JSONL_UNLIKELY(p == end)) {
        FLUSH_CAPTURE();
        SUSPEND(ST_STRING);
    }
    c = *p;
    if (JSONL_LIKELY(c == '"')) {
        if (JSONL_LIKELY(v->capture == CAP_NONE)) {
            p++;
            if (v->str_key)
                goto colon;
            goto after_value;
        }
        /* A string captured whole, in this chunk and without escapes, is
         * looked at where it lies; else the pieces captured so far. */
        if (v->str_key) {
            if (v->key_len == 0)
                jsonl_key_end(v, span, (size_t)(p - span));
            else {
                FLUSH_CAPTURE();
                jsonl_key_end(v, v->key, v->key_len);
            }
            p++;
            goto colon;
        }
        if (v->value_total == 0) {
            v->value_total = (size_t)(p - span);
            rc = jsonl_value_end(v, span, (size_t)(p - span));
        } else {
            FLUSH_CAPTURE();
            rc = jsonl_value_end(v, v->value, v->value_len);
        }
        p++;
        if (rc < 0)
            return jsonl_out_of_memory(v, OFF(p));
        goto after_value;
    }
    if (c == '\\') {
        FLUSH_CAPTURE();
        p++;
        goto escape;
    }
    if (c >= 0x80)
        goto utf8_lead;
    if (c == '\n')
        return jsonl_fail(v, OFF(p), NULL,
                          "the line ends inside a string; close the string on the same line "
                          "(write a line break inside a string as \\n)");
    {
        static const char *const named[] = {
            ['\b'] = "\\b", ['\t'] = "\\t", ['\f'] = "\\f", ['\r'] = "\\r"};
        char escaped[8];
        const char *as = c < sizeof named / sizeof named[0] ? named[c] : NULL;
        if (!as) {
            snprintf(escaped, sizeof escaped, "\\u%04X", c);
            as = escaped;
        }
        return jsonl_fail(v, OFF(p), NULL,
                          "unescaped control character U+%04X in a string; write it as %s", c, as);
    }

utf8_lead: /* RFC 3629 §4: UTF8-2 / UTF8-3 / UTF8-4 */
    if (c < 0xC2) {
        if (c < 0xC0)
            return jsonl_fail(v, OFF(p), NULL,
                              "invalid UTF-8: unexpected continuation byte 0x%02X without a lead "
                              "byte",
                              c);
        return jsonl_fail(v, OFF(p), NULL,
                          "invalid UTF-8: byte 0x%02X can only start an overlong encoding", c);
    }
    if (c < 0xE0) {
        /* the common cases: the whole sequence is in this chunk */
        if (JSONL_LIKELY(end - p >= 2) && (p[1] & 0xC0) == 0x80) {
            p += 2;
            goto utf8_next;
        }
        v->utf8_need = 1;
        v->utf8_lo = 0x80;
        v->utf8_hi = 0xBF;
    } else if (c < 0xF0) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        if (JSONL_LIKELY(end - p >= 3) && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80) {
            p += 3;
            goto utf8_next;
        }
        v->utf8_need = 2;
        v->utf8_lo = lo;
        v->utf8_hi = hi;
    } else if (c < 0xF5) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        if (JSONL_LIKELY(end - p >= 4) && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 &&
            (p[3] & 0xC0) == 0x80) {
            p += 4;
            goto utf8_next;
        }
        v->utf8_need = 3;
        v->utf8_lo = lo;
        v->utf8_hi = hi;
    } else {
        return jsonl_fail(v, OFF(p), NULL, "invalid UTF-8: byte 0x%02X never appears in UTF-8", c);
    }
    v->utf8_lead = c;
    p++;
utf8_continue:
    while (v->utf8_need) {
        if (p == end) {
            FLUSH_CAPTURE();
            SUSPEND(ST_UTF8);
        }
        c = *p;
        if (JSONL_UNLIKELY(c < v->utf8_lo || c > v->utf8_hi)) {
            unsigned lead = v->utf8_lead;
            if (c < 0x80 || c > 0xBF)
                return jsonl_fail(v, OFF(p), NULL,
                                  "invalid UTF-8: truncated sequence, lead byte 0x%02X needs %u "
                                  "more continuation byte%s (0x80-0xBF), found %s",
                                  lead, v->utf8_need, v->utf8_need > 1 ? "s" : "",
                                  jsonl_describe(c, found));
            if (lead == 0xE0)
                return jsonl_fail(v, OFF(p), NULL,
                                  "invalid UTF-8: overlong 3-byte encoding (0xE0 0x%02X)", c);
            if (lead == 0xED)
                return jsonl_fail(v, OFF(p), NULL,
                                  "invalid UTF-8: encoded surrogate (0xED 0x%02X is in "
                                  "U+D800-U+DFFF, which UTF-8 excludes)",
                                  c);
            if (lead == 0xF0)
                return jsonl_fail(v, OFF(p), NULL,
                                  "invalid UTF-8: overlong 4-byte encoding (0xF0 0x%02X)", c);
            return jsonl_fail(v, OFF(p), NULL,
                              "invalid UTF-8: code point above U+10FFFF (0xF4 0x%02X)", c);
        }
        v->utf8_lo = 0x80;
        v->utf8_hi = 0xBF;
        v->utf8_need--;
        p++;
    }
utf8_next:
    /* runs of non-ASCII text: stay here instead of going back to the ASCII skipper */
    if (p < end && *p >= 0x80) {
        c = *p;
        goto utf8_lead;
    }
    goto string_scan;

escape: /* RFC 8259 §7: escape ( " \ / b f n r t uXXXX ) */
    if (p == end)
        SUSPEND(ST_ESCAPE);
    c = *p;
    {
        unsigned char decoded;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            decoded = (unsigned char)c;
            break;
        case 'b':
            decoded = '\b';
            break;
        case 'f':
            decoded = '\f';
            break;
        case 'n':
            decoded = '\n';
            break;
        case 'r':
            decoded = '\r';
            break;
        case 't':
            decoded = '\t';
            break;
        case 'u':
            p++;
            v->hex_left = 4;
            v->hex_value = 0;
            goto hex;
        default:
            if (c > 0x20 && c < 0x7f)
                return jsonl_fail(v, OFF(p), NULL,
                                  "invalid escape '\\%c' in a string; the escapes are \\\" \\\\ "
                                  "\\/ \\b \\f \\n \\r \\t and \\uXXXX",
                                  (int)c);
            return jsonl_fail(v, OFF(p), NULL,
                              "invalid escape: backslash followed by %s in a string; write a "
                              "backslash as \\\\",
                              jsonl_describe(c, found));
        }
        p++;
        if (JSONL_UNLIKELY(v->capture != CAP_NONE))
            jsonl_capture(v, &decoded, 1);
    }
    goto string;

hex:
    while (v->hex_left) {
        int d;
        if (p == end)
            SUSPEND(ST_HEX);
        d = jsonl_hex(*p);
        if (d < 0)
            return jsonl_fail(v, OFF(p), NULL,
                              "invalid \\u escape: expected 4 hexadecimal digits, found %s",
                              jsonl_describe(*p, found));
        v->hex_value = v->hex_value << 4 | (uint32_t)d;
        v->hex_left--;
        p++;
    }
    {
        uint32_t cp = v->hex_value;
        if (v->high) {
            if (cp < 0xDC00 || cp > 0xDFFF)
                return jsonl_fail(v, OFF(p) - 1, NULL,
                                  "\\u%04X after the high surrogate \\u%04X is not a low surrogate "
                                  "(\\uDC00-\\uDFFF); a surrogate pair must be complete",
                                  (unsigned)cp, (unsigned)v->high);
            cp = 0x10000 + ((v->high - 0xD800) << 10) + (cp - 0xDC00);
            v->high = 0;
        } else if (cp >= 0xD800 && cp <= 0xDBFF) {
            v->high = cp;
            goto surrogate_backslash;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return jsonl_fail(v, OFF(p) - 1, NULL,
                              "\\u%04X is a lone low surrogate; it is valid only right after a "
                              "high surrogate escape (\\uD800-\\uDBFF)",
                              (unsigned)cp);
        }
        if (JSONL_UNLIKELY(v->capture != CAP_NONE))
            jsonl_capture_code_point(v, cp);
    }
    goto string;

surrogate_backslash:
    if (p == end)
        SUSPEND(ST_SURR_BS);
    if (*p != '\\')
        goto lone_high;
    p++;
surrogate_u:
    if (p == end)
        SUSPEND(ST_SURR_U);
    if (*p != 'u')
        goto lone_high;
    p++;
    v->hex_left = 4;
    v->hex_value = 0;
    goto hex;
lone_high:
    return jsonl_fail(v, OFF(p), NULL,
                      "\\u%04X is a lone high surrogate; it must be followed by a low surrogate "
                      "escape (\\uDC00-\\uDFFF)",
                      (unsigned)v->high);

    /* ---- numbers: RFC 8259 §6 ---- */
num_minus:
    if (p == end)
        SUSPEND(ST_NUM_MINUS);
    c = *p;
    if (c == '0') {
        p++;
        goto num_zero;
    }
    if (c - '1' < 9) {
        p++;
        goto num_int;
    }
    return jsonl_fail(v, OFF(p), NULL, "expected a digit after '-', found %s",
                      jsonl_describe(c, found));

num_zero:
    if (p == end)
        SUSPEND(ST_NUM_ZERO);
    c = *p;
    if (c == '.') {
        p++;
        goto num_dot;
    }
    if ((c | 0x20) == 'e') {
        p++;
        goto num_e;
    }
    if (c - '0' < 10)
        return jsonl_fail(v, OFF(p), NULL, "leading zeros are not allowed in numbers");
    goto after_value;

num_int:
    while (p < end && (unsigned)(*p - '0') < 10u)
        p++;
    if (p == end)
        SUSPEND(ST_NUM_INT);
    c = *p;
    if (c == '.') {
        p++;
        goto num_dot;
    }
    if ((c | 0x20) == 'e') {
        p++;
        goto num_e;
    }
    goto after_value;

num_dot:
    if (p == end)
        SUSPEND(ST_NUM_DOT);
    c = *p;
    if (c - '0' >= 10)
        return jsonl_fail(v, OFF(p), NULL,
                          "expected a digit after the decimal point, found %s ('1.' must be "
                          "written as '1.0' or '1')",
                          jsonl_describe(c, found));
    p++;
num_frac:
    while (p < end && (unsigned)(*p - '0') < 10u)
        p++;
    if (p == end)
        SUSPEND(ST_NUM_FRAC);
    if ((*p | 0x20) == 'e') {
        p++;
        goto num_e;
    }
    goto after_value;

num_e:
    if (p == end)
        SUSPEND(ST_NUM_E);
    c = *p;
    if (c == '+' || c == '-') {
        p++;
        goto num_esign;
    }
    if (c - '0' >= 10)
        return jsonl_fail(v, OFF(p), NULL, "expected a digit or a sign in the exponent, found %s",
                          jsonl_describe(c, found));
    p++;
    goto num_exp;

num_esign:
    if (p == end)
        SUSPEND(ST_NUM_ESIGN);
    c = *p;
    if (c - '0' >= 10)
        return jsonl_fail(v, OFF(p), NULL, "expected a digit in the exponent, found %s",
                          jsonl_describe(c, found));
    p++;
num_exp:
    while (p < end && (unsigned)(*p - '0') < 10u)
        p++;
    if (p == end)
        SUSPEND(ST_NUM_EXP);
    goto after_value;

    /* ---- literals: RFC 8259 §3 ---- */
literal_start:
    v->literal_pos = 1;
    p++;
literal:
    while (v->literal[v->literal_pos]) {
        if (p == end)
            SUSPEND(ST_LITERAL);
        if (*p != (unsigned char)v->literal[v->literal_pos])
            return jsonl_fail(v, OFF(p), NULL,
                              "invalid literal: expected '%s', found %s (true, false and null "
                              "are lowercase and unquoted)",
                              v->literal, jsonl_describe(*p, found));
        v->literal_pos++;
        p++;
    }
    goto after_value;
}

#undef OFF
#undef IS_WS
#undef SUSPEND
#undef FLUSH_CAPTURE

/* ---- public API --------------------------------------------------------------- */

struct jsonl_validator *jsonl_validator_new(const struct jsonl_options *options)
{
    struct jsonl_options defaults = {0};
    struct jsonl_validator *v;
    const char *const *urls;
    size_t url_count, longest = 0;

    if (jsonl_have_avx2 < 0) {
#if JSONL_HAVE_AVX2_PATH
        __builtin_cpu_init();
        jsonl_have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#else
        jsonl_have_avx2 = 0;
#endif
    }
    if (!options)
        options = &defaults;
    v = JSONL_CALLOC(1, sizeof *v);
    if (!v)
        return NULL;
    v->line = 1;
    v->max_depth = options->max_depth ? options->max_depth : JSONL_DEFAULT_MAX_DEPTH;
    v->stack = JSONL_CALLOC((size_t)v->max_depth / 8 + 1, 1);
    if (!v->stack)
        goto oom;
    v->batch = options->check_batch != 0;
    if (!v->batch)
        return v;

    urls = options->batch_urls;
    url_count = options->batch_url_count;
    if (!urls || url_count == 0) {
        urls = jsonl_default_batch_urls;
        url_count = jsonl_default_batch_url_count;
    }
    v->urls = JSONL_CALLOC(url_count, sizeof *v->urls);
    v->url_lens = JSONL_CALLOC(url_count, sizeof *v->url_lens);
    if (!v->urls || !v->url_lens)
        goto oom;
    v->url_count = url_count;
    for (size_t i = 0; i < url_count; i++) {
        size_t n = strlen(urls[i]);
        v->urls[i] = JSONL_MALLOC(n + 1);
        if (!v->urls[i])
            goto oom;
        memcpy(v->urls[i], urls[i], n + 1);
        v->url_lens[i] = n;
        if (n > longest)
            longest = n;
    }
    v->first_url = url_count;
    /* enough for any allowed url, for "POST", and for the quoted start of a custom_id */
    v->value_cap = longest > JSONL_ID_INLINE ? longest : JSONL_ID_INLINE;
    v->value = JSONL_MALLOC(v->value_cap);
    v->xxh = XXH3_createState();
    if (!v->value || !v->xxh)
        goto oom;
    v->seed = options->hash_seed;
    jsonl_ids_init(&v->ids, options->spill, options->memory_ids);
    return v;
oom:
    jsonl_validator_free(v);
    return NULL;
}

int jsonl_validator_feed(struct jsonl_validator *v, const void *data, size_t len)
{
    int rc;
    if (v->status)
        return v->status;
    if (v->finished)
        return jsonl_fail(v, v->consumed, NULL, "data fed after the end of input");
    if (len == 0)
        return 0;
    rc = jsonl_scan(v, data, (const unsigned char *)data + len);
    v->consumed += len;
    return rc == -1 ? jsonl_spill_verdict(v, UINT64_MAX) : rc;
}

static int jsonl_finish_scan(struct jsonl_validator *v);

int jsonl_validator_finish(struct jsonl_validator *v)
{
    if (v->status || v->finished)
        return v->status;
    v->finished = 1;
    jsonl_finish_scan(v);
    return jsonl_spill_verdict(v, UINT64_MAX);
}

int jsonl_validator_stop(struct jsonl_validator *v)
{
    if (v->status || v->finished)
        return v->status;
    v->finished = 1;
    /* The cut line never ends: its custom_id, if it went to the store (a
     * problem noted after it settles it early), is not compared, as the set
     * alone would report it only at the line's end. */
    return jsonl_spill_verdict(v, v->line);
}

/* The end of input for the scanner: the state it was left in. */
static int jsonl_finish_scan(struct jsonl_validator *v)
{
    uint64_t at = v->consumed;
    switch (v->state) {
    case ST_LINE:
        if (v->objects == 0) {
            v->line = 1;
            v->line_start = 0;
            return jsonl_fail(v, 0, NULL, "the file contains no JSON objects");
        }
        return 0;
    case ST_AFTER_TOP:
        return jsonl_line_end(v);
    case ST_BOM:
        return jsonl_fail(v, v->bom_offset, NULL,
                          "each line must be a JSON object starting with '{', found byte 0xEF");
    case ST_STRING:
        return jsonl_fail(v, at, NULL, "the file ends inside a string");
    case ST_ESCAPE:
    case ST_HEX:
        return jsonl_fail(v, at, NULL, "the file ends inside an escape sequence");
    case ST_SURR_BS:
    case ST_SURR_U:
        return jsonl_fail(v, at, NULL,
                          "the file ends after the high surrogate \\u%04X; it must be followed "
                          "by a low surrogate escape (\\uDC00-\\uDFFF)",
                          (unsigned)v->high);
    case ST_UTF8:
        return jsonl_fail(v, at, NULL,
                          "invalid UTF-8: truncated sequence, the file ends %u byte%s short after "
                          "lead byte 0x%02X",
                          v->utf8_need, v->utf8_need > 1 ? "s" : "", v->utf8_lead);
    case ST_NUM_MINUS:
    case ST_NUM_DOT:
    case ST_NUM_E:
    case ST_NUM_ESIGN:
        return jsonl_fail(v, at, NULL, "the file ends inside a number");
    case ST_LITERAL:
        return jsonl_fail(v, at, NULL, "the file ends inside the literal '%s'", v->literal);
    default:
        return jsonl_fail(v, at, NULL, "the file ends before the JSON object is closed");
    }
}

const struct jsonl_error *jsonl_validator_error(const struct jsonl_validator *v)
{
    return v->status ? &v->error : NULL;
}

uint64_t jsonl_validator_objects(const struct jsonl_validator *v)
{
    return v->objects;
}

void jsonl_validator_free(struct jsonl_validator *v)
{
    if (!v)
        return;
    jsonl_ids_free(&v->ids);
    if (v->urls)
        for (size_t i = 0; i < v->url_count; i++)
            JSONL_FREE(v->urls[i]);
    JSONL_FREE(v->urls);
    JSONL_FREE(v->url_lens);
    JSONL_FREE(v->value);
    if (v->xxh)
        XXH3_freeState(v->xxh);
    JSONL_FREE(v->stack);
    JSONL_FREE(v);
}
