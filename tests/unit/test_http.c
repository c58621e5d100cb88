/* Unit tests: the pure parts of the HTTP glue (src/http.c): Range and
 * If-None-Match, the FastCGI parameters, the per-request memory of cJSON, and
 * the access-log line. */
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
    CHECK(range("bytes=0-100", 100, &a, &b) == 1 && a == 0 && b == 99); /* one past the end */
    CHECK(range("bytes=99-99", 100, &a, &b) == 1 && a == 99 && b == 99);
    /* The last byte is satisfiable; one past it is not. */
    CHECK(range("bytes=99-", 100, &a, &b) == 1);
    CHECK(range("bytes=100-", 100, &a, &b) == -1);
    CHECK(range("bytes=100-200", 100, &a, &b) == -1);
    CHECK(range("bytes=-0", 100, &a, &b) == -1);
    CHECK(range("bytes=0-", 0, &a, &b) == -1);
    CHECK(range("bytes=-5", 0, &a, &b) == -1);
    /* Positions past INT64_MAX are as large as any: past the end, or to it. */
    CHECK(range("bytes=99999999999999999999-", 100, &a, &b) == -1);
    CHECK(range("bytes=9223372036854775807-", 100, &a, &b) == -1);
    /* 2^64: without the overflow guard it wraps to 0, a satisfiable range */
    CHECK(range("bytes=18446744073709551616-", 100, &a, &b) == -1);
    CHECK(range("bytes=5-99999999999999999999", 100, &a, &b) == 1 && a == 5 && b == 99);
    CHECK(range("bytes=-99999999999999999999", 100, &a, &b) == 1 && a == 0 && b == 99);
    /* Malformed or several ranges: ignored, the whole content is sent. */
    CHECK(range("bytes=9-0", 100, &a, &b) == 0);
    CHECK(range("bytes=0-1,5-6", 100, &a, &b) == 0);
    CHECK(range("bytes=", 100, &a, &b) == 0);
    CHECK(range("bytes=-", 100, &a, &b) == 0);
    CHECK(range("bytes=a-b", 100, &a, &b) == 0);
    CHECK(range("bytes=1-2x", 100, &a, &b) == 0);
    CHECK(range("bytes=-5x", 100, &a, &b) == 0);
    CHECK(range("bytes=5", 100, &a, &b) == 0);   /* no '-' after the first position */
    CHECK(range("bytes=0x9", 100, &a, &b) == 0); /* nor here: not the range 0-9 */
    CHECK(range("items=0-1", 100, &a, &b) == 0);
}

static void test_etag(void)
{
    const char *tag = "\"abc\"";

    CHECK(http_etag_matches(NULL, tag, 0) == 0);
    CHECK(http_etag_matches("\"abc\"", tag, 0) == 1);
    CHECK(http_etag_matches("W/\"abc\"", tag, 0) == 1);
    CHECK(http_etag_matches("\"x\", \"abc\"", tag, 0) == 1);
    CHECK(http_etag_matches("\"x\",\"abc\"", tag, 0) == 1);
    /* tabs and spaces are optional whitespace on either side of a comma */
    CHECK(http_etag_matches("\"x\",\t\"abc\"", tag, 0) == 1);
    CHECK(http_etag_matches("\"abc\" , \"x\"", tag, 0) == 1);
    CHECK(http_etag_matches("\"abc\"\t,\"x\"", tag, 1) == 1);
    CHECK(http_etag_matches("*", tag, 0) == 1);
    CHECK(http_etag_matches("\"abcd\"", tag, 0) == 0);
    CHECK(http_etag_matches("\"ab\"", tag, 0) == 0);
    CHECK(http_etag_matches("abc", tag, 0) == 0);
    CHECK(http_etag_matches("", tag, 0) == 0);
    /* strong comparison (If-Match, If-Range): a weak tag never matches */
    CHECK(http_etag_matches("\"abc\"", tag, 1) == 1);
    CHECK(http_etag_matches("W/\"abc\"", tag, 1) == 0);
    CHECK(http_etag_matches("W/\"x\", \"abc\"", tag, 1) == 1);
    CHECK(http_etag_matches("*", tag, 1) == 1);
    CHECK(http_etag_matches("\"x\"", tag, 1) == 0);
}

static void test_dates(void)
{
    char text[HTTP_DATE_SIZE];
    time_t t = 0;

    /* RFC 9110 §5.6.7's example in its three forms. */
    CHECK(http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT", &t) == 0 && t == 784111777);
    t = 0;
    CHECK(http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", &t) == 0 && t == 784111777);
    t = 0;
    CHECK(http_parse_date("Sun Nov  6 08:49:37 1994", &t) == 0 && t == 784111777);
    http_format_date(784111777, text);
    CHECK_STR(text, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_format_date(1795693022, text);
    CHECK(http_parse_date(text, &t) == 0 && t == 1795693022);
    /* Not a date: ignored by the caller. */
    CHECK(http_parse_date(NULL, &t) == -1);
    CHECK(http_parse_date("", &t) == -1);
    CHECK(http_parse_date("yesterday", &t) == -1);
    CHECK(http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT", &t) ==
          -1);
    CHECK(http_parse_date("Sun, 06 Nov 1994 08:49:37 PST", &t) == -1);
    CHECK(http_parse_date("784111777", &t) == -1);
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

/* The access line: the path escaped, cut where it would crowd out the rest;
 * whatever the path, the line ends in its newline and fits the buffer. */
static size_t access_line(const char *path, char fill, size_t path_len, char line[ACCESS_LINE_MAX])
{
    struct http_request req = {.method = "GET", .status = 200, .request_id = "ABCDEFGHIJKLMNOP"};

    memset(req.account, 'a', sizeof req.account - 1); /* the longest account */
    if (path)
        snprintf(req.path, sizeof req.path, "%s", path);
    else
        memset(req.path, fill, path_len);
    clock_gettime(CLOCK_MONOTONIC, &req.started);
    return format_access_line(&req, line);
}

static void test_access_line(void)
{
    static const char prefix[] = "access method=GET path=\"";
    /* The path's bytes that fit: each may take 4 ("\xNN"), and the tail keeps its room. */
    size_t fits = ACCESS_LINE_MAX - ACCESS_TAIL_ROOM - 4 - (sizeof prefix - 1) + 1;
    char line[ACCESS_LINE_MAX], expect[ACCESS_LINE_MAX];
    size_t n;

    n = access_line("/v1/files/a\"b\x01", 0, 0, line);
    CHECK(n < ACCESS_LINE_MAX && line[n - 1] == '\n');
    snprintf(expect, sizeof expect, "%s/v1/files/a\\x22b\\x01\" status=200 ", prefix);
    CHECK(strncmp(line, expect, strlen(expect)) == 0);
    /* the last control byte (0x1F) and DEL (0x7F) are escaped too */
    access_line("/a\x1f"
                "b\x7f"
                "c",
                0, 0, line);
    CHECKF(strstr(line, "path=\"/a\\x1fb\\x7fc\" ") != NULL, "%s", line);

    /* at the limit the whole path is printed, one byte more is cut */
    n = access_line(NULL, 'p', fits, line);
    CHECK(strspn(line + sizeof prefix - 1, "p") == fits);
    CHECK(strncmp(line + sizeof prefix - 1 + fits, "\" status=200 ", 13) == 0);
    n = access_line(NULL, 'p', fits + 1, line);
    CHECK(strspn(line + sizeof prefix - 1, "p") == fits);
    CHECK(strncmp(line + sizeof prefix - 1 + fits, "\" status=200 ", 13) == 0);
    CHECK(n < ACCESS_LINE_MAX && line[n - 1] == '\n' &&
          strstr(line, "request_id=ABCDEFGHIJKLMNOP\n"));

    /* the longest path, all of it escaped: still whole */
    n = access_line(NULL, '\x01', ROUTE_MAX_PATH - 1, line);
    CHECK(n < ACCESS_LINE_MAX && line[n - 1] == '\n' &&
          strstr(line, "request_id=ABCDEFGHIJKLMNOP\n"));
}

/* Each field of the access line: the method cut at 16 bytes, numbers whole
 * up to their largest, the duration in ms with two decimals, "-" for no
 * account. */
static void test_access_line_fields(void)
{
    static const char prefix[] = "access method=PROPFINDANDMOREB path=\"/v1/files\" status=507 "
                                 "bytes=18446744073709551615 ms=";
    struct http_request req = {.method = "PROPFINDANDMOREBYTES",
                               .status = 507,
                               .body_bytes = UINT64_MAX,
                               .request_id = "R"};
    char line[ACCESS_LINE_MAX], ms[16] = "";
    size_t n;
    unsigned whole = 0, hundredths = 0;

    snprintf(req.path, sizeof req.path, "/v1/files");
    clock_gettime(CLOCK_MONOTONIC, &req.started);
    req.started.tv_sec -= 3; /* began 3 s ago */
    n = format_access_line(&req, line);
    CHECKF(n == strlen(line) && strncmp(line, prefix, sizeof prefix - 1) == 0, "%s", line);
    CHECKF(sscanf(line + sizeof prefix - 1, "%15[0-9.]", ms) == 1 &&
               sscanf(ms, "%u.%u", &whole, &hundredths) == 2 && strchr(ms, '.') &&
               strlen(strchr(ms, '.')) == 3 && whole >= 3000 && whole < 3100,
           "%s", line);
    CHECKF(strcmp(line + sizeof prefix - 1 + strlen(ms), " account=- request_id=R\n") == 0, "%s",
           line);
}

/* The parameters are found as FCGX_GetParam finds them: the first of a
 * repeated name, exact names only; repeats are counted. */
static void test_params(void)
{
    char *envp[] = {"HTTP_RANGEX=no",
                    "HTTP_RANG=no",
                    "NO_EQUALS_SIGN",
                    "HTTP_AUTHORIZATION=Bearer first",
                    "REQUEST_METHOD=POST",
                    "HTTP_AUTHORIZATION=Bearer second",
                    "HTTP_RANGE=bytes=0-1",
                    "CONTENT_LENGTH=",
                    NULL};
    const char *value[PARAM_COUNT];
    int count[PARAM_COUNT];

    read_params(envp, value, count);
    CHECK(value[PARAM_RANGE] && !strcmp(value[PARAM_RANGE], "bytes=0-1"));
    CHECK(count[PARAM_RANGE] == 1);
    CHECK(value[PARAM_AUTHORIZATION] && !strcmp(value[PARAM_AUTHORIZATION], "Bearer first"));
    CHECK(count[PARAM_AUTHORIZATION] == 2);
    CHECK(value[PARAM_REQUEST_METHOD] && !strcmp(value[PARAM_REQUEST_METHOD], "POST"));
    CHECK(value[PARAM_CONTENT_LENGTH] && !strcmp(value[PARAM_CONTENT_LENGTH], ""));
    CHECK(!value[PARAM_X_API_KEY] && count[PARAM_X_API_KEY] == 0);
    CHECK(!value[PARAM_REQUEST_URI] && !value[PARAM_IF_MATCH]);
    for (int i = 0; i < PARAM_COUNT; i++) /* FCGX_GetParam agrees on each */
        CHECK(value[i] == FCGX_GetParam(params[i].name, envp));
}

/* The request's fields from its FastCGI parameters. */
static void test_request_init(void)
{
    char *twice[] = {"REQUEST_METHOD=GET",          "REQUEST_URI=/v1/files",
                     "CONTENT_LENGTH=12abc",        "HTTP_AUTHORIZATION=Bearer a",
                     "HTTP_AUTHORIZATION=Bearer b", NULL};
    char *once[] = {"REQUEST_URI=/v1/files", "CONTENT_LENGTH=12", "HTTP_AUTHORIZATION=Bearer a",
                    NULL};
    FCGX_Request fcgi;
    struct http_request req;

    memset(&fcgi, 0, sizeof fcgi); /* only envp is read (and request memory, for long paths) */
    fcgi.envp = twice;
    http_request_init(&req, &fcgi);
    CHECK(req.credentials_repeated == 1); /* a second Authorization is refused, not ignored */
    CHECK(req.content_length == -1);      /* a length with trailing junk is no length */
    fcgi.envp = once;
    http_request_init(&req, &fcgi);
    CHECK(req.credentials_repeated == 0 && req.content_length == 12);
    once[1] = "CONTENT_LENGTH=-5";
    http_request_init(&req, &fcgi);
    CHECK(req.content_length == -1);
}

/* An FCGX_Stream writing into memory: FCGX_PutStr copies into its buffer
 * while it fits (the buffer is large enough never to need emptying). */
static unsigned char out_buf[4096];

static void memory_stream(FCGX_Stream *out)
{
    memset(out, 0, sizeof *out);
    out->wrNext = out->rdNext = out_buf;
    out->stop = out_buf + sizeof out_buf;
}

static void test_send_json(void)
{
    FCGX_Stream out;
    FCGX_Request fcgi = {.out = &out};
    struct http_request req = {.fcgi = &fcgi};
    const char *body;

    /* The Content-Length counts the newline after the JSON text. */
    memory_stream(&out);
    send_json_text(&req, 200, "{}", 2, NULL);
    *out.wrNext = '\0';
    CHECKF(strstr((char *)out_buf, "Content-Length: 3\r\n") != NULL, "%s", (char *)out_buf);
    body = strstr((char *)out_buf, "\r\n\r\n");
    CHECK(body && strcmp(body + 4, "{}\n") == 0 && req.body_bytes == 3);

    /* HEAD: the body is neither sent nor counted. */
    memory_stream(&out);
    req = (struct http_request){.fcgi = &fcgi, .head = 1};
    CHECK(http_send_body(&req, "{}", 2) == 0 && req.body_bytes == 0 && out.wrNext == out_buf);
}

int main(void)
{
    test_params();
    test_range();
    test_etag();
    test_dates();
    test_request_memory();
    test_access_line();
    test_access_line_fields();
    test_request_init();
    test_send_json();
    TEST_MAIN_END();
}
