/* POST /v1/files: the multipart body is parsed as it streams in; the file part
 * is ingested (size limit, JSONL validation, content hash, temporary file) on the
 * fly. Only a complete, valid upload is made durable and recorded. */
#include "api.h"

#include "hooks.h"
#include "ingest.h"
#include "multipart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define UPLOAD_CHUNK (256 * 1024)
/* Room for the multipart framing and text fields around the file part: a body
 * declared larger than the file limit plus this is refused before reading. */
#define UPLOAD_MAX_OVERHEAD                                                                        \
    ((uint64_t)MULTIPART_MAX_PARTS *                                                               \
     (MULTIPART_MAX_HEADER_BLOCK + MULTIPART_MAX_FIELD + 2 * MULTIPART_MAX_BOUNDARY + 16))

/* Bytes of a kept text field's value (purpose, expires_after[...]): no valid
 * value is longer, so a longer one is refused as invalid. */
#define UPLOAD_MAX_FIELD_VALUE 63

/* A text field we keep: its value, bounded. */
struct text_field {
    const char *param; /* the error's param when it is sent twice */
    int seen;
    int bad; /* too long, or holds a NUL byte: no valid value does, and C strings end there */
    size_t len;
    char value[UPLOAD_MAX_FIELD_VALUE + 1];
};

struct upload {
    const struct config *config;
    struct api_error *error;
    struct text_field purpose, expiry_anchor, expiry_seconds;
    struct text_field *current_field; /* the text field being received, or NULL */
    int in_file;
    int file_seen;
    char filename[MULTIPART_MAX_NAME + 1];
    uint64_t size_hint; /* the body's declared length, 0 if none: the file is no larger */
    struct ingest ingest;
    /* The first problem with the content (3303, 4016, 507, ...). The rest of
     * the body is still parsed, without storing it, so that a malformed body
     * (4001) or a wrong purpose sent after the file (4007) is what the client
     * hears: those say the request itself is wrong. */
    struct api_error file_error;
};

static int check_purpose(struct upload *up)
{
    if (!up->purpose.seen) {
        error_set(up->error, ERR_INVALID_PURPOSE, "purpose",
                  "purpose is required and must be \"batch\"");
        return -1;
    }
    if (up->purpose.bad || strcmp(up->purpose.value, "batch") != 0) {
        error_set(up->error, ERR_INVALID_PURPOSE, "purpose", "purpose must be \"batch\"");
        return -1;
    }
    return 0;
}

static int start_file(struct upload *up, const struct multipart_part *part)
{
    if (up->file_seen) {
        error_set(up->error, ERR_MALFORMED_REQUEST, "file", "more than one file part");
        return -1;
    }
    if (!part->has_filename) {
        error_set(up->error, ERR_MALFORMED_REQUEST, "file", "the file part has no filename");
        return -1;
    }
    up->file_seen = up->in_file = 1;
    memcpy(up->filename, part->filename, sizeof up->filename);
    /* Only purpose "batch" can be uploaded, so the batch rules apply even
     * when the purpose field comes after the file. */
    ingest_begin(&up->ingest, up->config, up->config->batch_checks, up->size_hint, &up->file_error);
    return 0;
}

static int on_part_begin(void *ctx, const struct multipart_part *part)
{
    struct upload *up = ctx;

    up->current_field = NULL;
    if (!strcmp(part->name, "file"))
        return start_file(up, part);
    /* Ignored as an unknown field, an expiry sent as one JSON text would
     * leave the file without one, and nobody told. */
    if (!strcmp(part->name, "expires_after")) {
        error_set(up->error, ERR_INVALID_PARAMETER, "expires_after",
                  "send expires_after as two fields, expires_after[anchor] and "
                  "expires_after[seconds]");
        return -1;
    }
    if (!strcmp(part->name, "purpose"))
        up->current_field = &up->purpose;
    else if (!strcmp(part->name, "expires_after[anchor]"))
        up->current_field = &up->expiry_anchor;
    else if (!strcmp(part->name, "expires_after[seconds]"))
        up->current_field = &up->expiry_seconds;
    if (up->current_field) {
        if (up->current_field->seen) {
            error_set(up->error, ERR_MALFORMED_REQUEST, up->current_field->param,
                      "field \"%s\" given more than once", part->name);
            return -1;
        }
        up->current_field->seen = 1;
    }
    return 0;
}

static int on_part_data(void *ctx, const char *data, size_t len)
{
    struct upload *up = ctx;
    struct text_field *field = up->current_field;

    if (field) {
        if (field->len + len >= sizeof field->value || memchr(data, '\0', len)) {
            field->bad = 1;
            /* A wrong purpose now (4007), not once the value outgrows the
             * parser's limit on text fields (a malformed body, 4001). */
            if (field == &up->purpose)
                return check_purpose(up);
        } else {
            memcpy(field->value + field->len, data, len);
            field->len += len;
            field->value[field->len] = '\0';
        }
        return 0;
    }
    if (up->in_file && up->file_error.kind == ERR_NONE)
        ingest_write(&up->ingest, data, len, &up->file_error);
    return 0;
}

static int on_part_end(void *ctx)
{
    struct upload *up = ctx;

    if (up->current_field == &up->purpose) {
        up->current_field = NULL;
        return check_purpose(up); /* refuse early: no need to read the file first */
    }
    up->current_field = NULL;
    if (up->in_file && up->file_error.kind == ERR_NONE)
        ingest_end(&up->ingest, &up->file_error);
    up->in_file = 0;
    return 0;
}

/* expires_after[anchor]=created_at with expires_after[seconds] in [3600, 2592000]
 * (OpenAI's rule), or neither (then default_expiry_seconds, if set). Returns 0
 * with *expires_at set (0: never), or -1 with a 400 in up->error. */
static int parse_expiry(struct upload *up, int64_t created_at, int64_t *expires_at)
{
    char *end;
    long long seconds;

    *expires_at = 0;
    if (!up->expiry_anchor.seen && !up->expiry_seconds.seen) {
        if (up->config->default_expiry_seconds)
            *expires_at = created_at + up->config->default_expiry_seconds;
        return 0;
    }
    if (!up->expiry_anchor.seen || up->expiry_anchor.bad ||
        strcmp(up->expiry_anchor.value, "created_at") != 0) {
        error_set(up->error, ERR_INVALID_PARAMETER, "expires_after[anchor]",
                  "expires_after[anchor] must be \"created_at\"");
        return -1;
    }
    seconds = up->expiry_seconds.seen ? strtoll(up->expiry_seconds.value, &end, 10) : 0;
    if (!up->expiry_seconds.seen || up->expiry_seconds.bad || up->expiry_seconds.value[0] < '0' ||
        up->expiry_seconds.value[0] > '9' || *end || seconds < CONFIG_EXPIRY_MIN_SECONDS ||
        seconds > CONFIG_EXPIRY_MAX_SECONDS) {
        error_set(up->error, ERR_INVALID_PARAMETER, "expires_after[seconds]",
                  "expires_after[seconds] must be an integer from %d to %d",
                  CONFIG_EXPIRY_MIN_SECONDS, CONFIG_EXPIRY_MAX_SECONDS);
        return -1;
    }
    *expires_at = created_at + seconds;
    return 0;
}

/* The largest request body: a file of the limit and the most form around it. */
static uint64_t max_request_bytes(const struct upload *up)
{
    return up->config->max_file_bytes + UPLOAD_MAX_OVERHEAD;
}

/* A request larger than a file of the limit and the most form around it. The
 * file itself may be small: the message says what was too large. */
static int refuse_request_size(struct upload *up, uint64_t max_request)
{
    error_set(up->error, ERR_FILE_TOO_LARGE, "file",
              "the request is larger than %llu bytes: a file of at most %llu bytes and "
              "%llu bytes for the form around it",
              (unsigned long long)max_request, (unsigned long long)up->config->max_file_bytes,
              (unsigned long long)UPLOAD_MAX_OVERHEAD);
    return -1;
}

/* What the headers say of the body: identity-coded, multipart/form-data with
 * a boundary (copied to boundary), a declared length within the limit.
 * Returns 0, or -1 with *up->error set. */
static int check_upload_headers(const struct http_request *req, struct upload *up,
                                char boundary[MULTIPART_MAX_BOUNDARY + 1])
{
    const char *why = NULL;
    uint64_t max_request = max_request_bytes(up);

    /* No web server in front decodes a body, and nor do we: a compressed
     * one would otherwise be called a multipart body without its boundary.
     * A repeated header (nginx passes each value; "identity" first would
     * hide a "gzip" after it) is refused as the joined list is elsewhere. */
    if (req->content_encoding_repeated) {
        error_set(up->error, ERR_MALFORMED_REQUEST, NULL,
                  "Content-Encoding sent more than once is not supported: send the body "
                  "uncompressed");
        return -1;
    }
    if (req->content_encoding && *req->content_encoding &&
        strcasecmp(req->content_encoding, "identity") != 0) {
        char coding[64];
        error_set(up->error, ERR_MALFORMED_REQUEST, NULL,
                  "Content-Encoding \"%s\" is not supported: send the body uncompressed",
                  error_quote(coding, sizeof coding, req->content_encoding));
        return -1;
    }
    if (multipart_boundary_from_content_type(req->content_type, boundary,
                                             MULTIPART_MAX_BOUNDARY + 1, &why) != 0) {
        error_set(up->error, ERR_MALFORMED_REQUEST, NULL, "Content-Type: %s", why);
        return -1;
    }
    /* Declared too large: refused before reading. */
    if (req->content_length >= 0 && (uint64_t)req->content_length > max_request)
        return refuse_request_size(up, max_request);
    up->size_hint = req->content_length > 0 ? (uint64_t)req->content_length : 0;
    return 0;
}

/* Reads the whole body through the multipart parser, whose callbacks take the
 * fields and feed the file part to ingest. Returns 0 once the body has ended
 * well-formed, or -1 with *up->error set. */
static int read_form(struct http_request *req, struct upload *up, const char *boundary)
{
    /* Static: a worker serves one request at a time, and these (256 KiB and
     * ~9.4 KB) stay out of the stack and of malloc's arenas. */
    static char chunk[UPLOAD_CHUNK];
    static struct multipart_parser parser;
    static const struct multipart_callbacks callbacks = {on_part_begin, on_part_data, on_part_end};
    uint64_t max_request = max_request_bytes(up), received = 0;
    int rc = MULTIPART_OK;

    multipart_parser_init(&parser, boundary, &callbacks, up);
    for (;;) {
        size_t got = http_read_body(req, chunk, sizeof chunk);
        /* Undeclared (chunked, behind a server that passes it on as it comes):
         * refused at the same size, whatever the framing. */
        if ((received += got) > max_request)
            return refuse_request_size(up, max_request);
        if (got > 0 && (rc = multipart_parser_feed(&parser, chunk, got)) != MULTIPART_OK)
            break;
        if (got < sizeof chunk) {
            if (!http_body_complete(req, received)) {
                error_set(up->error, ERR_MALFORMED_REQUEST, NULL,
                          "the request body was cut off after %llu bytes (the client went away?)",
                          (unsigned long long)received);
                return -1;
            }
            rc = multipart_parser_finish(&parser);
            break;
        }
    }
    if (rc == MULTIPART_ABORTED)
        return -1; /* a callback set the error */
    if (rc != MULTIPART_OK) {
        error_set(up->error, ERR_MALFORMED_REQUEST, NULL, "malformed multipart body: %s",
                  multipart_parser_error(&parser));
        return -1;
    }
    return 0;
}

/* The form as a whole: a file part, a valid purpose, then the file's own
 * verdict (which a malformed body or a wrong purpose comes before). Returns
 * 0, or -1 with *up->error set. */
static int check_form(struct upload *up)
{
    if (!up->file_seen) {
        error_set(up->error, ERR_MALFORMED_REQUEST, "file", "no file part in the request");
        return -1;
    }
    if (check_purpose(up) != 0)
        return -1;
    if (up->file_error.kind != ERR_NONE) {
        error_clear(up->error);
        *up->error = up->file_error; /* the details move with it */
        up->file_error.details = NULL;
        up->file_error.kind = ERR_NONE;
        return -1;
    }
    return 0;
}

int api_upload(struct http_request *req, const struct config *config,
               const struct api_caller *caller, struct api_error *error)
{
    struct upload up = {.config = config,
                        .error = error,
                        .purpose.param = "purpose",
                        .expiry_anchor.param = "expires_after",
                        .expiry_seconds.param = "expires_after"};
    struct file_meta file = {.account_id = caller->account_id};
    char boundary[MULTIPART_MAX_BOUNDARY + 1];
    int rc = -1;

    if (check_upload_headers(req, &up, boundary) == 0 && read_form(req, &up, boundary) == 0 &&
        check_form(&up) == 0) {
        file.created_at = (int64_t)time(NULL);
        snprintf(file.purpose, sizeof file.purpose, "batch"); /* check_purpose allows no other */
        memcpy(file.filename, up.filename, sizeof file.filename);
        rc = parse_expiry(&up, file.created_at, &file.expires_at);
        if (rc == 0)
            rc = ingest_commit(&up.ingest, &file, error);
    }
    ingest_release(&up.ingest);
    error_clear(&up.file_error);
    if (rc == 0) {
        hooks_crash_point("upload_before_response");
        api_send_file(req, &file);
    }
    return rc;
}
