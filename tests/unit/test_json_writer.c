/* Unit tests: the JSON writer (src/json_writer.c). Its text must be byte for
 * byte what cJSON_PrintUnformatted prints for the same document, so every
 * document here is built both ways and compared: every byte value in a
 * string, random strings, integers at their limits, nesting, and the misuse
 * and depth limit that make json_writer_text return NULL. */
#include "../../src/json_writer.c"

#include "testlib.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>

/* Compares the writer's text with cJSON's for the same document; frees both. */
static void check_same(struct json_writer *w, cJSON *expected, const char *what)
{
    char *want = cJSON_PrintUnformatted(expected);
    size_t len = 0;
    const char *got = json_writer_text(w, &len);

    CHECKF(got && want && len == strlen(want) && !strcmp(got, want), "%s: got %s, want %s", what,
           got ? got : "(null)", want ? want : "(null)");
    free(want);
    cJSON_Delete(expected);
    json_writer_free(w);
}

static void check_one_string(const char *s, const char *what)
{
    struct json_writer w;
    cJSON *expected = cJSON_CreateObject();

    /* as a key and as a value, twice: by json_writer_key then the value, and
     * as one member */
    cJSON_AddStringToObject(expected, s, s);
    cJSON_AddStringToObject(expected, s, s);
    json_writer_init(&w);
    json_writer_begin_object(&w);
    json_writer_key(&w, s);
    json_writer_string(&w, s);
    json_writer_member_string(&w, s, s);
    json_writer_end_object(&w);
    check_same(&w, expected, what);
}

static void test_every_byte_in_a_string(void)
{
    for (int c = 1; c < 256; c++) {
        char s[8], what[32];

        snprintf(s, sizeof s, "a%cb%c", c, c);
        snprintf(what, sizeof what, "byte 0x%02x", c);
        check_one_string(s, what);
    }
    check_one_string("", "the empty string");
}

static void test_random_strings(void)
{
    static const char alphabet[] = "ab\"\\/\b\f\n\r\t\x01\x1f\x7f \xc3\xa9\xe2\x82\xac{}[]:,";
    unsigned seed = 12345;

    for (int round = 0; round < 2000; round++) {
        char s[64];
        int n = (int)(rand_r(&seed) % (sizeof s - 1));

        for (int i = 0; i < n; i++)
            s[i] = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
        s[n] = '\0';
        check_one_string(s, "a random string");
    }
}

/* The writer copies 8 bytes at a time where none needs an escape, and the
 * string's last 8 bytes over the ones before: one byte that does, or one
 * just either side of what does (0x20, '!', '#', '[', ']', 0x7f, 0xff), at
 * every position of strings 1-24 bytes long, amid ASCII and amid bytes >=
 * 0x80. */
static void test_one_odd_byte_at_every_position(void)
{
    static const unsigned char odd[] = {0x01, 0x1f, '"', '\\', 0x20, '!',
                                        '#',  '[',  ']', 0x7f, 0xff};
    static const unsigned char background[] = {'x', 0xe9};
    int failed = 0, checked = 0;

    for (size_t b = 0; b < sizeof background; b++)
        for (size_t o = 0; o < sizeof odd; o++)
            for (int len = 1; len <= 24; len++)
                for (int at = 0; at < len; at++) {
                    char s[32];
                    struct json_writer w;
                    cJSON *expected;
                    char *want;
                    size_t got_len;
                    const char *got;

                    memset(s, background[b], (size_t)len);
                    s[len] = '\0';
                    s[at] = (char)odd[o];
                    expected = cJSON_CreateString(s);
                    want = cJSON_PrintUnformatted(expected);
                    json_writer_init(&w);
                    json_writer_string(&w, s);
                    got = json_writer_text(&w, &got_len);
                    if (!got || !want || strcmp(got, want) != 0) {
                        if (!failed++)
                            CHECKF(0, "0x%02x at %d of %d amid 0x%02x: got %s, want %s", odd[o], at,
                                   len, background[b], got ? got : "(null)",
                                   want ? want : "(null)");
                    }
                    checked++;
                    free(want);
                    cJSON_Delete(expected);
                    json_writer_free(&w);
                }
    CHECKF(failed == 0 && checked == 2 * 11 * 300, "%d of %d strings differ from cJSON's", failed,
           checked);
}

static void test_integers(void)
{
    /* cJSON prints an int-sized number as %d and a larger one through %g
     * (1e+15): compare with cJSON within int, with printf past it. */
    const int64_t exact[] = {0, 1, -1, 9, 10, -10, 1700000000, 110100480, INT32_MAX, INT32_MIN};
    const int64_t limits[] = {(int64_t)INT32_MAX + 1, (int64_t)1 << 53, INT64_MAX, INT64_MIN,
                              INT64_MIN + 1};

    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        struct json_writer w;
        cJSON *expected = cJSON_CreateArray();

        cJSON_AddItemToArray(expected, cJSON_CreateNumber((double)exact[i]));
        json_writer_init(&w);
        json_writer_begin_array(&w);
        json_writer_int(&w, exact[i]);
        json_writer_end_array(&w);
        check_same(&w, expected, "an integer");
    }
    for (int i = 0; i < 19; i++) { /* every digit count, both signs */
        int64_t ten = 1;

        for (int d = 0; d < i; d++)
            ten *= 10;
        for (int64_t near = ten - 1; near <= ten + 1; near++) {
            for (int sign = 1; sign >= -1; sign -= 2) {
                struct json_writer w;
                char want[32];
                size_t len;
                const char *got;

                snprintf(want, sizeof want, "%" PRId64, sign * near);
                json_writer_init(&w);
                json_writer_int(&w, sign * near);
                got = json_writer_text(&w, &len);
                CHECKF(got && !strcmp(got, want), "got %s, want %s", got ? got : "(null)", want);
                json_writer_free(&w);
            }
        }
    }
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        struct json_writer w;
        char want[32];
        size_t len;
        const char *got;

        snprintf(want, sizeof want, "%" PRId64, limits[i]);
        json_writer_init(&w);
        json_writer_int(&w, limits[i]);
        got = json_writer_text(&w, &len);
        CHECK(got && !strcmp(got, want));
        json_writer_free(&w);
    }
}

/* Whole members (json_writer_member_*) give the same text as a key and its
 * value, mixed with those and with nested containers; outside an object, or
 * after a key still waiting for its value, they are misuse. */
static void test_members(void)
{
    const int64_t numbers[] = {0, -1, 42, INT32_MAX, INT32_MIN};
    struct json_writer w;
    cJSON *expected = cJSON_CreateObject(), *inner = cJSON_CreateObject();
    size_t len;

    json_writer_init(&w);
    json_writer_begin_object(&w);
    json_writer_member_string(&w, "id", "file_abc");
    cJSON_AddStringToObject(expected, "id", "file_abc");
    json_writer_member_string(&w, "", "");
    cJSON_AddStringToObject(expected, "", "");
    json_writer_member_string(&w, "a \"quoted\"\tkey\x01", "line\nbreak and \xc3\xa9 and \\");
    cJSON_AddStringToObject(expected, "a \"quoted\"\tkey\x01", "line\nbreak and \xc3\xa9 and \\");
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        json_writer_member_int(&w, "n", numbers[i]);
        cJSON_AddNumberToObject(expected, "n", (double)numbers[i]);
    }
    json_writer_member_null(&w, "expires_at");
    cJSON_AddNullToObject(expected, "expires_at");
    json_writer_key(&w, "inner");
    json_writer_begin_object(&w);
    json_writer_member_int(&w, "created_at", 1700000000);
    cJSON_AddNumberToObject(inner, "created_at", 1700000000);
    json_writer_end_object(&w);
    cJSON_AddItemToObject(expected, "inner", inner);
    json_writer_key(&w, "after");
    json_writer_bool(&w, 1);
    cJSON_AddTrueToObject(expected, "after");
    json_writer_end_object(&w);
    check_same(&w, expected, "members");

    /* at the top, in an array, after a key: no text */
    json_writer_init(&w);
    json_writer_member_string(&w, "k", "v");
    CHECK(json_writer_text(&w, &len) == NULL);
    json_writer_free(&w);
    json_writer_init(&w);
    json_writer_begin_array(&w);
    json_writer_member_int(&w, "k", 1);
    json_writer_end_array(&w);
    CHECK(json_writer_text(&w, &len) == NULL);
    json_writer_free(&w);
    json_writer_init(&w);
    json_writer_begin_object(&w);
    json_writer_key(&w, "k");
    json_writer_member_null(&w, "k2");
    json_writer_end_object(&w);
    CHECK(json_writer_text(&w, &len) == NULL);
    json_writer_free(&w);
}

/* A list page's shape: objects in an array in an object, empty containers,
 * true, false and null. */
static void test_nesting(void)
{
    struct json_writer w;
    cJSON *expected = cJSON_CreateObject(), *data = cJSON_CreateArray();

    for (int i = 0; i < 3; i++) {
        cJSON *file = cJSON_CreateObject();
        cJSON_AddStringToObject(file, "id", "file_1");
        cJSON_AddNumberToObject(file, "bytes", i);
        cJSON_AddNullToObject(file, "expires_at");
        cJSON_AddItemToObject(file, "tags", cJSON_CreateArray());
        cJSON_AddItemToObject(file, "extra", cJSON_CreateObject());
        cJSON_AddItemToArray(data, file);
    }
    cJSON_AddStringToObject(expected, "object", "list");
    cJSON_AddItemToObject(expected, "data", data);
    cJSON_AddBoolToObject(expected, "has_more", 1);
    cJSON_AddBoolToObject(expected, "done", 0);

    json_writer_init(&w);
    json_writer_begin_object(&w);
    json_writer_key(&w, "object");
    json_writer_string(&w, "list");
    json_writer_key(&w, "data");
    json_writer_begin_array(&w);
    for (int i = 0; i < 3; i++) {
        json_writer_begin_object(&w);
        json_writer_key(&w, "id");
        json_writer_string(&w, "file_1");
        json_writer_key(&w, "bytes");
        json_writer_int(&w, i);
        json_writer_key(&w, "expires_at");
        json_writer_null(&w);
        json_writer_key(&w, "tags");
        json_writer_begin_array(&w);
        json_writer_end_array(&w);
        json_writer_key(&w, "extra");
        json_writer_begin_object(&w);
        json_writer_end_object(&w);
        json_writer_end_object(&w);
    }
    json_writer_end_array(&w);
    json_writer_key(&w, "has_more");
    json_writer_bool(&w, 1);
    json_writer_key(&w, "done");
    json_writer_bool(&w, 0);
    json_writer_end_object(&w);
    check_same(&w, expected, "a list page");
}

/* A long document crosses the first buffer's size several times. */
static void test_growth(void)
{
    struct json_writer w;
    cJSON *expected = cJSON_CreateArray();

    json_writer_init(&w);
    json_writer_begin_array(&w);
    for (int i = 0; i < 20000; i++) {
        cJSON_AddItemToArray(expected, cJSON_CreateString("requests-0123456789.jsonl"));
        json_writer_string(&w, "requests-0123456789.jsonl");
    }
    json_writer_end_array(&w);
    check_same(&w, expected, "20,000 strings");
}

/* The closing brackets land on each byte around the first buffer's end:
 * arrays of 0s ("0" and ",0") of each count around it, nested two and three
 * deep, after a first 10 or not (its extra byte shifts the parity: without
 * it every length is even, and some off-by-one writes one byte past the
 * buffer only at odd lengths). Run under ASan in the sanitizer build, where
 * a write past the buffer fails. */
static void test_the_buffer_end(void)
{
    for (int wide = 0; wide <= 1; wide++) {
        for (int depth = 2; depth <= 3; depth++) {
            for (int count = JSON_WRITER_FIRST_CAP / 2 - 8; count < JSON_WRITER_FIRST_CAP / 2 + 8;
                 count++) {
                struct json_writer w;
                cJSON *expected = cJSON_CreateArray(), *inner = expected;

                json_writer_init(&w);
                json_writer_begin_array(&w);
                for (int d = 1; d < depth; d++) {
                    cJSON *next = cJSON_CreateArray();
                    cJSON_AddItemToArray(inner, next);
                    inner = next;
                    json_writer_begin_array(&w);
                }
                if (wide) {
                    cJSON_AddItemToArray(inner, cJSON_CreateNumber(10));
                    json_writer_int(&w, 10);
                }
                for (int i = 0; i < count; i++) {
                    cJSON_AddItemToArray(inner, cJSON_CreateNumber(0));
                    json_writer_int(&w, 0);
                }
                for (int d = 0; d < depth; d++)
                    json_writer_end_array(&w);
                check_same(&w, expected, "0s up to the buffer's end");
            }
        }
    }
}

static int text_is_null(struct json_writer *w)
{
    size_t len;
    int null = json_writer_text(w, &len) == NULL;

    json_writer_free(w);
    return null;
}

static void test_misuse_and_depth(void)
{
    struct json_writer w;

    json_writer_init(&w); /* nothing written */
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* unclosed */
    json_writer_begin_object(&w);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* a key without its value */
    json_writer_begin_object(&w);
    json_writer_key(&w, "a");
    json_writer_end_object(&w);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* closed once too often */
    json_writer_begin_array(&w);
    json_writer_end_array(&w);
    json_writer_end_array(&w);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* closed before anything was opened: the writer fails for good */
    json_writer_end_array(&w);
    json_writer_begin_array(&w);
    json_writer_begin_array(&w);
    json_writer_end_array(&w);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* an array closed as an object */
    json_writer_begin_array(&w);
    json_writer_end_object(&w);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* an object closed as an array */
    json_writer_begin_object(&w);
    json_writer_end_array(&w);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* a member without its key */
    json_writer_begin_object(&w);
    json_writer_int(&w, 1);
    json_writer_end_object(&w);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* a key in an array */
    json_writer_begin_array(&w);
    json_writer_key(&w, "a");
    json_writer_int(&w, 1);
    json_writer_end_array(&w);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* a key at the top */
    json_writer_key(&w, "a");
    json_writer_int(&w, 1);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* two keys in a row */
    json_writer_begin_object(&w);
    json_writer_key(&w, "a");
    json_writer_key(&w, "b");
    json_writer_int(&w, 1);
    json_writer_end_object(&w);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* two documents */
    json_writer_int(&w, 1);
    json_writer_int(&w, 2);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* two documents, containers */
    json_writer_begin_array(&w);
    json_writer_end_array(&w);
    json_writer_begin_object(&w);
    json_writer_end_object(&w);
    CHECK(text_is_null(&w));

    json_writer_init(&w); /* one value at the top is a document */
    json_writer_string(&w, "a");
    CHECK(!text_is_null(&w));

    /* Depth: JSON_WRITER_MAX_DEPTH - 1 containers nest, one more fails. */
    for (int depth = JSON_WRITER_MAX_DEPTH - 1; depth <= JSON_WRITER_MAX_DEPTH; depth++) {
        json_writer_init(&w);
        for (int i = 0; i < depth; i++)
            json_writer_begin_array(&w);
        for (int i = 0; i < depth; i++)
            json_writer_end_array(&w);
        CHECKF(text_is_null(&w) == (depth == JSON_WRITER_MAX_DEPTH), "depth %d", depth);
    }
}

int main(void)
{
    test_every_byte_in_a_string();
    test_random_strings();
    test_one_odd_byte_at_every_position();
    test_integers();
    test_members();
    test_nesting();
    test_growth();
    test_the_buffer_end();
    test_misuse_and_depth();
    TEST_MAIN_END();
}
