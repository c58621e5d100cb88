#include "json_writer.h"

#include <stdlib.h>
#include <string.h>

#define JSON_WRITER_FIRST_CAP (16 << 10)

void json_writer_init(struct json_writer *w)
{
    memset(w, 0, sizeof *w);
}

void json_writer_free(struct json_writer *w)
{
    free(w->text);
    json_writer_init(w);
}

/* Grows the buffer so that n more bytes and a NUL fit. Returns 0, or -1
 * (failed). */
static int grow(struct json_writer *w, size_t n)
{
    size_t cap = w->cap ? w->cap : JSON_WRITER_FIRST_CAP;
    char *text;

    while (n >= cap - w->len) {
        if (cap > SIZE_MAX / 2 || n > SIZE_MAX / 2) {
            w->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    text = realloc(w->text, cap);
    if (!text) {
        w->failed = 1;
        return -1;
    }
    w->text = text;
    w->cap = cap;
    return 0;
}

/* Starts the next element (a value, or a member's key when key is set):
 * makes room for n bytes and the comma before it (when one is due) and the
 * NUL json_writer_text adds, writes the comma, and returns where the element
 * goes; NULL once failed. Misuse fails the writer: a key outside an object or
 * after a key, a member value without its key, a second top-level value. */
static inline char *element(struct json_writer *w, size_t n, int key)
{
    uint64_t bit = (uint64_t)1 << w->depth;
    int in_object = (w->in_object & bit) != 0;
    int comma = !w->after_key && (w->has_element & bit);
    char *out;

    if (key ? !in_object || w->after_key : in_object != w->after_key || (w->depth == 0 && comma))
        w->failed = 1;
    if (w->failed || (n + 1 >= w->cap - w->len && grow(w, n + 1) != 0))
        return NULL;
    w->has_element |= bit;
    w->after_key = 0;
    out = w->text + w->len;
    if (comma && w->depth > 0)
        *out++ = ',';
    return out;
}

static void element_end(struct json_writer *w, const char *out)
{
    w->len = (size_t)(out - w->text);
}

static void append_element(struct json_writer *w, const char *data, size_t n)
{
    char *out = element(w, n, 0);

    if (out) {
        memcpy(out, data, n);
        element_end(w, out + n);
    }
}

static void begin(struct json_writer *w, char open)
{
    uint64_t inner;

    if (w->depth >= JSON_WRITER_MAX_DEPTH - 1) {
        w->failed = 1;
        return;
    }
    append_element(w, &open, 1);
    w->depth++;
    inner = (uint64_t)1 << w->depth;
    w->has_element &= ~inner;
    if (open == '{')
        w->in_object |= inner;
    else
        w->in_object &= ~inner;
}

/* Closes the innermost container, which must be the kind close ends. */
static void end(struct json_writer *w, char close)
{
    int in_object = (w->in_object >> w->depth) & 1;

    if (w->depth == 0 || w->after_key || w->failed || in_object != (close == '}')) {
        w->failed = 1;
        return;
    }
    if (w->len + 1 >= w->cap && grow(w, 1) != 0)
        return;
    w->depth--;
    w->text[w->len++] = close;
}

void json_writer_begin_object(struct json_writer *w)
{
    begin(w, '{');
}

void json_writer_end_object(struct json_writer *w)
{
    end(w, '}');
}

void json_writer_begin_array(struct json_writer *w)
{
    begin(w, '[');
}

void json_writer_end_array(struct json_writer *w)
{
    end(w, ']');
}

/* For each byte, the letter that follows the backslash in its escape (u:
 * \u00XX), or 0 if it stands for itself: the escapes cJSON writes, the short
 * forms where RFC 8259 §7 has them. */
/* clang-format off */
static const char escape_of[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    ['"'] = '"', ['\\'] = '\\',
};
/* clang-format on */

#define BYTES_ONES 0x0101010101010101ULL
#define BYTES_HIGHS 0x8080808080808080ULL

/* Nonzero when one of the 8 bytes in word needs an escape (< 0x20, '"' or
 * '\\'). Exact for "any": a borrow only runs past a byte that matched. */
static inline uint64_t word_needs_escape(uint64_t word)
{
    uint64_t quote = word ^ (BYTES_ONES * '"');
    uint64_t backslash = word ^ (BYTES_ONES * '\\');

    return (((word - BYTES_ONES * 0x20) & ~word) | ((quote - BYTES_ONES) & ~quote) |
            ((backslash - BYTES_ONES) & ~backslash)) &
           BYTES_HIGHS;
}

/* Writes the escape of byte c (\", \\, \n, ... or \u00XX). */
static char *write_escape(char *out, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char escape = escape_of[c];

    *out++ = '\\';
    *out++ = escape;
    if (escape == 'u') {
        memcpy(out, "00", 2);
        out[2] = hex[c >> 4];
        out[3] = hex[c & 15];
        out += 4;
    }
    return out;
}

/* Writes byte c as it stands in a string: as is, inline (almost every byte),
 * or escaped. */
static inline char *write_byte(char *out, unsigned char c)
{
    if (__builtin_expect(escape_of[c] != 0, 0))
        return write_escape(out, c);
    *out = (char)c;
    return out + 1;
}

/* Writes s (len bytes) in quotes at out, escaped; returns the end. The
 * caller made room for the worst case (6 * len + 2), so the loop only copies:
 * 8 bytes at a time where none needs an escape (most strings are ids, names
 * and keys). */
static char *copy_quoted(char *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    *out++ = '"';
    if (len < 8) { /* most keys and values: byte by byte is cheapest */
        while (p < end)
            out = write_byte(out, *p++);
        *out++ = '"';
        return out;
    }
    while (p < end) {
        size_t left = (size_t)(end - p);
        /* Past the last whole word, the string's last 8 bytes: those before
         * p were plain (else the word is not), so copied as is. */
        size_t back = left >= 8 ? 0 : 8 - left;
        uint64_t word;

        memcpy(&word, p - back, 8);
        if (!word_needs_escape(word)) {
            memcpy(out - back, &word, 8);
            out += 8 - back;
            p += 8 - back;
        } else {
            out = write_byte(out, *p++);
        }
    }
    *out++ = '"';
    return out;
}

/* Room for len bytes of string escaped and quoted, or SIZE_MAX (too long). */
static size_t quoted_room(size_t len)
{
    return len > SIZE_MAX / 8 ? SIZE_MAX : 6 * len + 2;
}

/* Starts a whole member: its key, quoted, and the ':' in one element with
 * room for value_room more bytes; returns where the value goes, or NULL. */
static char *member(struct json_writer *w, const char *key, size_t value_room)
{
    size_t len = strlen(key), room = quoted_room(len);
    char *out = room < SIZE_MAX / 4 && value_room < SIZE_MAX / 4
                    ? element(w, room + 1 + value_room, 1)
                    : NULL;

    if (!out) {
        w->failed = 1;
        return NULL;
    }
    out = copy_quoted(out, key, len);
    *out++ = ':';
    return out;
}

void json_writer_key(struct json_writer *w, const char *name)
{
    char *out = member(w, name, 0);

    if (out) {
        element_end(w, out);
        w->after_key = 1;
    }
}

void json_writer_string(struct json_writer *w, const char *s)
{
    size_t len = strlen(s), room = quoted_room(len);
    char *out = room < SIZE_MAX / 4 ? element(w, room, 0) : NULL;

    if (!out) {
        w->failed = 1;
        return;
    }
    element_end(w, copy_quoted(out, s, len));
}

/* The decimal digits of value, at the end of digits[24]; returns the first. */
static char *format_int(char digits[24], int64_t value)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";
    char *p = digits + 24;
    uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;

    /* Two digits per division: a timestamp takes five, not ten. */
    for (; magnitude >= 100; magnitude /= 100) {
        p -= 2;
        memcpy(p, pairs + 2 * (magnitude % 100), 2);
    }
    if (magnitude >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * magnitude, 2);
    } else {
        *--p = (char)('0' + magnitude);
    }
    if (value < 0)
        *--p = '-';
    return p;
}

void json_writer_int(struct json_writer *w, int64_t value)
{
    char digits[24];
    char *p = format_int(digits, value);

    append_element(w, p, (size_t)(digits + sizeof digits - p));
}

void json_writer_member_string(struct json_writer *w, const char *key, const char *value)
{
    size_t len = strlen(value);
    char *out = member(w, key, quoted_room(len));

    if (out)
        element_end(w, copy_quoted(out, value, len));
}

/* A whole member whose value is text already in JSON (a number, null). */
static void append_member(struct json_writer *w, const char *key, const char *text, size_t n)
{
    char *out = member(w, key, n);

    if (out) {
        memcpy(out, text, n);
        element_end(w, out + n);
    }
}

void json_writer_member_int(struct json_writer *w, const char *key, int64_t value)
{
    char digits[24];
    char *p = format_int(digits, value);

    append_member(w, key, p, (size_t)(digits + sizeof digits - p));
}

void json_writer_member_null(struct json_writer *w, const char *key)
{
    append_member(w, key, "null", 4);
}

void json_writer_bool(struct json_writer *w, int value)
{
    if (value)
        append_element(w, "true", 4);
    else
        append_element(w, "false", 5);
}

void json_writer_null(struct json_writer *w)
{
    append_element(w, "null", 4);
}

const char *json_writer_text(struct json_writer *w, size_t *len)
{
    if (w->failed || w->depth != 0 || w->after_key || !w->text)
        return NULL;
    w->text[w->len] = '\0'; /* every write left room for it */
    *len = w->len;
    return w->text;
}
