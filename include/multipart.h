/* multipart — a streaming multipart/form-data parser (RFC 2046 §5.1, RFC 7578).
 *
 * Pure: no I/O, no allocation. The caller feeds the request body in chunks of
 * any size as it arrives; the parser calls back at each part's start (with its
 * decoded headers), with the part's body in pieces, and at each part's end.
 * Memory is the struct below and nothing else, whatever the body's size: part
 * data is passed through straight from the caller's chunk, never buffered.
 * See docs/multipart.md for every decision about what is accepted.
 */
#ifndef MULTIPART_H
#define MULTIPART_H

#include <stddef.h>

#define MULTIPART_MAX_BOUNDARY 70       /* RFC 2046 */
#define MULTIPART_MAX_HEADER_BLOCK 8192 /* bytes of one part's header block */
#define MULTIPART_MAX_PARTS 16          /* parts per body */
#define MULTIPART_MAX_FIELD 4096       /* bytes of a text field's value (a part without filename) */
#define MULTIPART_MAX_NAME 255         /* bytes of a field name / of a filename after decoding */
#define MULTIPART_MAX_CONTENT_TYPE 127 /* bytes of a part's Content-Type value */
#define MULTIPART_MAX_ERROR 400        /* bytes of an error message, with its NUL */

struct multipart_part {
    char name[MULTIPART_MAX_NAME + 1];     /* form field name, NUL-terminated */
    char filename[MULTIPART_MAX_NAME + 1]; /* decoded basename, NUL-terminated; "" if none */
    int has_filename; /* the Content-Disposition carried filename= (or filename*=) */
    char content_type[MULTIPART_MAX_CONTENT_TYPE + 1]; /* the part's Content-Type or "" */
};

/* Any callback may be NULL. Each returns 0 to go on, nonzero to stop: the
 * feed then returns MULTIPART_ABORTED, and so does every later call. */
struct multipart_callbacks {
    /* The part's headers are complete and valid. part is valid only during the call. */
    int (*on_part_begin)(void *ctx, const struct multipart_part *part);
    /* The part's body, in pieces (len >= 1). data points into the caller's chunk
     * (or into the parser) and is valid only during the call. */
    int (*on_part_data)(void *ctx, const char *data, size_t len);
    /* The part's closing delimiter was seen: all its data has been delivered. */
    int (*on_part_end)(void *ctx);
};

enum multipart_status { MULTIPART_OK = 0, MULTIPART_ERROR = -1, MULTIPART_ABORTED = -2 };

/* The parser's state. Exposed only so that callers can embed it (on the stack
 * or in a request struct) without malloc: sizeof is about 9.4 KB on x86-64,
 * whatever the body's size. Every member is private; use the functions below.
 * It holds no pointers into itself, so it may be copied; the copy goes on with
 * the callbacks and ctx given to multipart_parser_init. */
struct multipart_parser {
    struct multipart_callbacks cb;              /* copied at init */
    void *ctx;                                  /* passed to every callback */
    int state;                                  /* enum multipart_state in multipart.c */
    int status;                                 /* enum multipart_status, sticky */
    char delim[4 + MULTIPART_MAX_BOUNDARY + 1]; /* "\r\n--" boundary */
    size_t delim_len;                           /* 4 + boundary length */
    size_t match;                               /* delimiter bytes matched, held back */
    int match_virtual;                          /* the first 2 held bytes are not data */
    unsigned parts;                             /* parts started so far */
    size_t header_bytes;                        /* bytes of the current header block */
    size_t line_len;                            /* bytes in line[] */
    unsigned long long field_bytes;             /* bytes of the current part's data */
    int seen_disposition;                       /* current part had Content-Disposition */
    int seen_content_type;                      /* current part had Content-Type */
    int fed;                                    /* any body byte was fed */
    int end_pending; /* a part's delimiter was seen; its end is reported once the line is valid */
    struct multipart_part part;            /* the current part */
    char line[MULTIPART_MAX_HEADER_BLOCK]; /* the header line being read */
    char error[MULTIPART_MAX_ERROR];       /* reason once MULTIPART_ERROR */
};

/* Why a decoded name or filename cannot be kept: NULL when name[0..len) is
 * 1..MULTIPART_MAX_NAME bytes of valid UTF-8 (RFC 3629) without control
 * characters, else a reason ("it is not valid UTF-8", ...). What the parser
 * checks of every name; the admin tool's import checks its --filename alike. */
const char *multipart_name_problem(const char *name, size_t len);

/* Extracts the boundary from a Content-Type header value ("multipart/form-data;
 * boundary=..."): the media type is case-insensitive, the parameter may be
 * quoted or unquoted, other parameters may come before or after.
 * Returns 0 and writes the NUL-terminated boundary to out (out_size >= 71 is
 * always enough), or -1 with a reason in *why (a static string): not
 * multipart/form-data, no boundary, empty, too long (> 70), invalid characters
 * (RFC 2046 bchars), malformed parameters. why may be NULL. */
int multipart_boundary_from_content_type(const char *content_type, /* may be NULL */
                                         char *out, size_t out_size, const char **why);

/* Prepares p to parse one body delimited by boundary (without the leading
 * "--"; it is copied). cb is copied; ctx is passed to every callback.
 * Returns 0, or -1 if the boundary is not 1..70 RFC 2046 bchars (the reason is
 * then in multipart_parser_error and every later feed returns MULTIPART_ERROR). */
int multipart_parser_init(struct multipart_parser *p, const char *boundary,
                          const struct multipart_callbacks *cb, void *ctx);

/* Parses the next len bytes of the body; calls back as parts are recognised.
 * Returns MULTIPART_OK, MULTIPART_ERROR (the body is malformed or over a limit:
 * see multipart_parser_error) or MULTIPART_ABORTED (a callback returned
 * nonzero). Errors are sticky: once not OK, every later call returns the same. */
int multipart_parser_feed(struct multipart_parser *p, const char *data, size_t len);

/* End of body: MULTIPART_OK if the closing boundary was seen, else
 * MULTIPART_ERROR (or the sticky status). No call but multipart_parser_error
 * may follow. */
int multipart_parser_finish(struct multipart_parser *p);

/* A clear reason once a call returned MULTIPART_ERROR (or MULTIPART_ABORTED);
 * "" while all is well. Valid as long as p. */
const char *multipart_parser_error(const struct multipart_parser *p);

#endif
