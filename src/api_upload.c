/* POST /v1/files: the multipart body is parsed as it streams in; the file part
 * goes through the JSONL validator, the SHA-256 and the size count into a
 * temporary file. Only a complete, valid upload is made durable and recorded. */
#include "api.h"

#include "jsonl.h"
#include "multipart.h"
#include "store.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define UPLOAD_CHUNK (256 * 1024)
/* Room for the multipart framing and text fields around the file part: a body
 * declared larger than the file limit plus this is refused before reading. */
#define UPLOAD_MAX_OVERHEAD ((uint64_t)MULTIPART_MAX_PARTS * (MULTIPART_MAX_HEADER_BLOCK + MULTIPART_MAX_FIELD + 2 * MULTIPART_MAX_BOUNDARY + 16))
#define EXPIRY_MIN_SECONDS 3600
#define EXPIRY_MAX_SECONDS 2592000

/* A text field we keep: its value, bounded (longer values are invalid anyway). */
struct text_field {
    int seen;
    int too_long;
    size_t len;
    char value[64];
};

struct upload {
    const struct config *config;
    struct api_error *error;
    struct text_field purpose, expiry_anchor, expiry_seconds;
    struct text_field *current_field; /* the text field being received, or NULL */
    int in_file;
    int file_seen;
    int store_started;
    char filename[MULTIPART_MAX_NAME + 1];
    uint64_t bytes;
    struct store_upload store;
    struct jsonl_validator *jsonl;
    EVP_MD_CTX *sha256;
};

static const char *batch_url_list[CONFIG_MAX_BATCH_URLS];

static int fail_io(struct upload *up, const char *what)
{
    if (errno == ENOSPC || errno == EDQUOT)
        error_set(up->error, ERR_NO_SPACE, NULL, "no space left to store the file");
    else
        error_set(up->error, ERR_INTERNAL, NULL, "%s: %s", what, strerror(errno));
    return -1;
}

static int fail_jsonl(struct upload *up)
{
    const struct jsonl_error *bad = jsonl_validator_error(up->jsonl);

    error_set(up->error, ERR_INVALID_JSONL, "file", "%s", bad->message);
    error_detail(up->error, "line", cJSON_CreateNumber((double)bad->line));
    error_detail(up->error, "column", cJSON_CreateNumber((double)bad->column));
    error_detail(up->error, "reason", cJSON_CreateString(bad->reason));
    if (bad->reason_code)
        error_detail(up->error, "reason_code", cJSON_CreateString(bad->reason_code));
    return -1;
}

static int check_purpose(struct upload *up)
{
    if (!up->purpose.seen) {
        error_set(up->error, ERR_INVALID_PURPOSE, "purpose",
                  "purpose is required and must be \"batch\"");
        return -1;
    }
    if (up->purpose.too_long || strcmp(up->purpose.value, "batch") != 0) {
        error_set(up->error, ERR_INVALID_PURPOSE, "purpose", "purpose must be \"batch\"");
        return -1;
    }
    return 0;
}

static int start_file(struct upload *up, const struct multipart_part *part)
{
    struct jsonl_options options = {
        .max_depth = up->config->jsonl_max_depth,
        .check_batch = up->config->batch_checks,
        .batch_urls = batch_url_list,
        .batch_url_count = up->config->batch_url_count,
    };

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
    for (size_t i = 0; i < up->config->batch_url_count; i++)
        batch_url_list[i] = up->config->batch_urls[i];
    if (getrandom(&options.hash_seed, sizeof options.hash_seed, 0) != sizeof options.hash_seed)
        options.hash_seed = (uint64_t)time(NULL);
    up->jsonl = jsonl_validator_new(&options);
    up->sha256 = EVP_MD_CTX_new();
    if (!up->jsonl || !up->sha256 || !EVP_DigestInit_ex(up->sha256, EVP_sha256(), NULL)) {
        error_set(up->error, ERR_INTERNAL, NULL, "out of memory starting an upload");
        return -1;
    }
    if (store_begin(&up->store, up->config->data_dir) != 0)
        return fail_io(up, "creating the temporary file");
    up->store_started = 1;
    return 0;
}

static int on_part_begin(void *ctx, const struct multipart_part *part)
{
    struct upload *up = ctx;

    up->current_field = NULL;
    if (!strcmp(part->name, "file"))
        return start_file(up, part);
    if (!strcmp(part->name, "purpose"))
        up->current_field = &up->purpose;
    else if (!strcmp(part->name, "expires_after[anchor]"))
        up->current_field = &up->expiry_anchor;
    else if (!strcmp(part->name, "expires_after[seconds]"))
        up->current_field = &up->expiry_seconds;
    if (up->current_field) {
        if (up->current_field->seen) {
            error_set(up->error, ERR_MALFORMED_REQUEST, part->name[0] == 'p' ? "purpose" : "expires_after",
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
    int rc;

    if (field) {
        if (field->len + len >= sizeof field->value) {
            field->too_long = 1;
        } else {
            memcpy(field->value + field->len, data, len);
            field->len += len;
            field->value[field->len] = '\0';
        }
        return 0;
    }
    if (!up->in_file)
        return 0;
    up->bytes += len;
    if (up->bytes > up->config->max_file_bytes) {
        error_set(up->error, ERR_FILE_TOO_LARGE, "file", "the file is larger than %llu bytes",
                  (unsigned long long)up->config->max_file_bytes);
        return -1;
    }
    rc = jsonl_validator_feed(up->jsonl, data, len);
    if (rc == -1)
        return fail_jsonl(up);
    if (rc != 0 || !EVP_DigestUpdate(up->sha256, data, len)) {
        error_set(up->error, ERR_INTERNAL, NULL, "out of memory validating an upload");
        return -1;
    }
    if (store_write(&up->store, data, len) != 0)
        return fail_io(up, "writing the temporary file");
    return 0;
}

static int on_part_end(void *ctx)
{
    struct upload *up = ctx;
    int rc;

    if (up->current_field == &up->purpose) {
        up->current_field = NULL;
        return check_purpose(up); /* refuse early: no need to read the file first */
    }
    up->current_field = NULL;
    if (!up->in_file)
        return 0;
    up->in_file = 0;
    rc = jsonl_validator_finish(up->jsonl);
    if (rc == -1)
        return fail_jsonl(up);
    if (rc != 0) {
        error_set(up->error, ERR_INTERNAL, NULL, "out of memory validating an upload");
        return -1;
    }
    return 0;
}

/* expires_after[anchor]=created_at with expires_after[seconds] in [3600, 2592000]
 * (OpenAI's rule), or neither. Sets *expires_at (0: never). */
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
    if (!up->expiry_anchor.seen || up->expiry_anchor.too_long ||
        strcmp(up->expiry_anchor.value, "created_at") != 0) {
        error_set(up->error, ERR_INVALID_PARAMETER, "expires_after[anchor]",
                  "expires_after[anchor] must be \"created_at\"");
        return -1;
    }
    seconds = up->expiry_seconds.seen ? strtoll(up->expiry_seconds.value, &end, 10) : 0;
    if (!up->expiry_seconds.seen || up->expiry_seconds.too_long ||
        up->expiry_seconds.value[0] < '0' || up->expiry_seconds.value[0] > '9' || *end ||
        seconds < EXPIRY_MIN_SECONDS || seconds > EXPIRY_MAX_SECONDS) {
        error_set(up->error, ERR_INVALID_PARAMETER, "expires_after[seconds]",
                  "expires_after[seconds] must be an integer from %d to %d",
                  EXPIRY_MIN_SECONDS, EXPIRY_MAX_SECONDS);
        return -1;
    }
    *expires_at = created_at + seconds;
    return 0;
}

/* Reads and parses the whole body. Returns 0 when a valid file part and
 * fields arrived, or -1 with *up->error set. */
static int receive(struct http_request *req, struct upload *up)
{
    static char chunk[UPLOAD_CHUNK];
    static struct multipart_parser parser;
    static const struct multipart_callbacks callbacks = {on_part_begin, on_part_data, on_part_end};
    char boundary[MULTIPART_MAX_BOUNDARY + 1];
    const char *why = NULL;
    int rc = MULTIPART_OK;

    if (multipart_boundary_from_content_type(req->content_type, boundary, sizeof boundary,
                                             &why) != 0) {
        error_set(up->error, ERR_MALFORMED_REQUEST, NULL, "Content-Type: %s", why);
        return -1;
    }
    if (req->content_length >= 0 &&
        (uint64_t)req->content_length > up->config->max_file_bytes + UPLOAD_MAX_OVERHEAD) {
        error_set(up->error, ERR_FILE_TOO_LARGE, "file", "the file is larger than %llu bytes",
                  (unsigned long long)up->config->max_file_bytes);
        return -1;
    }
    multipart_parser_init(&parser, boundary, &callbacks, up);
    for (;;) {
        size_t got = http_read_body(req, chunk, sizeof chunk);
        if (got > 0 && (rc = multipart_parser_feed(&parser, chunk, got)) != MULTIPART_OK)
            break;
        if (got < sizeof chunk) {
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
    if (!up->file_seen) {
        error_set(up->error, ERR_MALFORMED_REQUEST, "file", "no file part in the request");
        return -1;
    }
    return check_purpose(up);
}

static void upload_release(struct upload *up)
{
    if (up->store_started)
        store_abort(&up->store);
    jsonl_validator_free(up->jsonl);
    EVP_MD_CTX_free(up->sha256);
}

int api_upload(struct http_request *req, const struct config *config,
               const struct api_caller *caller, struct api_error *error)
{
    struct upload up = {.config = config, .error = error};
    struct file_meta file = {.account_id = caller->account_id};
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    int status;

    if (receive(req, &up) != 0)
        goto fail;
    file.created_at = (int64_t)time(NULL);
    if (parse_expiry(&up, file.created_at, &file.expires_at) != 0)
        goto fail;
    if (!EVP_DigestFinal_ex(up.sha256, digest, &digest_len)) {
        error_set(error, ERR_INTERNAL, NULL, "hashing the upload failed");
        goto fail;
    }
    for (unsigned i = 0; i < digest_len && i < 32; i++)
        snprintf(file.sha256 + 2 * i, 3, "%02x", digest[i]);
    if (ids_make(file.id, sizeof file.id, IDS_FILE_PREFIX, IDS_FILE_RANDOM) != 0) {
        error_set(error, ERR_INTERNAL, NULL, "no randomness for a file id");
        goto fail;
    }
    snprintf(file.purpose, sizeof file.purpose, "batch"); /* check_purpose allows no other */
    memcpy(file.filename, up.filename, sizeof file.filename);
    file.bytes = (int64_t)up.bytes;
    up.store_started = 0; /* store_commit owns the temporary file from here */
    if (store_commit(&up.store, config->data_dir, file.id) != 0) {
        fail_io(&up, "storing the file");
        goto fail;
    }
    status = db_file_insert(&file);
    if (status != DB_OK) {
        store_remove(config->data_dir, file.id);
        api_db_error(error, status);
        goto fail;
    }
    upload_release(&up);
    http_send_json(req, 200, api_file_object(&file));
    return 0;
fail:
    upload_release(&up);
    return -1;
}
