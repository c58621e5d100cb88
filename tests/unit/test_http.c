/* Unit tests: the pure parts of the HTTP glue (src/http.c): Range and
 * If-None-Match, and the per-request memory of cJSON. */
#include "../../src/http.c"

#include "testlib.h"

static int range(const char *header, int64_t size, int64_t *first, int64_t *last)
{
    *first = *last = -7;
    return http_parse_range(header, size, first, last);
}

static void test_range(void)
{
    int64_t a, b;

    CHECK(range(NULL, 100, &a, &b) == 0);
    CHECK(range("bytes=0-9", 100, &a, &b) == 1 && a == 0 && b == 9);
    CHECK(range("bytes=10-", 100, &a, &b) == 1 && a == 10 && b == 99);
    CHECK(range("bytes=-10", 100, &a, &b) == 1 && a == 90 && b == 99);
    CHECK(range("bytes=-1000", 100, &a, &b) == 1 && a == 0 && b == 99);
    CHECK(range("bytes=50-1000", 100, &a, &b) == 1 && a == 50 && b == 99);
    CHECK(range("bytes=99-99", 100, &a, &b) == 1 && a == 99 && b == 99);
    /* The last byte is satisfiable; one past it is not. */
    CHECK(range("bytes=99-", 100, &a, &b) == 1);
    CHECK(range("bytes=100-", 100, &a, &b) == -1);
    CHECK(range("bytes=100-200", 100, &a, &b) == -1);
    CHECK(range("bytes=-0", 100, &a, &b) == -1);
    CHECK(range("bytes=0-", 0, &a, &b) == -1);
    CHECK(range("bytes=-5", 0, &a, &b) == -1);
    /* Malformed or several ranges: ignored, the whole content is sent. */
    CHECK(range("bytes=9-0", 100, &a, &b) == 0);
    CHECK(range("bytes=0-1,5-6", 100, &a, &b) == 0);
    CHECK(range("bytes=", 100, &a, &b) == 0);
    CHECK(range("bytes=-", 100, &a, &b) == 0);
    CHECK(range("bytes=a-b", 100, &a, &b) == 0);
    CHECK(range("bytes=1-2x", 100, &a, &b) == 0);
    CHECK(range("items=0-1", 100, &a, &b) == 0);
    CHECK(range("bytes=99999999999999999999-", 100, &a, &b) == 0);
    CHECK(range("bytes=0-99999999999999999999", 100, &a, &b) == 0);
    CHECK(range("bytes=9223372036854775807-", 100, &a, &b) == -1);
}

static void test_etag(void)
{
    const char *tag = "\"abc\"";

    CHECK(http_etag_matches(NULL, tag) == 0);
    CHECK(http_etag_matches("\"abc\"", tag) == 1);
    CHECK(http_etag_matches("W/\"abc\"", tag) == 1);
    CHECK(http_etag_matches("\"x\", \"abc\"", tag) == 1);
    CHECK(http_etag_matches("\"x\",\"abc\"", tag) == 1);
    CHECK(http_etag_matches("*", tag) == 1);
    CHECK(http_etag_matches("\"abcd\"", tag) == 0);
    CHECK(http_etag_matches("\"ab\"", tag) == 0);
    CHECK(http_etag_matches("abc", tag) == 0);
    CHECK(http_etag_matches("", tag) == 0);
}

static void test_request_memory(void)
{
    cJSON *first, *again;
    char *text;

    http_request_memory_init();
    first = cJSON_CreateObject();
    cJSON_AddStringToObject(first, "id", "file_x");
    text = cJSON_PrintUnformatted(first);
    CHECK(text && strcmp(text, "{\"id\":\"file_x\"}") == 0);
    cJSON_free(text);
    cJSON_Delete(first); /* a no-op: the memory goes at the reset */
    CHECK(obstack_object_size(&request_memory) == 0 &&
          (char *)obstack_next_free(&request_memory) > (char *)request_memory_start);
    http_request_memory_reset();
    CHECK(obstack_next_free(&request_memory) == request_memory_start);
    again = cJSON_CreateObject(); /* the next request reuses the same memory */
    CHECK((void *)again == (void *)first);
    for (int i = 0; i < 20000; i++) /* past one chunk: more chunks, then back to one */
        cJSON_AddItemToObject(again, "n", cJSON_CreateNull());
    http_request_memory_reset();
    CHECK(obstack_next_free(&request_memory) == request_memory_start);
    CHECK((void *)cJSON_CreateObject() == (void *)first);
    http_request_memory_reset();
}

int main(void)
{
    test_range();
    test_etag();
    test_request_memory();
    TEST_MAIN_END();
}
