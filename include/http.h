/* The request and response over FastCGI: CGI variables in, a CGI "Status:"
 * response out, one access-log line per request on stderr. */
#ifndef HTTP_H
#define HTTP_H

#include <fcgiapp.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "errors.h"
#include "json_writer.h"
#include "route.h"

#define HTTP_REQUEST_ID_LEN 16

struct http_request {
    FCGX_Request *fcgi;
    /* Pointers into the FastCGI environment: valid until the request finishes. */
    const char *method;
    const char *query;
    const char *content_type;
    const char *content_encoding;
    const char *authorization;
    const char *x_api_key;
    const char *range;
    const char *if_none_match;
    const char *if_match;
    const char *if_range;
    const char *if_unmodified_since;
    const char *if_modified_since;
    int credentials_repeated;      /* Authorization or x-api-key sent more than once */
    int content_encoding_repeated; /* Content-Encoding sent more than once (nginx passes
                                      each; the others join them with ", ") */
    long long content_length;      /* -1 when the request declared none */
    int head;                      /* HEAD: answer as GET, without a body */
    int path_ok;                   /* 0 if the request path was malformed or too long */
    char *long_path;               /* a well-formed path too long for path (which has its
                                      start), decoded whole into request memory; else NULL */
    char path[ROUTE_MAX_PATH];     /* percent-decoded, query removed */
    char request_id[HTTP_REQUEST_ID_LEN + 1];
    struct timespec started;
    /* For the access log. */
    int status;
    uint64_t body_bytes;
    char account[128];
};

/* Reads the CGI variables of an accepted request into *req. */
void http_request_init(struct http_request *req, FCGX_Request *fcgi);

/* From then on cJSON takes its memory from a pool that
 * http_request_memory_reset empties: call that at the end of each request.
 * Only the thread that serves requests may use cJSON. */
void http_request_memory_init(void);
void http_request_memory_reset(void);

/* Reads up to size body bytes. Returns the count; fewer than size only at the end. */
size_t http_read_body(struct http_request *req, char *buf, size_t size);

/* Once http_read_body came up short, after received bytes in all: 1 if that
 * was the body's end, 0 if the body was cut off: the connection to the web
 * server broke, or it ended the input before the declared CONTENT_LENGTH (a
 * web server that passes the body on as it comes does either when its client
 * goes away mid-request). */
int http_body_complete(struct http_request *req, uint64_t received);

/* Starts a response: status line and the given header lines (each ending in
 * "\r\n", may be NULL), then X-Request-Id and the blank line. */
void http_send_head(struct http_request *req, int status, const char *headers);

/* Writes body bytes (skipped for HEAD). Returns 0, or -1 if the client is gone. */
int http_send_body(struct http_request *req, const void *data, size_t len);

/* Sends a JSON document with Content-Type and Content-Length. Takes ownership of body. */
void http_send_json(struct http_request *req, int status, cJSON *body);
/* The same for a document written with json_writer (frees its buffer). */
void http_send_json_writer(struct http_request *req, int status, struct json_writer *w);

/* Sends the error in SPEC's format; the one place error responses are written.
 * SYSTEM_9001 details are logged with the request id, never sent. */
void http_send_error(struct http_request *req, const struct api_error *error);

/* Reads a Range header (RFC 9110 §14.1.2) against a representation of size
 * bytes. Returns 1 with the first and last byte (inclusive) of a single
 * satisfiable range, 0 when the header is absent, malformed or asks for
 * several ranges (the whole content is sent, as RFC 9110 allows), or -1 when
 * it is unsatisfiable (416). */
int http_parse_range(const char *header, int64_t size, int64_t *first, int64_t *last);

/* Returns 1 if a list of entity tags (If-None-Match, If-Match: RFC 9110 §13.1)
 * matches the strong tag etag (given with its quotes): "*", or a listed tag
 * equal to it. With strong set (If-Match, If-Range), a weak tag W/"..."
 * never matches; without (If-None-Match), W/ is ignored. NULL matches nothing. */
int http_etag_matches(const char *list, const char *etag, int strong);

/* An HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, or the obsolete RFC 850 and
 * asctime forms a recipient must accept. Returns 0 with *out, or -1. */
int http_parse_date(const char *text, time_t *out);

#define HTTP_DATE_SIZE 30

/* Writes t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). */
void http_format_date(time_t t, char out[HTTP_DATE_SIZE]);

/* Ends the request: sends the rest of the response, writes the access-log line
 * (method, path, status, bytes, duration, account, request id), and closes
 * the connection, or keeps it when the web server asked (FCGI_KEEP_CONN),
 * first draining a body left unread (within a bound, else it is closed). A
 * connection closed with input still to come goes to the lingering-close
 * thread (linger.h), or, when that is full, to libfcgi's own lingering close;
 * one whose input was all read is closed at once. */
void http_request_finish(struct http_request *req);

#endif
