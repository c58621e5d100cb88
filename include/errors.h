/* The error value that travels from where a problem is found to the one
 * function that writes error responses (http_send_error). */
#ifndef ERRORS_H
#define ERRORS_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* SPEC's error catalog. */
enum error_kind {
    ERR_NONE = 0,
    ERR_AUTH_MISSING_KEY,      /* AUTH_1007 401 */
    ERR_AUTH_INVALID_KEY,      /* AUTH_1008 401 */
    ERR_AUTH_SCOPE,            /* AUTH_1015 403 */
    ERR_MALFORMED_REQUEST,     /* VALIDATION_4001 400 */
    ERR_INVALID_PARAMETER,     /* VALIDATION_4002 400 */
    ERR_NO_ROUTE,              /* VALIDATION_4004 404 */
    ERR_METHOD_NOT_ALLOWED,    /* VALIDATION_4005 405 */
    ERR_INVALID_PURPOSE,       /* VALIDATION_4007 400 */
    ERR_FILE_TOO_LARGE,        /* VALIDATION_4016 413 */
    ERR_RANGE_NOT_SATISFIABLE, /* VALIDATION_4002 416 (Range outside the content) */
    ERR_PRECONDITION_FAILED,   /* VALIDATION_4002 412 (If-Match names another tag) */
    ERR_FILE_NOT_FOUND,        /* INFERENCE_3302 404 */
    ERR_INVALID_JSONL,         /* INFERENCE_3303 400 */
    ERR_INTERNAL,              /* SYSTEM_9001 500 */
    ERR_BUSY,                  /* SYSTEM_9003 503 */
    ERR_NO_SPACE,              /* SYSTEM_9007 507 */
};

struct api_error {
    enum error_kind kind;
    const char *param; /* static string naming the offending parameter, or NULL */
    char message[512];
    cJSON *details;          /* owned; NULL means {} */
    const char *allow;       /* Allow header value for 405 */
    char extra_headers[128]; /* further header lines ("Name: value\r\n"), e.g. Content-Range for 416
                              */
};

/* Sets *e (kind, param, printf-style message). Frees details left from before. */
void error_set(struct api_error *e, enum error_kind kind, const char *param, const char *format,
               ...) __attribute__((format(printf, 4, 5)));

/* Adds a member to e->details (creating the object); takes ownership of value. */
void error_detail(struct api_error *e, const char *name, cJSON *value);

/* Releases e->details and resets *e to ERR_NONE. */
void error_clear(struct api_error *e);

/* Sets e for a failed database call: DB_BUSY is 503, DB_FULL 507, anything else 500
 * (callers answer DB_NOT_FOUND themselves). */
void error_set_db(struct api_error *e, int db_status);

/* Returns 1 if err says the process is short of open files or memory, which
 * a retry may find free (EMFILE, ENFILE, ENOMEM, ENOBUFS); else 0. */
int error_is_shortage(int err);

/* Sets e for a failed system call (what: "creating the temporary file"): out
 * of file descriptors or memory is 503, as a retry may find them free (and
 * is logged: the operator should know); anything else 500. */
void error_set_errno(struct api_error *e, int err, const char *what);

/* Copies client text for quoting in a message: printable ASCII kept, any
 * other byte as '?', cut to fit out (with "..." when cut). Returns out. */
const char *error_quote(char *out, size_t out_size, const char *text);

int error_http_status(enum error_kind kind);
const char *error_code(enum error_kind kind);
const char *error_type(enum error_kind kind);

#endif
