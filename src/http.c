#include "http.h"

#include "ids.h"
#include "linger.h"

#include <fcntl.h>
#include <obstack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define obstack_chunk_alloc malloc
#define obstack_chunk_free free

/* cJSON's memory during a request: one obstack (glibc), released at once when
 * the request ends. A list page builds some 500 small nodes; allocating and
 * freeing them one by one was a fifth of the worker's CPU, more once the
 * upload threads exist and malloc takes locks. */
static struct obstack request_memory;
static void *request_memory_start;

static void *request_memory_alloc(size_t size)
{
    return obstack_alloc(&request_memory, size);
}

static void request_memory_free(void *p)
{
    (void)p; /* everything goes at http_request_memory_reset */
}

void http_request_memory_init(void)
{
    cJSON_Hooks hooks = {request_memory_alloc, request_memory_free};

    obstack_init(&request_memory);
    obstack_chunk_size(&request_memory) = 64 << 10;
    request_memory_start = obstack_alloc(&request_memory, 0);
    cJSON_InitHooks(&hooks);
}

void http_request_memory_reset(void)
{
    obstack_free(&request_memory, request_memory_start);
    request_memory_start = obstack_alloc(&request_memory, 0);
}

/* The FastCGI parameters a request reads. */
enum param {
    PARAM_REQUEST_METHOD,
    PARAM_REQUEST_URI,
    PARAM_CONTENT_TYPE,
    PARAM_CONTENT_LENGTH,
    PARAM_CONTENT_ENCODING,
    PARAM_AUTHORIZATION,
    PARAM_X_API_KEY,
    PARAM_RANGE,
    PARAM_IF_NONE_MATCH,
    PARAM_IF_MATCH,
    PARAM_IF_RANGE,
    PARAM_IF_UNMODIFIED_SINCE,
    PARAM_IF_MODIFIED_SINCE,
    PARAM_COUNT
};

#define PARAM(id, name) [id] = {name, sizeof name - 1}
static const struct {
    const char *name;
    size_t len;
} params[PARAM_COUNT] = {
    PARAM(PARAM_REQUEST_METHOD, "REQUEST_METHOD"),
    PARAM(PARAM_REQUEST_URI, "REQUEST_URI"),
    PARAM(PARAM_CONTENT_TYPE, "CONTENT_TYPE"),
    PARAM(PARAM_CONTENT_LENGTH, "CONTENT_LENGTH"),
    PARAM(PARAM_CONTENT_ENCODING, "HTTP_CONTENT_ENCODING"),
    PARAM(PARAM_AUTHORIZATION, "HTTP_AUTHORIZATION"),
    PARAM(PARAM_X_API_KEY, "HTTP_X_API_KEY"),
    PARAM(PARAM_RANGE, "HTTP_RANGE"),
    PARAM(PARAM_IF_NONE_MATCH, "HTTP_IF_NONE_MATCH"),
    PARAM(PARAM_IF_MATCH, "HTTP_IF_MATCH"),
    PARAM(PARAM_IF_RANGE, "HTTP_IF_RANGE"),
    PARAM(PARAM_IF_UNMODIFIED_SINCE, "HTTP_IF_UNMODIFIED_SINCE"),
    PARAM(PARAM_IF_MODIFIED_SINCE, "HTTP_IF_MODIFIED_SINCE"),
};
#undef PARAM

/* Finds every parameter in one pass over the environment (FCGX_GetParam
 * would scan it once per name): value[i] is the first value of
 * params[i].name (as FCGX_GetParam gives) or NULL, count[i] how many times
 * it was sent. nginx passes a repeated header as repeated parameters,
 * lighttpd and Apache join the values with ", ". */
static void read_params(char **envp, const char *value[PARAM_COUNT], int count[PARAM_COUNT])
{
    for (int i = 0; i < PARAM_COUNT; i++) {
        value[i] = NULL;
        count[i] = 0;
    }
    for (char **p = envp; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        size_t len = eq ? (size_t)(eq - *p) : 0;

        for (int i = 0; eq && i < PARAM_COUNT; i++) {
            if (len != params[i].len || memcmp(*p, params[i].name, len))
                continue;
            if (count[i]++ == 0)
                value[i] = eq + 1;
            break;
        }
    }
}

void http_request_init(struct http_request *req, FCGX_Request *fcgi)
{
    const char *value[PARAM_COUNT], *uri, *length;
    int count[PARAM_COUNT], decoded;

    memset(req, 0, sizeof *req);
    req->fcgi = fcgi;
    clock_gettime(CLOCK_MONOTONIC, &req->started);
    if (ids_random_base62(req->request_id, HTTP_REQUEST_ID_LEN) != 0)
        snprintf(req->request_id, sizeof req->request_id, "unknown");
    read_params(fcgi->envp, value, count);
    req->method = value[PARAM_REQUEST_METHOD];
    if (!req->method)
        req->method = "GET";
    req->head = strcmp(req->method, "HEAD") == 0;
    /* Route on REQUEST_URI: servers split SCRIPT_NAME/PATH_INFO differently. */
    uri = value[PARAM_REQUEST_URI];
    if (!uri)
        uri = "/";
    decoded = route_decode_path(uri, req->path, sizeof req->path, &req->query);
    req->path_ok = decoded >= 0;
    if (decoded == ROUTE_TOO_LONG) {
        /* Routed whole all the same (an id far too long is a missing file, a
         * bad escape anywhere a malformed path), from request memory; path
         * keeps its start for the log. No longer than the URI itself. */
        size_t size = strlen(uri) + 1;
        req->long_path = obstack_alloc(&request_memory, size);
        if (route_decode_path(uri, req->long_path, size, &req->query) < 0)
            req->long_path = NULL;
    }
    if (!req->path_ok && !req->long_path)
        snprintf(req->path, sizeof req->path, "(malformed)");
    req->content_type = value[PARAM_CONTENT_TYPE];
    req->content_encoding = value[PARAM_CONTENT_ENCODING];
    req->authorization = value[PARAM_AUTHORIZATION];
    req->x_api_key = value[PARAM_X_API_KEY];
    req->credentials_repeated = count[PARAM_AUTHORIZATION] > 1 || count[PARAM_X_API_KEY] > 1;
    req->content_encoding_repeated = count[PARAM_CONTENT_ENCODING] > 1;
    req->range = value[PARAM_RANGE];
    req->if_none_match = value[PARAM_IF_NONE_MATCH];
    req->if_match = value[PARAM_IF_MATCH];
    req->if_range = value[PARAM_IF_RANGE];
    req->if_unmodified_since = value[PARAM_IF_UNMODIFIED_SINCE];
    req->if_modified_since = value[PARAM_IF_MODIFIED_SINCE];
    length = value[PARAM_CONTENT_LENGTH];
    req->content_length = -1;
    if (length && *length) {
        char *end;
        long long n = strtoll(length, &end, 10);
        if (*end == '\0' && n >= 0)
            req->content_length = n;
    }
}

size_t http_read_body(struct http_request *req, char *buf, size_t size)
{
    size_t total = 0;

    /* FCGX_GetStr takes an int and returns short only at the end of input. */
    while (total < size) {
        int want = size - total > (1 << 30) ? (1 << 30) : (int)(size - total);
        int got = FCGX_GetStr(buf + total, want, req->fcgi->in);
        if (got <= 0)
            break;
        total += (size_t)got;
        if (got < want)
            break;
    }
    return total;
}

int http_body_complete(struct http_request *req, uint64_t received)
{
    if (FCGX_GetError(req->fcgi->in) != 0)
        return 0;
    return req->content_length < 0 || received >= (uint64_t)req->content_length;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 416:
        return "Range Not Satisfiable";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}

/* A line built in a fixed buffer, always NUL-terminated: what does not fit
 * is dropped. The responses and the access line are put together this way
 * rather than by printf, whose parsing of the format was a tenth of the
 * instructions of a metadata request. */
struct text {
    char *buf;
    size_t len, cap;
};

static void text_add(struct text *t, const char *s, size_t n)
{
    if (n > t->cap - 1 - t->len)
        n = t->cap - 1 - t->len;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void text_add_str(struct text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

static void text_add_uint(struct text *t, uint64_t value)
{
    char digits[20];
    char *p = digits + sizeof digits;

    do
        *--p = (char)('0' + value % 10);
    while (value /= 10);
    text_add(t, p, (size_t)(digits + sizeof digits - p));
}

void http_send_head(struct http_request *req, int status, const char *headers)
{
    char line[64];
    struct text t = {line, 0, sizeof line};
    FCGX_Stream *out = req->fcgi->out;

    req->status = status;
    text_add_str(&t, "Status: ");
    text_add_uint(&t, (uint64_t)status);
    text_add_str(&t, " ");
    text_add_str(&t, reason_phrase(status));
    text_add_str(&t, "\r\n");
    FCGX_PutStr(line, (int)t.len, out);
    if (headers)
        FCGX_PutS(headers, out);
    /* A browser must not take a JSON error that quotes the request, or an
     * uploaded file, for HTML. */
    FCGX_PutS("X-Content-Type-Options: nosniff\r\n", out);
    FCGX_PutStr("X-Request-Id: ", 14, out);
    FCGX_PutS(req->request_id, out);
    FCGX_PutStr("\r\n\r\n", 4, out);
}

int http_send_body(struct http_request *req, const void *data, size_t len)
{
    if (req->head)
        return 0;
    if (len > 0 && FCGX_PutStr(data, (int)len, req->fcgi->out) != (int)len)
        return -1;
    req->body_bytes += len;
    return 0;
}

/* Sends JSON text (NULL: the fixed internal error) with its headers and a
 * final newline. */
static void send_json_text(struct http_request *req, int status, const char *text, size_t len,
                           const char *extra_headers)
{
    static const char fallback[] =
        "{\"error\":{\"code\":\"SYSTEM_9001\",\"message\":\"internal error\","
        "\"type\":\"server_error\",\"param\":null,\"details\":{}}}";
    char headers[512];
    struct text t = {headers, 0, sizeof headers};

    if (!text) { /* out of memory printing it, or a writer misused */
        fprintf(stderr,
                "files-api: request %s: internal error: a %d response could not be "
                "written (out of memory?)\n",
                req->request_id, status);
        status = 500;
        text = fallback;
        len = sizeof fallback - 1;
        extra_headers = "";
    }
    text_add_str(&t, "Content-Type: application/json\r\nContent-Length: ");
    text_add_uint(&t, len + 1);
    text_add_str(&t, "\r\n");
    text_add_str(&t, extra_headers ? extra_headers : "");
    http_send_head(req, status, headers);
    http_send_body(req, text, len);
    http_send_body(req, "\n", 1);
}

static void send_json_with_headers(struct http_request *req, int status, cJSON *body,
                                   const char *extra_headers)
{
    char *printed = body ? cJSON_PrintUnformatted(body) : NULL;

    cJSON_Delete(body);
    send_json_text(req, status, printed, printed ? strlen(printed) : 0, extra_headers);
    cJSON_free(printed);
}

void http_send_json(struct http_request *req, int status, cJSON *body)
{
    send_json_with_headers(req, status, body, NULL);
}

void http_send_json_writer(struct http_request *req, int status, struct json_writer *w)
{
    size_t len = 0;
    const char *text = json_writer_text(w, &len);

    send_json_text(req, status, text, len, NULL);
    json_writer_free(w);
}

void http_send_error(struct http_request *req, const struct api_error *error)
{
    cJSON *body = cJSON_CreateObject(), *inner = cJSON_CreateObject(), *details;
    char headers[256] = "";
    const char *message = error->message;

    if (error->kind == ERR_INTERNAL) {
        fprintf(stderr, "files-api: request %s: internal error: %s\n", req->request_id,
                error->message);
        message = "internal error; quote the request id to the operator";
    }
    details = error->details && error->kind != ERR_INTERNAL ? cJSON_Duplicate(error->details, 1)
                                                            : cJSON_CreateObject();
    if (error->kind == ERR_INTERNAL)
        cJSON_AddStringToObject(details, "request_id", req->request_id);
    cJSON_AddStringToObject(inner, "code", error_code(error->kind));
    cJSON_AddStringToObject(inner, "message", message);
    cJSON_AddStringToObject(inner, "type", error_type(error->kind));
    if (error->param)
        cJSON_AddStringToObject(inner, "param", error->param);
    else
        cJSON_AddNullToObject(inner, "param");
    cJSON_AddItemToObject(inner, "details", details);
    cJSON_AddItemToObject(body, "error", inner);
    if (error->kind == ERR_METHOD_NOT_ALLOWED && error->allow)
        snprintf(headers, sizeof headers, "Allow: %s\r\n", error->allow);
    else if (error->kind == ERR_BUSY)
        snprintf(headers, sizeof headers, "Retry-After: 1\r\n");
    snprintf(headers + strlen(headers), sizeof headers - strlen(headers), "%s",
             error->extra_headers);
    send_json_with_headers(req, error_http_status(error->kind), body, headers);
}

/* Parses a decimal byte position; returns the number of digits read, 0 if
 * none. One past INT64_MAX counts as INT64_MAX: a position that large is past
 * any content, as a smaller one would be (RFC 9110 §14.1.1 sets no bound). */
static int parse_position(const char *text, int64_t *out)
{
    int64_t value = 0;
    int digits = 0;

    for (; text[digits] >= '0' && text[digits] <= '9'; digits++) {
        int digit = text[digits] - '0';
        value = value > (INT64_MAX - digit) / 10 ? INT64_MAX : value * 10 + digit;
    }
    *out = value;
    return digits;
}

int http_parse_range(const char *header, int64_t size, int64_t *first, int64_t *last)
{
    const char *p;
    int64_t a, b;
    int n;

    if (!header || strncmp(header, "bytes=", 6) != 0 || strchr(header, ','))
        return 0;
    p = header + 6;
    if (*p == '-') { /* suffix: the last b bytes */
        if (!(n = parse_position(p + 1, &b)) || p[1 + n] != '\0')
            return 0;
        if (b == 0 || size == 0)
            return -1;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (!(n = parse_position(p, &a)) || p[n] != '-')
        return 0;
    p += n + 1;
    if (*p == '\0') {
        b = INT64_MAX;
    } else if (!(n = parse_position(p, &b)) || p[n] != '\0' || b < a) {
        return 0;
    }
    if (a >= size)
        return -1;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return 1;
}

int http_parse_date(const char *text, time_t *out)
{
    static const char *const forms[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                        "%a %b %e %H:%M:%S %Y"};
    struct tm tm;

    if (!text)
        return -1;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        const char *end;
        memset(&tm, 0, sizeof tm);
        end = strptime(text, forms[i], &tm);
        if (end && *end == '\0') {
            *out = timegm(&tm);
            return 0;
        }
    }
    return -1;
}

void http_format_date(time_t t, char out[HTTP_DATE_SIZE])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, HTTP_DATE_SIZE, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

int http_etag_matches(const char *list, const char *etag, int strong)
{
    size_t len = strlen(etag);
    const char *p = list;

    if (!p)
        return 0;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0 && !strong)
            p += 2;
        if (strncmp(p, etag, len) == 0 &&
            (p[len] == '\0' || p[len] == ',' || p[len] == ' ' || p[len] == '\t'))
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

#define ACCESS_LINE_MAX 1024
/* Room left after the path for the rest of the line: method, numbers, the
 * account (< 128 bytes) and the request id. */
#define ACCESS_TAIL_ROOM 400

/* Client text (at most max bytes), escaped as \xNN where it could end the
 * line, close the quotes, reach a terminal, or (the bytes in also) forge a
 * field: the access line is never a header, and never two lines. */
static void text_add_escaped(struct text *t, const char *text, size_t max, const char *also)
{
    static const char hex[] = "0123456789abcdef";

    for (const unsigned char *p = (const unsigned char *)text;
         *p && max-- > 0 && t->len + 4 <= ACCESS_LINE_MAX - ACCESS_TAIL_ROOM; p++) {
        if (*p < 0x20 || *p == '"' || *p == '\\' || *p >= 0x7f || strchr(also, *p)) {
            char escaped[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 15]};
            text_add(t, escaped, sizeof escaped);
        } else {
            t->buf[t->len++] = (char)*p; /* the loop's bound keeps room for it */
        }
    }
}

/* Formats the access-log line: method, path, status, bytes, duration, account,
 * request id. Returns its length. */
static size_t format_access_line(const struct http_request *req, char line[ACCESS_LINE_MAX])
{
    struct timespec now;
    struct text t = {line, 0, ACCESS_LINE_MAX};
    int64_t elapsed_ns;
    uint64_t hundredths_ms;
    char fraction[3] = {'.'};

    clock_gettime(CLOCK_MONOTONIC, &now);
    elapsed_ns = (int64_t)(now.tv_sec - req->started.tv_sec) * 1000000000 +
                 (now.tv_nsec - req->started.tv_nsec);
    hundredths_ms = elapsed_ns > 0 ? ((uint64_t)elapsed_ns + 5000) / 10000 : 0;
    text_add_str(&t, "access method=");
    /* (A web server passes only token methods on; a client on the FastCGI
     * socket itself could send any bytes.) */
    text_add_escaped(&t, req->method, 16, " =");
    text_add_str(&t, " path=\"");
    text_add_escaped(&t, req->path, ROUTE_MAX_PATH, "");
    text_add_str(&t, "\" status=");
    text_add_uint(&t, (uint64_t)req->status);
    text_add_str(&t, " bytes=");
    text_add_uint(&t, req->body_bytes);
    text_add_str(&t, " ms=");
    text_add_uint(&t, hundredths_ms / 100);
    fraction[1] = (char)('0' + hundredths_ms / 10 % 10);
    fraction[2] = (char)('0' + hundredths_ms % 10);
    text_add(&t, fraction, sizeof fraction);
    text_add_str(&t, " account=");
    text_add_str(&t, req->account[0] ? req->account : "-");
    text_add_str(&t, " request_id=");
    text_add_str(&t, req->request_id);
    text_add_str(&t, "\n");
    return t.len;
}

/* Whether the web server has sent all of the request's input, read or not:
 * the body was read to its end, or a zero length was declared. Then only the
 * end-of-input record can follow, and every server sends it with the
 * request's variables, so reading it never waits on the client. nginx and
 * Apache declare no length for a GET: unknown means "maybe a body is still
 * coming", which could wait on the client, so those keep the lingering close. */
static int input_complete(struct http_request *req)
{
    FCGX_Stream *in = req->fcgi->in;

    if (FCGX_HasSeenEOF(in) == EOF)
        return 1;
    return req->content_length == 0 && FCGX_GetChar(in) == EOF;
}

/* How long the rest of a refused body may take to read off a kept connection. */
enum { DRAIN_SECONDS = 5 };

/* Reads what is left of the request's input, up to its end-of-input record.
 * 0 if it ended properly. A web server that buffers bodies (nginx's default)
 * sends the rest at once; one that passes a body on as it comes (nginx with
 * fastcgi_request_buffering off, for a body of declared length) makes this
 * wait on the client: the answer is sent first, a read may wait 1 s and the
 * whole DRAIN_SECONDS, else -1. With no length declared (a GET) only the
 * end-of-input record is left, sent with the request's variables. */
static int drain_input(struct http_request *req)
{
    FCGX_Stream *in = req->fcgi->in;
    struct timeval second = {.tv_sec = 1};
    struct timespec started, now;
    char scratch[16384];

    if (FCGX_HasSeenEOF(in) == EOF)
        return FCGX_GetError(in) == 0 ? 0 : -1;
    if (req->content_length > 0) {
        FCGX_FFlush(req->fcgi->out);
        setsockopt(req->fcgi->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &second, sizeof second);
    }
    clock_gettime(CLOCK_MONOTONIC, &started);
    while (FCGX_GetStr(scratch, sizeof scratch, in) > 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - started.tv_sec >= DRAIN_SECONDS)
            return -1;
    }
    return FCGX_GetError(in) == 0 ? 0 : -1;
}

void http_request_finish(struct http_request *req)
{
    char line[ACCESS_LINE_MAX];
    size_t n = format_access_line(req, line);
    ssize_t ignored;

    int lingering = -1;

    if (req->fcgi->keepConnection) {
        /* Input left unread (a body refused before it was read) would meet
         * libfcgi as the next request's first record, and it would drop the
         * connection unanswered. */
        if (drain_input(req) != 0)
            req->fcgi->keepConnection = 0;
    } else if (input_complete(req)) {
        /* libfcgi's close shuts the socket down and reads until the server's
         * EOF (up to 2 s), so that unread input cannot turn into a reset that
         * loses the response. With no input left that is three system calls
         * and a wait for nothing: detaching makes it a plain close. */
        FCGX_Detach(req->fcgi);
    } else if (linger_available() &&
               (lingering = fcntl(req->fcgi->ipcFd, F_DUPFD_CLOEXEC, 0)) >= 0) {
        /* That wait, on the closer's thread (linger.h): libfcgi closes only
         * its own descriptor, once the answer is out. */
        FCGX_Detach(req->fcgi);
    }
    FCGX_Finish_r(req->fcgi);
    if (lingering >= 0)
        linger_close(lingering);
    /* One write per line (every worker shares the same stderr), after the
     * response is on its way. */
    ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
}
