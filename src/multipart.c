/* multipart — a streaming multipart/form-data parser (RFC 2046 §5.1, RFC 7578).
 *
 * The body is a byte stream; a part ends at the delimiter CRLF "--" boundary.
 * Two observations keep the parser small and fast:
 *  - Bytes held back while a delimiter might be starting (at the end of a
 *    chunk) are always a prefix of the delimiter, so they need no buffer: if
 *    the match fails they are re-delivered from the delimiter itself.
 *  - The delimiter holds exactly one CR (boundary characters exclude it), so a
 *    failed match can only restart at a later CR: a memchr for CR skips the
 *    rest, and part data is passed to the caller straight from its chunk.
 * The body's start and the end of a header block count as "right after CRLF"
 * (RFC 2046: a boundary is recognised at the beginning of a line); those two
 * CRLFs are "virtual": matched, but never data.
 * Decisions about what is accepted are in docs/multipart.md.
 */
#include "multipart.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum multipart_state {
    S_PREAMBLE,       /* before the first boundary: ignored */
    S_AFTER_BOUNDARY, /* just read CRLF "--" boundary */
    S_CLOSE_DASH,     /* read the first '-' of the closing "--" */
    S_PADDING,        /* transport padding (SP / HTAB) after a boundary */
    S_BOUNDARY_LF,    /* the CR that ends a boundary line */
    S_HEADER,         /* in a part's header block */
    S_HEADER_CR,      /* the CR that ends a header line */
    S_DATA,           /* in a part's body */
    S_EPILOGUE,       /* after the closing boundary: ignored */
    S_FINISHED,       /* multipart_parser_finish returned MULTIPART_OK */
    S_DEAD            /* status is not MULTIPART_OK */
};

/* Sets the sticky error and returns MULTIPART_ERROR. */
static int multipart_fail(struct multipart_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int multipart_fail(struct multipart_parser *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
    p->status = MULTIPART_ERROR;
    p->state = S_DEAD;
    return MULTIPART_ERROR;
}

/* A callback asked to stop: returns MULTIPART_ABORTED, sticky. */
static int multipart_abort(struct multipart_parser *p)
{
    snprintf(p->error, sizeof p->error, "the upload was stopped by the server");
    p->status = MULTIPART_ABORTED;
    p->state = S_DEAD;
    return MULTIPART_ABORTED;
}

/* ---- character classes ---- */

/* RFC 7230 §3.2.6 tchar. */
static int multipart_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 2046 §5.1.1 bchars (space included; the caller checks the last one). */
static int multipart_is_bchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("'()+_,-./:=? ", c) != NULL;
}

static int multipart_is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Compares the n bytes at s with the lowercase NUL-terminated word, ignoring
 * ASCII case. Returns 1 if equal. */
static int multipart_ieq(const char *s, size_t n, const char *word)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + ('a' - 'A'));
        if (word[i] == '\0' || c != (unsigned char)word[i])
            return 0;
    }
    return word[n] == '\0';
}

/* RFC 3629 §4: returns 1 if s[0..n) is well-formed UTF-8 (no overlong forms,
 * no surrogates, nothing above U+10FFFF), else 0. */
static int multipart_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t k, len;
        unsigned char lo = 0x80, hi = 0xBF;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += len;
    }
    return 1;
}

/* Returns 1 if the valid UTF-8 s[0..n) holds a control character (Unicode
 * Cc): U+0000-U+001F, U+007F, or U+0080-U+009F, which UTF-8 writes C2 80-C2 9F. */
static int multipart_has_control(const unsigned char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7F)
            return 1;
        if (s[i] == 0xC2 && i + 1 < n && s[i + 1] <= 0x9F)
            return 1;
    }
    return 0;
}

#define MULTIPART_STRINGIFY_(x) #x
#define MULTIPART_STRINGIFY(x) MULTIPART_STRINGIFY_(x)

const char *multipart_name_problem(const char *name, size_t len)
{
    const unsigned char *s = (const unsigned char *)name;

    if (len == 0)
        return "it is empty";
    if (len > MULTIPART_MAX_NAME)
        return "it is longer than " MULTIPART_STRINGIFY(MULTIPART_MAX_NAME) " bytes";
    if (!multipart_utf8_valid(s, len))
        return "it is not valid UTF-8";
    if (multipart_has_control(s, len))
        return "it contains a control character (U+0000-U+001F, U+007F-U+009F)";
    return NULL;
}

/* ---- header parameters (RFC 7231 §3.1.1.1, RFC 6266 §4.1) ---- */

struct multipart_param {
    const char *name;  /* the parameter name, not NUL-terminated */
    size_t name_len;   /* bytes of name */
    const char *value; /* the raw value: token, or quoted-string without the quotes */
    size_t value_len;  /* bytes of value */
    int quoted;        /* value was a quoted-string: quoted-pairs are still in it */
};

/* Reads the next parameter from *s..end: OWS ";" OWS name OWS "=" OWS value,
 * value a token or a quoted-string; empty parameters (";;", a trailing ";")
 * are skipped. Returns 1 and advances *s past it, 0 at the end, or -1 with a
 * reason in *why if the text is not a parameter list. */
static int multipart_param_next(const char **s, const char *end, struct multipart_param *out,
                                const char **why)
{
    const char *c = *s;

    for (;;) {
        while (c < end && multipart_is_ows((unsigned char)*c))
            c++;
        if (c == end) {
            *s = c;
            return 0;
        }
        if (*c != ';') {
            *why = "expected ';' between parameters";
            return -1;
        }
        c++;
        while (c < end && multipart_is_ows((unsigned char)*c))
            c++;
        if (c < end && *c != ';')
            break;
    }
    if (c == end) {
        *s = c;
        return 0;
    }
    out->name = c;
    while (c < end && multipart_is_tchar((unsigned char)*c))
        c++;
    out->name_len = (size_t)(c - out->name);
    if (out->name_len == 0) {
        *why = "a parameter name is not a token";
        return -1;
    }
    while (c < end && multipart_is_ows((unsigned char)*c))
        c++;
    if (c == end || *c != '=') {
        *why = "a parameter has no '=' and value";
        return -1;
    }
    c++;
    while (c < end && multipart_is_ows((unsigned char)*c))
        c++;
    if (c < end && *c == '"') {
        c++;
        out->value = c;
        out->quoted = 1;
        while (c < end && *c != '"') {
            if (*c == '\\' && ++c == end)
                break; /* a backslash at the end: the string is never closed */
            c++;
        }
        if (c >= end) {
            *why = "a quoted parameter value has no closing quote";
            return -1;
        }
        out->value_len = (size_t)(c - out->value);
        c++; /* the closing quote */
    } else {
        out->value = c;
        out->quoted = 0;
        while (c < end && multipart_is_tchar((unsigned char)*c))
            c++;
        out->value_len = (size_t)(c - out->value); /* may be 0: "name=" is an empty value */
    }
    *s = c;
    return 1;
}

/* ---- the boundary ---- */

/* RFC 2046 §5.1.1: boundary := 0*69<bchars> bcharsnospace. Returns NULL if b
 * (len bytes) is a valid boundary, else the reason. */
static const char *multipart_boundary_check(const char *b, size_t len)
{
    size_t i;

    if (len == 0)
        return "the multipart boundary is empty";
    if (len > MULTIPART_MAX_BOUNDARY)
        return "the multipart boundary is longer than 70 characters (RFC 2046)";
    for (i = 0; i < len; i++)
        if (!multipart_is_bchar((unsigned char)b[i]))
            return "the multipart boundary contains a character not allowed by RFC 2046";
    if (b[len - 1] == ' ')
        return "the multipart boundary ends with a space (not allowed by RFC 2046)";
    return NULL;
}

int multipart_boundary_from_content_type(const char *content_type, char *out, size_t out_size,
                                         const char **why)
{
    const char *ignored, *s, *end, *type, *perr = NULL, *bad;
    struct multipart_param prm;
    char value[MULTIPART_MAX_BOUNDARY + 1];
    size_t type_len, sub_len, value_len = 0, i;
    int found = 0, rc;

    if (why == NULL)
        why = &ignored;
    if (content_type == NULL || content_type[0] == '\0') {
        *why = "the request has no Content-Type (multipart/form-data is required)";
        return -1;
    }
    s = content_type;
    end = s + strlen(s);
    while (s < end && multipart_is_ows((unsigned char)*s))
        s++;
    type = s;
    while (s < end && multipart_is_tchar((unsigned char)*s))
        s++;
    type_len = (size_t)(s - type);
    if (s == end || *s != '/' || !multipart_ieq(type, type_len, "multipart")) {
        *why = "the Content-Type is not multipart/form-data";
        return -1;
    }
    type = ++s;
    while (s < end && multipart_is_tchar((unsigned char)*s))
        s++;
    sub_len = (size_t)(s - type);
    if (!multipart_ieq(type, sub_len, "form-data")) {
        *why = "the Content-Type is not multipart/form-data";
        return -1;
    }
    while ((rc = multipart_param_next(&s, end, &prm, &perr)) == 1) {
        if (!multipart_ieq(prm.name, prm.name_len, "boundary"))
            continue;
        if (found) {
            *why = "the Content-Type has more than one boundary parameter";
            return -1;
        }
        found = 1;
        value_len = 0;
        for (i = 0; i < prm.value_len; i++) {
            char c = prm.value[i];
            if (prm.quoted && c == '\\' && i + 1 < prm.value_len)
                c = prm.value[++i]; /* quoted-pair */
            if (value_len < sizeof value)
                value[value_len] = c;
            value_len++;
        }
    }
    if (rc < 0) {
        *why = "the Content-Type parameters are malformed";
        return -1;
    }
    if (!found) {
        *why = "the Content-Type has no boundary parameter";
        return -1;
    }
    bad = multipart_boundary_check(value, value_len);
    if (bad != NULL) {
        *why = bad;
        return -1;
    }
    if (out_size < value_len + 1) {
        *why = "the boundary does not fit the caller's buffer";
        return -1;
    }
    memcpy(out, value, value_len);
    out[value_len] = '\0';
    return 0;
}

int multipart_parser_init(struct multipart_parser *p, const char *boundary,
                          const struct multipart_callbacks *cb, void *ctx)
{
    static const struct multipart_callbacks none;
    const char *bad;
    size_t len;

    memset(p, 0, sizeof *p);
    p->cb = cb ? *cb : none;
    p->ctx = ctx;
    p->state = S_PREAMBLE;
    p->status = MULTIPART_OK;
    if (boundary == NULL) {
        multipart_fail(p, "the multipart boundary is missing");
        return -1;
    }
    len = strnlen(boundary, MULTIPART_MAX_BOUNDARY + 1);
    bad = multipart_boundary_check(boundary, len);
    if (bad != NULL) {
        multipart_fail(p, "%s", bad);
        return -1;
    }
    memcpy(p->delim, "\r\n--", 4);
    memcpy(p->delim + 4, boundary, len);
    p->delim_len = 4 + len;
    p->match = 2; /* the body's start counts as right after CRLF */
    p->match_virtual = 1;
    return 0;
}

/* ---- part headers ---- */

/* Where decoded names go: at most MULTIPART_MAX_NAME bytes, then overflow.
 * With cut set, '/' and '\' start over (what is kept is the basename). */
struct multipart_sink {
    char *buf;    /* MULTIPART_MAX_NAME + 1 bytes */
    size_t len;   /* bytes in buf */
    size_t total; /* bytes put, separators included */
    int overflow; /* more than MULTIPART_MAX_NAME bytes since the last cut */
    int cut;      /* keep only what follows the last '/' or '\' */
};

static void multipart_sink_put(struct multipart_sink *k, unsigned char c)
{
    k->total++;
    if (k->cut && (c == '/' || c == '\\')) {
        k->len = 0;
        k->overflow = 0;
        return;
    }
    if (k->len < MULTIPART_MAX_NAME)
        k->buf[k->len++] = (char)c;
    else
        k->overflow = 1;
}

static int multipart_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a name= or filename= value as browsers and SDKs write it, in one
 * pass over the bytes sent, so nothing decoded is decoded again:
 *  - in a quoted-string, \" -> " and \\ -> \ (RFC 7230 quoted-pair, as httpx
 *    and curl --form-escape send); a backslash before anything else is kept
 *    as it is (old IE sends raw Windows paths: "C:\dir\a.jsonl");
 *  - %22 -> ", %0D -> CR, %0A -> LF (WHATWG HTML form encoding, as browsers,
 *    undici and curl send) and %5C -> \ (the openai Node SDK's streaming
 *    encoder escapes the same four characters); every other '%' is kept.
 * The sink cuts at '/' and '\' after this decoding, so an escaped backslash
 * separates directories too. */
static void multipart_decode_plain(const struct multipart_param *prm, struct multipart_sink *k)
{
    const unsigned char *v = (const unsigned char *)prm->value;
    size_t n = prm->value_len, i;

    for (i = 0; i < n; i++) {
        unsigned char c = v[i];
        if (prm->quoted && c == '\\' && i + 1 < n && (v[i + 1] == '"' || v[i + 1] == '\\')) {
            multipart_sink_put(k, v[++i]);
            continue;
        }
        if (c == '%' && n - i >= 3) {
            unsigned char a = v[i + 1], b = v[i + 2];
            if (a == '2' && b == '2') {
                multipart_sink_put(k, '"');
                i += 2;
                continue;
            }
            if (a == '5' && (b == 'C' || b == 'c')) {
                multipart_sink_put(k, '\\');
                i += 2;
                continue;
            }
            if (a == '0' && (b == 'D' || b == 'd' || b == 'A' || b == 'a')) {
                multipart_sink_put(k, (b == 'D' || b == 'd') ? '\r' : '\n');
                i += 2;
                continue;
            }
        }
        multipart_sink_put(k, c);
    }
}

/* RFC 8187 (RFC 5987) ext-value: charset "'" [language] "'" pct-encoded value;
 * charset UTF-8 or ISO-8859-1 (converted to UTF-8). Returns NULL, or the
 * reason the value is not an ext-value. */
static const char *multipart_decode_ext(const struct multipart_param *prm, struct multipart_sink *k)
{
    const unsigned char *v = (const unsigned char *)prm->value;
    size_t n = prm->value_len, i = 0, cs_len;
    int latin1;

    while (i < n && v[i] != '\'')
        i++;
    if (i == n)
        return "filename* is not charset'language'value (RFC 8187)";
    cs_len = i;
    if (multipart_ieq(prm->value, cs_len, "utf-8"))
        latin1 = 0;
    else if (multipart_ieq(prm->value, cs_len, "iso-8859-1"))
        latin1 = 1;
    else
        return "the filename* charset is neither UTF-8 nor ISO-8859-1";
    for (i++; i < n && v[i] != '\''; i++)
        ; /* the language tag: ignored */
    if (i == n)
        return "filename* is not charset'language'value (RFC 8187)";
    for (i++; i < n; i++) {
        unsigned char c = v[i];
        if (c == '%') {
            int hi = n - i >= 3 ? multipart_hexval(v[i + 1]) : -1;
            int lo = n - i >= 3 ? multipart_hexval(v[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return "filename* has a '%' not followed by two hex digits";
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (latin1 && c >= 0x80) {
            multipart_sink_put(k, (unsigned char)(0xC0 | (c >> 6)));
            multipart_sink_put(k, (unsigned char)(0x80 | (c & 0x3F)));
        } else {
            multipart_sink_put(k, c);
        }
    }
    return NULL;
}

/* Checks a decoded name or filename (what, for the message) of k->len bytes.
 * Returns MULTIPART_OK or fails p. */
static int multipart_name_check(struct multipart_parser *p, const struct multipart_sink *k,
                                const char *what)
{
    const char *why;

    if (k->total == 0)
        return multipart_fail(p, "bad %s: it is empty", what);
    if (k->overflow)
        return multipart_fail(p, "bad %s: it is longer than %d bytes", what, MULTIPART_MAX_NAME);
    if (k->len == 0)
        return multipart_fail(p, "bad %s: nothing follows the last '/' or '\\'", what);
    if ((why = multipart_name_problem(k->buf, k->len)) != NULL)
        return multipart_fail(p, "bad %s: %s", what, why);
    return MULTIPART_OK;
}

/* RFC 7578 §4.2: Content-Disposition: form-data; name="..."[; filename="..."]
 * [; filename*=UTF-8''...]. Fills p->part.name/filename/has_filename.
 * Returns MULTIPART_OK or fails p. */
static int multipart_disposition(struct multipart_parser *p, const char *v, size_t n)
{
    const char *s = v, *end = v + n, *why = NULL, *type;
    struct multipart_param prm, name = {0}, file = {0}, ext = {0};
    struct multipart_sink k;
    int have_name = 0, have_file = 0, have_ext = 0, rc;

    type = s;
    while (s < end && multipart_is_tchar((unsigned char)*s))
        s++;
    if (!multipart_ieq(type, (size_t)(s - type), "form-data"))
        return multipart_fail(p, "Content-Disposition is not form-data (RFC 7578)");
    while ((rc = multipart_param_next(&s, end, &prm, &why)) == 1) {
        if (multipart_ieq(prm.name, prm.name_len, "name")) {
            if (have_name++)
                return multipart_fail(p, "Content-Disposition has two name parameters");
            name = prm;
        } else if (multipart_ieq(prm.name, prm.name_len, "filename")) {
            if (have_file++)
                return multipart_fail(p, "Content-Disposition has two filename parameters");
            file = prm;
        } else if (multipart_ieq(prm.name, prm.name_len, "filename*")) {
            if (have_ext++)
                return multipart_fail(p, "Content-Disposition has two filename* parameters");
            ext = prm;
        }
    }
    if (rc < 0)
        return multipart_fail(p, "malformed Content-Disposition: %s", why);
    if (!have_name)
        return multipart_fail(p, "Content-Disposition has no name parameter");

    k = (struct multipart_sink){p->part.name, 0, 0, 0, 0};
    multipart_decode_plain(&name, &k);
    if (multipart_name_check(p, &k, "field name") != MULTIPART_OK)
        return MULTIPART_ERROR;
    p->part.name[k.len] = '\0';

    if (!have_file && !have_ext)
        return MULTIPART_OK;
    p->part.has_filename = 1;
    k = (struct multipart_sink){p->part.filename, 0, 0, 0, 1};
    if (have_ext) { /* RFC 6266 §4.3: filename* wins over filename */
        why = multipart_decode_ext(&ext, &k);
        if (why != NULL)
            return multipart_fail(p, "bad filename: %s", why);
    } else {
        multipart_decode_plain(&file, &k);
    }
    rc = multipart_name_check(p, &k, "filename");
    if (rc != MULTIPART_OK)
        return rc;
    p->part.filename[k.len] = '\0';
    if (strcmp(p->part.filename, ".") == 0 || strcmp(p->part.filename, "..") == 0)
        return multipart_fail(p, "bad filename: \"%s\" is not a file name", p->part.filename);
    return MULTIPART_OK;
}

/* One complete header line (without its CRLF) in p->line. RFC 7230 §3.2:
 * field-name ":" OWS field-value OWS; names are case-insensitive.
 * Returns MULTIPART_OK or fails p. */
static int multipart_header_line(struct multipart_parser *p)
{
    const char *line = p->line, *colon, *v, *vend;
    size_t len = p->line_len, name_len, i;

    if (len >= p->delim_len - 2 && memcmp(line, p->delim + 2, p->delim_len - 2) == 0)
        return multipart_fail(p, "a boundary inside a part's header block "
                                 "(the blank line after the part's headers is missing)");
    colon = memchr(line, ':', len);
    if (colon == NULL)
        return multipart_fail(p, "part header without a colon");
    name_len = (size_t)(colon - line);
    if (name_len == 0)
        return multipart_fail(p, "part header with an empty name");
    for (i = 0; i < name_len; i++)
        if (!multipart_is_tchar((unsigned char)line[i]))
            return multipart_fail(p, "invalid character in a part header name");
    v = colon + 1;
    vend = line + len;
    while (v < vend && multipart_is_ows((unsigned char)*v))
        v++;
    while (vend > v && multipart_is_ows((unsigned char)vend[-1]))
        vend--;

    if (multipart_ieq(line, name_len, "content-disposition")) {
        if (p->seen_disposition++)
            return multipart_fail(p, "a part has two Content-Disposition headers");
        return multipart_disposition(p, v, (size_t)(vend - v));
    }
    if (multipart_ieq(line, name_len, "content-type")) {
        if (p->seen_content_type++)
            return multipart_fail(p, "a part has two Content-Type headers");
        if ((size_t)(vend - v) > MULTIPART_MAX_CONTENT_TYPE)
            return multipart_fail(p, "a part's Content-Type is longer than %d bytes",
                                  MULTIPART_MAX_CONTENT_TYPE);
        memcpy(p->part.content_type, v, (size_t)(vend - v));
        p->part.content_type[vend - v] = '\0';
    }
    return MULTIPART_OK; /* other headers are ignored */
}

/* The blank line: the header block is complete. Returns a status. */
static int multipart_headers_end(struct multipart_parser *p)
{
    if (!p->seen_disposition)
        return multipart_fail(p, "a part has no Content-Disposition header");
    p->state = S_DATA;
    p->field_bytes = 0;
    p->match = 2; /* the blank line's CRLF may be the delimiter's: empty data */
    p->match_virtual = 1;
    if (p->cb.on_part_begin && p->cb.on_part_begin(p->ctx, &p->part))
        return multipart_abort(p);
    return MULTIPART_OK;
}

/* One byte of a header block. RFC 7230 §3.2 lines, CRLF only; no obsolete
 * folding; no control characters but HTAB. Returns a status. */
static int multipart_header_byte(struct multipart_parser *p, unsigned char c)
{
    if (++p->header_bytes > MULTIPART_MAX_HEADER_BLOCK)
        return multipart_fail(p, "a part's header block is larger than %d bytes",
                              MULTIPART_MAX_HEADER_BLOCK);
    if (p->state == S_HEADER_CR) {
        if (c != '\n')
            return multipart_fail(p, "CR without LF in a part header");
        p->state = S_HEADER;
        if (p->line_len == 0)
            return multipart_headers_end(p);
        if (multipart_header_line(p) != MULTIPART_OK)
            return MULTIPART_ERROR;
        p->line_len = 0;
        return MULTIPART_OK;
    }
    if (c == '\r') {
        p->state = S_HEADER_CR;
        return MULTIPART_OK;
    }
    if (c == '\n')
        return multipart_fail(p, "a part header line ends with LF without CR (CRLF is required)");
    if (c == '\0')
        return multipart_fail(p, "NUL byte in a part header");
    if ((c < 0x20 && c != '\t') || c == 0x7F)
        return multipart_fail(p, "control character in a part header");
    if (p->line_len == 0 && multipart_is_ows(c))
        return multipart_fail(p, "a part header line starts with whitespace "
                                 "(obsolete line folding is not allowed)");
    p->line[p->line_len++] = (char)c; /* line_len < header_bytes <= the buffer's size */
    return MULTIPART_OK;
}

/* ---- part data ---- */

/* Passes n bytes of the current part's body to the caller (nothing in the
 * preamble), enforcing MULTIPART_MAX_FIELD on parts without a filename: the
 * first MULTIPART_MAX_FIELD bytes are delivered, then the error. */
static int multipart_emit(struct multipart_parser *p, const char *d, size_t n)
{
    if (n == 0 || p->state == S_PREAMBLE)
        return MULTIPART_OK;
    if (!p->part.has_filename && n > MULTIPART_MAX_FIELD - p->field_bytes) {
        size_t room = (size_t)(MULTIPART_MAX_FIELD - p->field_bytes);
        if (room > 0 && p->cb.on_part_data && p->cb.on_part_data(p->ctx, d, room))
            return multipart_abort(p);
        p->field_bytes += room;
        return multipart_fail(p, "the value of field \"%s\" is longer than %d bytes", p->part.name,
                              MULTIPART_MAX_FIELD);
    }
    p->field_bytes += n;
    if (p->cb.on_part_data && p->cb.on_part_data(p->ctx, d, n))
        return multipart_abort(p);
    return MULTIPART_OK;
}

/* Looks for the delimiter in buf[0..n) (preamble or part data), delivering
 * what precedes it. Sets *used to the bytes consumed and *found to 1 if they
 * end with the delimiter. A prefix of the delimiter at the end of buf is
 * consumed and held back in p->match. Returns a status. */
static int multipart_scan(struct multipart_parser *p, const char *buf, size_t n, size_t *used,
                          int *found)
{
    const char *d = p->delim;
    size_t dl = p->delim_len, i = 0, start;

    *found = 0;
    if (p->match > 0) {
        size_t held, skip;
        while (i < n && p->match < dl && buf[i] == d[p->match]) {
            p->match++;
            i++;
        }
        if (p->match == dl) {
            p->match = 0;
            p->match_virtual = 0;
            *found = 1;
            *used = i;
            return MULTIPART_OK;
        }
        if (i == n) {
            *used = n;
            return MULTIPART_OK;
        }
        /* Mismatch: what was held is data. It holds no CR but its first
         * byte, so no delimiter starts inside it: resume at buf[i]. */
        held = p->match;
        skip = p->match_virtual ? 2 : 0;
        p->match = 0;
        p->match_virtual = 0;
        if (multipart_emit(p, d + skip, held - skip) != MULTIPART_OK)
            return p->status;
    }
    start = i;
    while (i < n) {
        const char *cr = memchr(buf + i, '\r', n - i);
        size_t j, avail;
        if (cr == NULL)
            break;
        j = (size_t)(cr - buf);
        avail = n - j;
        if (avail >= dl ? memcmp(cr, d, dl) == 0 : memcmp(cr, d, avail) == 0) {
            if (multipart_emit(p, buf + start, j - start) != MULTIPART_OK)
                return p->status;
            if (avail >= dl) {
                *found = 1;
                *used = j + dl;
            } else {
                p->match = avail;
                *used = n;
            }
            return MULTIPART_OK;
        }
        i = j + 1;
    }
    *used = n;
    return multipart_emit(p, buf + start, n - start);
}

/* Reports the end of the part before a boundary line, once that line has
 * proved to be a boundary: a malformed line is a multipart error, not the end
 * of a (then truncated) part. Returns a status. */
static int multipart_end_part(struct multipart_parser *p)
{
    if (!p->end_pending)
        return MULTIPART_OK;
    p->end_pending = 0;
    if (p->cb.on_part_end && p->cb.on_part_end(p->ctx))
        return multipart_abort(p);
    return MULTIPART_OK;
}

/* One byte of a boundary line, after CRLF "--" boundary: RFC 2046 §5.1.1
 * ("--" for the last one) transport-padding CRLF. Returns a status. */
static int multipart_boundary_byte(struct multipart_parser *p, unsigned char c)
{
    switch (p->state) {
    case S_AFTER_BOUNDARY:
        if (c == '-') {
            p->state = S_CLOSE_DASH;
            return MULTIPART_OK;
        }
        /* fall through */
    case S_PADDING:
        if (multipart_is_ows(c)) {
            p->state = S_PADDING;
            return MULTIPART_OK;
        }
        if (c == '\r') {
            p->state = S_BOUNDARY_LF;
            return MULTIPART_OK;
        }
        return multipart_fail(p, "unexpected characters after a boundary "
                                 "(a boundary line is the boundary, optional spaces, CRLF)");
    case S_CLOSE_DASH:
        if (c != '-')
            return multipart_fail(p, "unexpected characters after a boundary "
                                     "(the closing boundary ends with \"--\")");
        if (p->parts == 0)
            return multipart_fail(p, "the body has no parts: its first boundary is the "
                                     "closing one");
        p->state = S_EPILOGUE;
        return multipart_end_part(p);
    case S_BOUNDARY_LF:
        if (c != '\n')
            return multipart_fail(p, "a boundary line does not end with CRLF");
        if (multipart_end_part(p) != MULTIPART_OK)
            return p->status;
        if (p->parts >= MULTIPART_MAX_PARTS)
            return multipart_fail(p, "too many parts: at most %d are allowed", MULTIPART_MAX_PARTS);
        p->parts++;
        memset(&p->part, 0, sizeof p->part);
        p->seen_disposition = 0;
        p->seen_content_type = 0;
        p->header_bytes = 0;
        p->line_len = 0;
        p->state = S_HEADER;
        return MULTIPART_OK;
    default:
        return multipart_fail(p, "internal error: bad parser state");
    }
}

int multipart_parser_feed(struct multipart_parser *p, const char *data, size_t len)
{
    size_t i = 0;

    if (p->status != MULTIPART_OK)
        return p->status;
    if (p->state == S_FINISHED)
        return multipart_fail(p, "data fed after the end of the body");
    if (len > 0)
        p->fed = 1;
    while (i < len) {
        switch (p->state) {
        case S_PREAMBLE:
        case S_DATA: {
            size_t used = 0;
            int found, was_data = p->state == S_DATA;
            if (multipart_scan(p, data + i, len - i, &used, &found) != MULTIPART_OK)
                return p->status;
            i += used;
            if (found) {
                p->state = S_AFTER_BOUNDARY;
                p->end_pending = was_data;
            }
            break;
        }
        case S_HEADER:
        case S_HEADER_CR:
            if (multipart_header_byte(p, (unsigned char)data[i++]) != MULTIPART_OK)
                return p->status;
            break;
        case S_EPILOGUE:
            i = len;
            break;
        default:
            if (multipart_boundary_byte(p, (unsigned char)data[i++]) != MULTIPART_OK)
                return p->status;
            break;
        }
    }
    return MULTIPART_OK;
}

int multipart_parser_finish(struct multipart_parser *p)
{
    if (p->status != MULTIPART_OK)
        return p->status;
    switch (p->state) {
    case S_EPILOGUE:
    case S_FINISHED:
        p->state = S_FINISHED;
        return MULTIPART_OK;
    case S_PREAMBLE:
        if (!p->fed)
            return multipart_fail(p, "the body is empty");
        return multipart_fail(p, "no boundary found: the body never contains the boundary "
                                 "given in the Content-Type");
    case S_DATA:
        return multipart_fail(p, "closing boundary missing: the body ended inside a part");
    case S_HEADER:
    case S_HEADER_CR:
        return multipart_fail(p, "closing boundary missing: the body ended inside a part's "
                                 "headers");
    default:
        return multipart_fail(p, "closing boundary missing: the body ended in a boundary line");
    }
}

const char *multipart_parser_error(const struct multipart_parser *p)
{
    return p->error;
}
