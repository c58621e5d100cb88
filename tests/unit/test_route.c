/* Unit tests: path decoding, routing and query parsing (src/route.c). */
#include "../../src/route.c"

#include "testlib.h"

static enum route_kind kind_of(const char *path, char *id_out)
{
    struct route r;

    route_match(path, &r);
    if (id_out)
        strcpy(id_out, r.file_id);
    return r.kind;
}

static void test_match(void)
{
    char id[ROUTE_MAX_SEGMENT + 1];
    char long_path[200];

    CHECK(kind_of("/v1/files", NULL) == ROUTE_FILES);
    CHECK(kind_of("/v1/files/", NULL) == ROUTE_FILES);
    CHECK(kind_of("/v1/files//", NULL) == ROUTE_NONE);
    CHECK(kind_of("/v1/filesx", NULL) == ROUTE_NONE);
    CHECK(kind_of("/v1/filesXfile_abc", NULL) == ROUTE_NONE); /* no '/' before the id */
    CHECK(kind_of("/v1/file", NULL) == ROUTE_NONE);
    CHECK(kind_of("/", NULL) == ROUTE_NONE);
    CHECK(kind_of("", NULL) == ROUTE_NONE);
    CHECK(kind_of("/healthz", NULL) == ROUTE_HEALTH);
    CHECK(kind_of("/healthz/", NULL) == ROUTE_HEALTH);
    CHECK(kind_of("/healthzz", NULL) == ROUTE_NONE);
    CHECK(kind_of("/v1/files/file_abc", id) == ROUTE_FILE);
    CHECK_STR(id, "file_abc");
    CHECK(kind_of("/v1/files/file_abc/", id) == ROUTE_FILE);
    CHECK_STR(id, "file_abc");
    CHECK(kind_of("/v1/files/file_abc/content", id) == ROUTE_FILE_CONTENT);
    CHECK_STR(id, "file_abc");
    CHECK(kind_of("/v1/files/file_abc/content/", id) == ROUTE_FILE_CONTENT);
    CHECK(kind_of("/v1/files/file_abc/content//", NULL) == ROUTE_NONE);
    CHECK(kind_of("/v1/files/file_abc/contents", NULL) == ROUTE_NONE);
    CHECK(kind_of("/v1/files/file_abc/x", NULL) == ROUTE_NONE);
    CHECK(kind_of("/v1/files//content", NULL) == ROUTE_NONE);
    /* Segment at the limit keeps its id; one past it is no id (a 404 later). */
    strcpy(long_path, "/v1/files/");
    memset(long_path + 10, 'a', ROUTE_MAX_SEGMENT);
    long_path[10 + ROUTE_MAX_SEGMENT] = '\0';
    CHECK(kind_of(long_path, id) == ROUTE_FILE && strlen(id) == ROUTE_MAX_SEGMENT);
    strcat(long_path, "a");
    CHECK(kind_of(long_path, id) == ROUTE_FILE && id[0] == '\0');
}

static void test_decode_path(void)
{
    char out[64];
    const char *query;

    CHECK(route_decode_path("/v1/files?limit=2", out, sizeof out, &query) == 9);
    CHECK_STR(out, "/v1/files");
    CHECK_STR(query, "limit=2");
    CHECK(route_decode_path("/v1/%66iles", out, sizeof out, &query) == 9);
    CHECK_STR(out, "/v1/files");
    CHECK_STR(query, "");
    CHECK(route_decode_path("/a%2fb%2Fc", out, sizeof out, &query) == 6); /* 'f' and 'F' */
    CHECK_STR(out, "/a/b/c");
    CHECK(route_decode_path("/a+b", out, sizeof out, &query) == 4);
    CHECK_STR(out, "/a+b"); /* '+' is literal in a path */
    CHECK(route_decode_path("/%zz", out, sizeof out, &query) == -1);
    CHECK(route_decode_path("/%4", out, sizeof out, &query) == -1);
    CHECK(route_decode_path("/%", out, sizeof out, &query) == -1);
    CHECK(route_decode_path("/%00", out, sizeof out, &query) == -1);
    /* Absolute form (RFC 9112 §3.2.2): the path and query after the authority. */
    CHECK(route_decode_path("http://127.0.0.1:8080/v1/files?limit=2", out, sizeof out, &query) ==
          9);
    CHECK_STR(out, "/v1/files");
    CHECK_STR(query, "limit=2");
    CHECK(route_decode_path("HTTPS://h/v1/%66iles", out, sizeof out, &query) == 9);
    CHECK_STR(out, "/v1/files");
    CHECK(route_decode_path("HTTP://h/v1/files?x=1", out, sizeof out, &query) == 9);
    CHECK_STR(out, "/v1/files"); /* the scheme is case-insensitive (RFC 3986 §3.1) */
    CHECK_STR(query, "x=1");
    CHECK(route_decode_path("http://h?x=1", out, sizeof out, &query) == 0);
    CHECK_STR(query, "x=1");
    CHECK(route_decode_path("http:/v1/files", out, sizeof out, &query) == 14); /* not absolute */
    /* Length limit: out_size - 1 bytes fit, one more does not. */
    CHECK(route_decode_path("/abcdefg", out, 9, &query) == 8);
    CHECK(route_decode_path("/abcdefgh", out, 9, &query) == ROUTE_TOO_LONG);
    CHECK_STR(out, "/abcdefg"); /* what fitted: a too-long path routes by its start */
    CHECK(route_decode_path("/abc%zzefgh", out, 9, &query) == -1);
}

static void test_query(void)
{
    char key[8], value[8];
    const char *cursor = "a=1&&b=x%20y+z&c&=v&";

    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == 1);
    CHECK_STR(key, "a");
    CHECK_STR(value, "1");
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == 1);
    CHECK_STR(key, "b");
    CHECK_STR(value, "x y z");
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == 1);
    CHECK_STR(key, "c");
    CHECK_STR(value, "");
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == 1);
    CHECK_STR(key, "");
    CHECK_STR(value, "v");
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == 0);
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == 0);

    cursor = "k=%G1&next=1";
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == -1);
    CHECK_STR(key, "k");
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == 1);
    CHECK_STR(key, "next");
    /* A value of value_size - 1 bytes fits; one more is malformed. */
    cursor = "k=1234567";
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == 1);
    cursor = "k=12345678";
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == -1);
    cursor = "k=%00";
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == -1);
    /* A malformed pair leaves both buffers NUL-terminated (found by fuzz_route:
     * a key longer than its buffer was left unterminated, then compared). */
    memset(key, 'x', sizeof key);
    memset(value, 'y', sizeof value);
    cursor = "a_key_far_too_long=1";
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == -1);
    CHECK(memchr(key, '\0', sizeof key) != NULL && memchr(value, '\0', sizeof value) != NULL);
    memset(key, 'x', sizeof key);
    cursor = "ab%zz=1";
    CHECK(route_query_next(&cursor, key, sizeof key, value, sizeof value) == -1);
    CHECK_STR(key, "ab");
}

int main(void)
{
    test_match();
    test_decode_path();
    test_query();
    TEST_MAIN_END();
}
