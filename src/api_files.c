/* GET /v1/files, GET /v1/files/{id}, GET /v1/files/{id}/content, DELETE /v1/files/{id}. */
#include "api.h"

#include "hooks.h"
#include "ids.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LIST_DEFAULT_LIMIT 20
#define LIST_MAX_LIMIT 100
#define CONTENT_CHUNK (256 * 1024)

void api_write_file_members(struct json_writer *w, const struct file_meta *file)
{
    json_writer_member_string(w, "id", file->id);
    json_writer_member_string(w, "object", "file");
    json_writer_member_int(w, "bytes", file->bytes);
    json_writer_member_int(w, "created_at", file->created_at);
    json_writer_member_string(w, "filename", file->filename);
    json_writer_member_string(w, "purpose", file->purpose);
    json_writer_member_string(w, "status", "processed");
    if (file->expires_at)
        json_writer_member_int(w, "expires_at", file->expires_at);
    else
        json_writer_member_null(w, "expires_at");
}

void api_write_file(struct json_writer *w, const struct file_meta *file)
{
    json_writer_begin_object(w);
    api_write_file_members(w, file);
    json_writer_end_object(w);
}

void api_send_file(struct http_request *req, const struct file_meta *file)
{
    struct json_writer w;

    json_writer_init(&w);
    api_write_file(&w, file);
    http_send_json_writer(req, 200, &w);
}

/* The one 404 for files: the same whether the id is malformed, unknown,
 * deleted, expired or another account's. */
static void not_found(struct api_error *error, const char *file_id)
{
    char quoted[ROUTE_MAX_SEGMENT + 1];

    error_set(error, ERR_FILE_NOT_FOUND, "file_id", "no such file: %s",
              file_id[0] ? error_quote(quoted, sizeof quoted, file_id)
                         : "(an id longer than any file id)"); /* the router keeps no more */
}

/* Looks up a file of the caller; malformed ids are simply not found (SPEC). */
static int find_file(const struct api_caller *caller, const char *file_id, struct file_meta *file,
                     struct api_error *error)
{
    int status = DB_NOT_FOUND;

    if (ids_is_file_id(file_id))
        status = db_file_get(caller->account_id, file_id, (int64_t)time(NULL), file);
    if (status == DB_NOT_FOUND) {
        not_found(error, file_id);
        return -1;
    }
    if (status != DB_OK) {
        error_set_db(error, status);
        return -1;
    }
    return 0;
}

struct list_params {
    int limit;
    int descending;
    char purpose[ROUTE_MAX_QUERY_VALUE];
    int has_purpose; /* purpose= was given: an exact match, also when empty */
    char after[ROUTE_MAX_QUERY_VALUE];
};

enum { LIST_LIMIT, LIST_ORDER, LIST_AFTER, LIST_PURPOSE, LIST_PARAMS };
static const char *const list_param_names[LIST_PARAMS] = {"limit", "order", "after", "purpose"};

/* Parses limit (1..100), order (asc|desc), after (a file id) and purpose.
 * Returns 0, or -1 with VALIDATION_4002 naming the parameter. Unknown
 * parameters are ignored; a repeated one takes its last value, and only
 * that value is checked. */
static int parse_list_params(const char *query, struct list_params *params, struct api_error *error)
{
    char key[ROUTE_MAX_QUERY_KEY], value[ROUTE_MAX_QUERY_VALUE];
    struct {
        char value[ROUTE_MAX_QUERY_VALUE];
        int given; /* 1, or -1 when the last one was malformed or too long */
    } last[LIST_PARAMS] = {0};
    const char *limit = last[LIST_LIMIT].value, *order = last[LIST_ORDER].value;
    const char *after = last[LIST_AFTER].value;
    char *end;
    long n = 0;
    int rc;

    while ((rc = route_query_next(&query, key, sizeof key, value, sizeof value)) != 0) {
        int p = 0;
        while (p < LIST_PARAMS && strcmp(key, list_param_names[p]) != 0)
            p++;
        if (p == LIST_PARAMS)
            continue;
        memcpy(last[p].value, value, sizeof value);
        last[p].given = rc < 0 ? -1 : 1;
    }
    for (int p = 0; p < LIST_PARAMS; p++)
        if (last[p].given < 0) {
            error_set(error, ERR_INVALID_PARAMETER, list_param_names[p],
                      "%s: malformed or too long", list_param_names[p]);
            return -1;
        }
    if (last[LIST_LIMIT].given) {
        n = strtol(limit, &end, 10);
        if (limit[0] < '0' || limit[0] > '9' || *end || n < 1 || n > LIST_MAX_LIMIT) {
            error_set(error, ERR_INVALID_PARAMETER, "limit",
                      "limit must be an integer from 1 to %d", LIST_MAX_LIMIT);
            return -1;
        }
    }
    if (last[LIST_ORDER].given && strcmp(order, "asc") && strcmp(order, "desc")) {
        error_set(error, ERR_INVALID_PARAMETER, "order", "order must be \"asc\" or \"desc\"");
        return -1;
    }
    if (last[LIST_AFTER].given && !ids_is_file_id(after)) {
        error_set(error, ERR_INVALID_PARAMETER, "after", "after must be a file id");
        return -1;
    }
    params->limit = last[LIST_LIMIT].given ? (int)n : LIST_DEFAULT_LIMIT;
    params->descending = !last[LIST_ORDER].given || order[0] == 'd';
    /* Whole buffers of one size, each NUL-terminated ("" when not given). */
    _Static_assert(sizeof params->after == sizeof last[LIST_AFTER].value &&
                       sizeof params->purpose == sizeof last[LIST_PURPOSE].value,
                   "list parameter buffers differ in size");
    memcpy(params->after, after, sizeof params->after);
    params->has_purpose = last[LIST_PURPOSE].given;
    memcpy(params->purpose, last[LIST_PURPOSE].value, sizeof params->purpose);
    return 0;
}

struct page {
    struct json_writer *w;
    char first_id[IDS_FILE_LEN + 1], last_id[IDS_FILE_LEN + 1];
};

static int add_to_page(void *ctx, const struct file_meta *file)
{
    struct page *page = ctx;

    api_write_file(page->w, file);
    if (!page->first_id[0])
        memcpy(page->first_id, file->id, sizeof page->first_id);
    memcpy(page->last_id, file->id, sizeof page->last_id);
    return 0;
}

static void write_id_or_null(struct json_writer *w, const char *name, const char *id)
{
    if (id[0])
        json_writer_member_string(w, name, id);
    else
        json_writer_member_null(w, name);
}

int api_list(struct http_request *req, const struct api_caller *caller, struct api_error *error)
{
    struct list_params params;
    struct db_list_query query;
    struct json_writer w;
    struct page page = {.w = &w};
    int has_more, status;

    if (parse_list_params(req->query, &params, error) != 0)
        return -1;
    query = (struct db_list_query){
        .account_id = caller->account_id,
        .purpose = params.has_purpose ? params.purpose : NULL,
        .after = params.after[0] ? params.after : NULL,
        .limit = params.limit,
        .descending = params.descending,
        .now = (int64_t)time(NULL),
    };
    json_writer_init(&w);
    json_writer_begin_object(&w);
    json_writer_member_string(&w, "object", "list");
    json_writer_key(&w, "data");
    json_writer_begin_array(&w);
    status = db_file_list(&query, add_to_page, &page, &has_more);
    if (status != DB_OK) {
        json_writer_free(&w);
        if (status == DB_NOT_FOUND)
            error_set(error, ERR_INVALID_PARAMETER, "after", "after: no such file: %s",
                      params.after);
        else
            error_set_db(error, status);
        return -1;
    }
    json_writer_end_array(&w);
    write_id_or_null(&w, "first_id", page.first_id);
    write_id_or_null(&w, "last_id", page.last_id);
    json_writer_key(&w, "has_more");
    json_writer_bool(&w, has_more);
    json_writer_end_object(&w);
    http_send_json_writer(req, 200, &w);
    return 0;
}

int api_retrieve(struct http_request *req, const struct api_caller *caller, const char *file_id,
                 struct api_error *error)
{
    struct file_meta file;

    if (find_file(caller, file_id, &file, error) != 0)
        return -1;
    api_send_file(req, &file);
    return 0;
}

/* Writes a Content-Disposition value that cannot break the header: an ASCII
 * fallback (RFC 6266 quoted-string, unsafe bytes as '_', and '%': some user
 * agents decode %XX there) and the exact name as RFC 8187
 * filename*=UTF-8''percent-encoded. */
static void content_disposition(char *out, size_t size, const char *filename)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = (size_t)snprintf(out, size, "attachment; filename=\"");

    for (const unsigned char *p = (const unsigned char *)filename; *p && n + 2 < size; p++)
        out[n++] =
            (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '%') ? '_' : (char)*p;
    n += (size_t)snprintf(out + n, size - n, "\"; filename*=UTF-8''");
    for (const unsigned char *p = (const unsigned char *)filename; *p && n + 4 < size; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("!#$&+-.^_`|~", *p)) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n < size ? n : size - 1] = '\0';
}

/* Streams bytes [first, last] of fd in bounded memory. Stops short if the client is gone. */
static void stream_range(struct http_request *req, int fd, int64_t first, int64_t last)
{
    static char buffer[CONTENT_CHUNK];
    int64_t offset = first;

    while (offset <= last) {
        int64_t want = last - offset + 1;
        ssize_t got =
            pread(fd, buffer, want < CONTENT_CHUNK ? (size_t)want : CONTENT_CHUNK, offset);
        if (got <= 0 || http_send_body(req, buffer, (size_t)got) != 0)
            break; /* the head is out: all we can do is stop short */
        offset += got;
    }
}

/* Hands the whole file to the web server (X-Sendfile / X-Accel-Redirect) by
 * adding the header to headers. Returns 1 if it did, 0 if the worker streams. */
static int hand_off(const struct config *config, const char *id, char *headers, size_t size)
{
    char relative[256];
    size_t used = strlen(headers);

    if (config->download_mode == DOWNLOAD_STREAM ||
        store_relative_path(relative, sizeof relative, id) != 0)
        return 0;
    if (config->download_mode == DOWNLOAD_X_SENDFILE)
        snprintf(headers + used, size - used, "X-Sendfile: %s/%s\r\n", config->data_dir, relative);
    else /* the internal location maps to DATA/files/ */
        snprintf(headers + used, size - used, "X-Accel-Redirect: %s%s\r\n", config->x_accel_prefix,
                 relative + sizeof STORE_FILES_DIR);
    return 1;
}

/* A hand-off sends no body for HEAD, and the web server would judge If-Match,
 * If-Unmodified-Since and If-Modified-Since again by its own validators
 * (nginx's internal location fails every If-Match, its ETag being off;
 * If-Unmodified-Since it judges by whole seconds of the mtime; nginx and
 * Apache's mod_xsendfile take dates that are no HTTP-date, such as one in
 * UTC, which the worker ignores, and answer 304): those downloads the worker
 * sends. */
static int handing_off_allowed(const struct http_request *req)
{
    return !req->head && !req->if_match && !req->if_unmodified_since && !req->if_modified_since;
}

/* Opens the content of a file the caller may read, checked against its row.
 * Returns the descriptor with *file and *st set, or -1 with *error set. */
static int open_content(const struct config *config, const struct api_caller *caller,
                        const char *file_id, struct file_meta *file, struct stat *st,
                        struct api_error *error)
{
    int fd, open_errno;

    if (find_file(caller, file_id, file, error) != 0)
        return -1;
    hooks_pause_point("content_after_lookup");
    fd = store_open(config->data_dir, file->id);
    open_errno = errno;
    /* A delete (or gc) between the lookup and the open: the row goes before the
     * content, so a second lookup tells that from content that is missing. */
    if (fd < 0 && open_errno == ENOENT && find_file(caller, file_id, file, error) != 0)
        return -1;
    if (fd < 0 && error_is_shortage(open_errno)) {
        error_set_errno(error, open_errno, "opening a file's content");
        return -1;
    }
    if (fd < 0 || fstat(fd, st) != 0 || st->st_size != file->bytes) {
        error_set(error, ERR_INTERNAL, NULL, "content of %s is missing or damaged: %s", file->id,
                  fd < 0 ? strerror(open_errno) : "size differs from the database");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* The conditional headers, in RFC 9110 §13.2.2's order (a date that does not
 * parse is ignored). Returns 0 to go on, 1 having sent a 304, or -1 with a
 * 412 in *error. */
static int check_preconditions(struct http_request *req, const char *etag,
                               const char *last_modified, time_t modified, struct api_error *error)
{
    char headers[256];
    time_t since;

    if (req->if_match
            ? !http_etag_matches(req->if_match, etag, 1)
            : http_parse_date(req->if_unmodified_since, &since) == 0 && modified > since) {
        if (req->if_match)
            error_set(error, ERR_PRECONDITION_FAILED, "If-Match",
                      "If-Match names no current tag of this file (its ETag is %s)", etag);
        else
            error_set(error, ERR_PRECONDITION_FAILED, "If-Unmodified-Since",
                      "the file was last modified after If-Unmodified-Since (%s)", last_modified);
        return -1;
    }
    if (req->if_none_match
            ? http_etag_matches(req->if_none_match, etag, 0)
            : http_parse_date(req->if_modified_since, &since) == 0 && modified <= since) {
        snprintf(headers, sizeof headers, "ETag: %s\r\nLast-Modified: %s\r\n", etag, last_modified);
        http_send_head(req, 304, headers);
        return 1;
    }
    return 0;
}

/* Sends the content of fd (the whole, or the one range asked for), or hands
 * it to the web server. Returns 0, or -1 with a 416 in *error. */
static int send_content(struct http_request *req, const struct config *config,
                        const struct file_meta *file, int fd, const char *etag,
                        const char *last_modified, struct api_error *error)
{
    char headers[4096], disposition[1200];
    int64_t first = 0, last = file->bytes - 1;
    /* If-Range: the Range stands only if it holds this ETag (one strong tag;
     * a date never matches: Last-Modified is no strong validator, RFC 9110
     * §13.1.5). Else the whole content. */
    int range = req->if_range && strcmp(req->if_range, etag) != 0
                    ? 0
                    : http_parse_range(req->range, file->bytes, &first, &last);

    if (range < 0) {
        error_set(error, ERR_RANGE_NOT_SATISFIABLE, "Range",
                  "the range is outside the content (%lld bytes)", (long long)file->bytes);
        snprintf(error->extra_headers, sizeof error->extra_headers,
                 "Content-Range: bytes */%lld\r\n", (long long)file->bytes);
        return -1;
    }
    content_disposition(disposition, sizeof disposition, file->filename);
    snprintf(headers, sizeof headers,
             "Content-Type: application/jsonl\r\nContent-Disposition: %s\r\nETag: %s\r\n"
             "Last-Modified: %s\r\nAccept-Ranges: bytes\r\n",
             disposition, etag, last_modified);
    if (range > 0) {
        size_t used = strlen(headers);
        snprintf(headers + used, sizeof headers - used,
                 "Content-Range: bytes %lld-%lld/%lld\r\nContent-Length: %lld\r\n",
                 (long long)first, (long long)last, (long long)file->bytes,
                 (long long)(last - first + 1));
        http_send_head(req, 206, headers);
    } else if (handing_off_allowed(req) && hand_off(config, file->id, headers, sizeof headers)) {
        http_send_head(req, 200, headers);
        return 0;
    } else {
        size_t used = strlen(headers);
        snprintf(headers + used, sizeof headers - used, "Content-Length: %lld\r\n",
                 (long long)file->bytes);
        http_send_head(req, 200, headers);
    }
    if (!req->head)
        stream_range(req, fd, first, last);
    return 0;
}

int api_content(struct http_request *req, const struct config *config,
                const struct api_caller *caller, const char *file_id, struct api_error *error)
{
    char etag[70], last_modified[HTTP_DATE_SIZE];
    struct file_meta file;
    struct stat st;
    time_t modified, now = time(NULL);
    int fd, rc;

    if ((fd = open_content(config, caller, file_id, &file, &st, error)) < 0)
        return -1;
    snprintf(etag, sizeof etag, "\"%s\"", file.content_hash);
    /* Last-Modified is the content file's mtime, as the web servers send it
     * with a hand-off, so both ways of sending agree (never in the future). */
    modified = st.st_mtime < now ? st.st_mtime : now;
    http_format_date(modified, last_modified);
    rc = check_preconditions(req, etag, last_modified, modified, error);
    if (rc == 0)
        rc = send_content(req, config, &file, fd, etag, last_modified, error);
    close(fd);
    return rc < 0 ? -1 : 0;
}

int api_delete(struct http_request *req, const struct config *config,
               const struct api_caller *caller, const char *file_id, struct api_error *error)
{
    cJSON *body;
    int status = DB_NOT_FOUND;

    if (ids_is_file_id(file_id))
        status = db_file_delete(caller->account_id, file_id, (int64_t)time(NULL));
    if (status != DB_OK) {
        if (status == DB_NOT_FOUND)
            not_found(error, file_id);
        else
            error_set_db(error, status);
        return -1;
    }
    hooks_crash_point("delete_after_commit");
    /* The row is gone first, so nothing can serve a half-removed file. */
    if (store_remove(config->data_dir, file_id) != 0 && errno != ENOENT)
        fprintf(stderr, "files-api: request %s: removing content of %s: %s\n", req->request_id,
                file_id, strerror(errno));
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "id", file_id);
    cJSON_AddStringToObject(body, "object", "file");
    cJSON_AddBoolToObject(body, "deleted", 1);
    http_send_json(req, 200, body);
    return 0;
}
