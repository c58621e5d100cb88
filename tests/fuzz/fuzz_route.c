/* libFuzzer target: request-target parsing (src/route.c) and the Range header
 * parser. Input: a REQUEST_URI; the same bytes are also tried as a Range value.
 * Invariants: decoding never writes past its buffer, a route's file id is a
 * prefix-free segment of the decoded path, query pairs consume the query. */
#include "../../src/route.c"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int http_parse_range(const char *header, int64_t size, int64_t *first, int64_t *last);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *uri = malloc(size + 1), path[ROUTE_MAX_PATH], key[ROUTE_MAX_QUERY_KEY],
         value[ROUTE_MAX_QUERY_VALUE];
    const char *query, *cursor;
    struct route route;
    int len, rc, pairs = 0;
    int64_t first, last;

    if (!uri)
        return 0;
    memcpy(uri, data, size);
    uri[size] = '\0';
    len = route_decode_path(uri, path, sizeof path, &query);
    assert(len >= -1 || (len == ROUTE_TOO_LONG && strlen(path) == sizeof path - 1));
    if (len >= 0 || len == ROUTE_TOO_LONG) {
        assert(len < 0 || (size_t)len == strlen(path));
        route_match(path, &route);
        if (route.kind == ROUTE_FILE || route.kind == ROUTE_FILE_CONTENT) {
            assert(strlen(route.file_id) <= ROUTE_MAX_SEGMENT);
            assert(strstr(path, route.file_id) != NULL);
            assert(!strchr(route.file_id, '/'));
        }
    }
    cursor = query;
    while ((rc = route_query_next(&cursor, key, sizeof key, value, sizeof value)) != 0) {
        assert(strlen(key) < sizeof key && strlen(value) < sizeof value);
        assert(cursor >= query && cursor <= query + strlen(query));
        assert(++pairs <= (int)size + 1); /* always advances */
    }
    for (int64_t total = 0; total < 3; total++) {
        int64_t sizes[] = {0, 1, 1000};
        rc = http_parse_range(uri, sizes[total], &first, &last);
        if (rc == 1)
            assert(first >= 0 && first <= last && last < sizes[total]);
    }
    free(uri);
    return 0;
}
