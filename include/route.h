/* Pure request-target parsing: the path (percent-decoded, RFC 3986 §2.1) to a
 * route, and the query string to key/value pairs. No I/O; fuzzed alone. */
#ifndef ROUTE_H
#define ROUTE_H

#include <stddef.h>

#define ROUTE_MAX_PATH 2048  /* decoded path bytes */
#define ROUTE_MAX_SEGMENT 64 /* a file id segment longer than this is no file id */
#define ROUTE_MAX_QUERY_KEY 64
#define ROUTE_MAX_QUERY_VALUE 256
#define ROUTE_TOO_LONG (-2)

enum route_kind {
    ROUTE_NONE,         /* no such route: 404 */
    ROUTE_FILES,        /* /v1/files */
    ROUTE_FILE,         /* /v1/files/{id} */
    ROUTE_FILE_CONTENT, /* /v1/files/{id}/content */
    ROUTE_HEALTH,       /* /healthz */
};

struct route {
    enum route_kind kind;
    char file_id[ROUTE_MAX_SEGMENT + 1]; /* the {id} segment as sent; "" if too long */
};

/* Splits a REQUEST_URI at '?' and percent-decodes the path into out (NUL-
 * terminated); of an absolute-form URI ("http://host/path") only the path.
 * Returns the decoded length, -1 if the path is malformed (a bad %XX escape,
 * a decoded NUL), or ROUTE_TOO_LONG if it is longer than out_size - 1 (out
 * then holds its start). *query is set to the text after '?' (or to ""). */
int route_decode_path(const char *request_uri, char *out, size_t out_size, const char **query);

/* Maps a decoded path to a route; a single trailing slash is tolerated.
 * Always succeeds (ROUTE_NONE for no match). */
void route_match(const char *path, struct route *out);

/* Reads the next "key=value" pair of a query string (application/x-www-form-
 * urlencoded: '+' is a space, %XX escapes), advancing *cursor. Empty pairs are
 * skipped. Returns 1 with key and value set, 0 at the end, -1 if the pair is
 * malformed (bad escape, decoded NUL, key or value longer than its buffer);
 * *cursor then points past it and key holds what was decoded of the key. */
int route_query_next(const char **cursor, char *key, size_t key_size, char *value,
                     size_t value_size);

#endif
