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

/* Makes room for n more bytes and the NUL json_writer_text adds. Returns
 * 0, or -1 (failed). */
static int reserve(struct json_writer *w, size_t n)
{
    size_t cap = w->cap ? w->cap : JSON_WRITER_FIRST_CAP;
    char *text;

    if (w->failed)
        return -1;
    if (n < w->cap - w->len)
        return 0;
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

static void append(struct json_writer *w, const char *data, size_t n)
{
    if (reserve(w, n) != 0)
        return;
    memcpy(w->text + w->len, data, n);
    w->len += n;
}

/* Called before each value or key: the comma between elements. */
static void separate(struct json_writer *w)
{
    uint64_t bit = (uint64_t)1 << (w->depth & 63);

    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth > 0 && (w->has_element & bit))
        append(w, ",", 1);
    w->has_element |= bit;
}

static void begin(struct json_writer *w, char open)
{
    separate(w);
    if (w->depth >= JSON_WRITER_MAX_DEPTH - 1) {
        w->failed = 1;
        return;
    }
    w->depth++;
    w->has_element &= ~((uint64_t)1 << w->depth);
    append(w, &open, 1);
}

static void end(struct json_writer *w, char close)
{
    if (w->depth == 0 || w->after_key) {
        w->failed = 1;
        return;
    }
    w->depth--;
    append(w, &close, 1);
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

/* A string in quotes, then suffix (a NUL-terminated string of at most 2
 * bytes). Room for the worst case is made once, so the loop only copies. */
static void append_quoted(struct json_writer *w, const char *s, const char *suffix)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(s);
    char *out;

    if (len > SIZE_MAX / 8 || reserve(w, 6 * len + 4) != 0) {
        w->failed = 1;
        return;
    }
    out = w->text + w->len;
    *out++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char escape = escape_of[*p];

        if (!escape) {
            *out++ = (char)*p;
            continue;
        }
        *out++ = '\\';
        *out++ = escape;
        if (escape == 'u') {
            memcpy(out, "00", 2);
            out[2] = hex[*p >> 4];
            out[3] = hex[*p & 15];
            out += 4;
        }
    }
    *out++ = '"';
    while (*suffix)
        *out++ = *suffix++;
    w->len = (size_t)(out - w->text);
}

void json_writer_key(struct json_writer *w, const char *name)
{
    separate(w);
    append_quoted(w, name, ":");
    w->after_key = 1;
}

void json_writer_string(struct json_writer *w, const char *s)
{
    separate(w);
    append_quoted(w, s, "");
}

void json_writer_int(struct json_writer *w, int64_t value)
{
    char digits[24];
    char *p = digits + sizeof digits;
    uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;

    separate(w);
    do {
        *--p = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0)
        *--p = '-';
    append(w, p, (size_t)(digits + sizeof digits - p));
}

void json_writer_bool(struct json_writer *w, int value)
{
    separate(w);
    if (value)
        append(w, "true", 4);
    else
        append(w, "false", 5);
}

void json_writer_null(struct json_writer *w)
{
    separate(w);
    append(w, "null", 4);
}

const char *json_writer_text(struct json_writer *w, size_t *len)
{
    if (w->failed || w->depth != 0 || w->after_key || !w->text)
        return NULL;
    w->text[w->len] = '\0'; /* reserve always leaves room for it */
    *len = w->len;
    return w->text;
}
