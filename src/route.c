#include "route.h"

#include <string.h>
#include <strings.h>

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes in[0..len) into out (NUL-terminated). Returns the length, -1 on a
 * bad escape or a decoded NUL, ROUTE_TOO_LONG on overflow (out then holds what
 * fitted). plus_is_space for form encoding. */
static int percent_decode(const char *in, size_t len, char *out, size_t out_size, int plus_is_space)
{
    size_t written = 0;
    int rc = 0;

    for (size_t i = 0; i < len && rc == 0; i++) {
        char ch = in[i];
        if (ch == '%') {
            int high = i + 2 < len ? hex_value(in[i + 1]) : -1;
            int low = i + 2 < len ? hex_value(in[i + 2]) : -1;
            if (high < 0 || low < 0) {
                rc = -1;
                break;
            }
            ch = (char)(high << 4 | low);
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        if (ch == '\0')
            rc = -1;
        else if (written + 1 >= out_size)
            rc = ROUTE_TOO_LONG;
        else
            out[written++] = ch;
    }
    /* Terminated on failure too: callers may still print or compare what was decoded. */
    out[written] = '\0';
    return rc == 0 ? (int)written : rc;
}

/* RFC 9112 §3.2.2: a target in absolute form ("http://host/path?query", which
 * Apache passes on as REQUEST_URI) is routed by what follows its authority. */
static const char *skip_scheme_and_authority(const char *uri)
{
    size_t scheme = strncasecmp(uri, "http://", 7) == 0    ? 7
                    : strncasecmp(uri, "https://", 8) == 0 ? 8
                                                           : 0;

    return scheme ? uri + scheme + strcspn(uri + scheme, "/?") : uri;
}

int route_decode_path(const char *request_uri, char *out, size_t out_size, const char **query)
{
    const char *mark;

    request_uri = skip_scheme_and_authority(request_uri);
    mark = strchr(request_uri, '?');
    size_t len = mark ? (size_t)(mark - request_uri) : strlen(request_uri);

    *query = mark ? mark + 1 : "";
    return percent_decode(request_uri, len, out, out_size, 0);
}

/* If path starts with prefix, returns what follows it, else NULL. */
static const char *after_prefix(const char *path, const char *prefix)
{
    size_t len = strlen(prefix);

    return strncmp(path, prefix, len) == 0 ? path + len : NULL;
}

static int is_end(const char *rest)
{
    return rest[0] == '\0' || (rest[0] == '/' && rest[1] == '\0');
}

void route_match(const char *path, struct route *out)
{
    const char *rest, *segment, *slash;
    size_t id_len;

    memset(out, 0, sizeof *out);
    out->kind = ROUTE_NONE;
    if ((rest = after_prefix(path, "/healthz")) && is_end(rest)) {
        out->kind = ROUTE_HEALTH;
        return;
    }
    rest = after_prefix(path, "/v1/files");
    if (!rest)
        return;
    if (is_end(rest)) {
        out->kind = ROUTE_FILES;
        return;
    }
    if (rest[0] != '/')
        return;
    segment = rest + 1;
    slash = strchr(segment, '/');
    id_len = slash ? (size_t)(slash - segment) : strlen(segment);
    if (id_len == 0)
        return;
    if (!slash || is_end(slash))
        out->kind = ROUTE_FILE;
    else if ((rest = after_prefix(slash, "/content")) && is_end(rest))
        out->kind = ROUTE_FILE_CONTENT;
    else
        return;
    if (id_len <= ROUTE_MAX_SEGMENT) {
        memcpy(out->file_id, segment, id_len);
        out->file_id[id_len] = '\0';
    }
}

int route_query_next(const char **cursor, char *key, size_t key_size, char *value,
                     size_t value_size)
{
    const char *pair = *cursor, *end, *eq;

    while (*pair == '&')
        pair++;
    if (*pair == '\0') {
        *cursor = pair;
        return 0;
    }
    end = strchr(pair, '&');
    if (!end)
        end = pair + strlen(pair);
    *cursor = end;
    eq = memchr(pair, '=', (size_t)(end - pair));
    key[0] = value[0] = '\0';
    if (percent_decode(pair, (size_t)((eq ? eq : end) - pair), key, key_size, 1) < 0)
        return -1;
    if (eq && percent_decode(eq + 1, (size_t)(end - eq - 1), value, value_size, 1) < 0)
        return -1;
    return 1;
}
