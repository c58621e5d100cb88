#include "api.h"

#include "store.h"

#include <string.h>

/* Finds the caller from the presented key. Returns 0, or -1 with *error set:
 * AUTH_1007 no key, AUTH_1008 unknown or revoked, AUTH_1015 no inference scope. */
static int authenticate(struct http_request *req, struct api_caller *caller,
                        struct api_error *error)
{
    unsigned char hash[AUTH_HASH_SIZE];
    struct key_record key;
    size_t len;
    const char *presented = auth_presented_key(req->authorization, req->x_api_key, &len);
    int status;

    if (!presented) {
        error_set(error, ERR_AUTH_MISSING_KEY, NULL,
                  "no API key: send \"Authorization: Bearer <key>\" or \"x-api-key: <key>\"");
        return -1;
    }
    /* Several keys (a repeated header; lighttpd and Apache join the values
     * with ", ", and a key holds no comma): which one was meant is a guess. */
    if (req->credentials_repeated || memchr(presented, ',', len)) {
        error_set(error, ERR_AUTH_INVALID_KEY, NULL, "more than one API key was sent; send one");
        return -1;
    }
    if (len > AUTH_MAX_KEY || auth_hash_key(presented, len, hash) != 0) {
        error_set(error, ERR_AUTH_INVALID_KEY, NULL, "invalid API key");
        return -1;
    }
    status = db_key_find(hash, &key);
    if (status == DB_NOT_FOUND) {
        error_set(error, ERR_AUTH_INVALID_KEY, NULL, "invalid or revoked API key");
        return -1;
    }
    if (status != DB_OK) {
        error_set_db(error, status);
        return -1;
    }
    /* Copied whole: the record's account is NUL-terminated and as large. */
    _Static_assert(sizeof req->account == sizeof key.account &&
                       sizeof caller->account == sizeof key.account,
                   "account fields differ in size");
    memcpy(req->account, key.account, sizeof req->account);
    if (!auth_scopes_allow_files(key.scopes)) {
        error_set(error, ERR_AUTH_SCOPE, NULL,
                  "this API key has no inference scope; the Files API needs one");
        error_detail(error, "required_scope", cJSON_CreateString(AUTH_REQUIRED_SCOPE));
        return -1;
    }
    caller->account_id = key.account_id;
    memcpy(caller->account, key.account, sizeof caller->account);
    return 0;
}

/* GET /healthz: 200 when the database can be used (db_usable) and what an
 * upload writes is writable (store_writable). */
static void health(struct http_request *req, const struct config *config)
{
    int ok = db_usable() && store_writable(config->data_dir);
    cJSON *body = cJSON_CreateObject();

    cJSON_AddStringToObject(body, "status", ok ? "ok" : "unavailable");
    http_send_json(req, ok ? 200 : 503, body);
}

static int method_is(const struct http_request *req, const char *method)
{
    return strcmp(req->method, method) == 0;
}

/* Checks the method against the route. Returns 0, or -1 with a 405 in *error. */
static int allow_methods(const struct http_request *req, const char *allow, int get, int post,
                         int delete, struct api_error *error)
{
    if ((get && (method_is(req, "GET") || req->head)) || (post && method_is(req, "POST")) ||
        (delete &&method_is(req, "DELETE")))
        return 0;
    char method[16];

    error_set(error, ERR_METHOD_NOT_ALLOWED, NULL, "method %s is not allowed on this route",
              error_quote(method, sizeof method, req->method));
    error->allow = allow;
    return -1;
}

void api_handle(struct http_request *req, const struct config *config)
{
    struct api_error error = {0};
    struct api_caller caller;
    struct route route;
    char method[16], path[128];
    int rc = -1, metadata_read;

    route_match(req->path_ok ? req->path : req->long_path ? req->long_path : "", &route);
    /* Reading metadata: the key and the file or page come from one read
     * transaction. Not content, which may stream for long; a page (at most
     * ~40 KiB of JSON) is written within it, into the socket's buffer. */
    metadata_read = (route.kind == ROUTE_FILES || route.kind == ROUTE_FILE) &&
                    (method_is(req, "GET") || req->head);
    if (metadata_read)
        (void)db_read_begin();
    switch (route.kind) {
    case ROUTE_NONE:
        error_set(&error, ERR_NO_ROUTE, NULL, "no route for %s %s",
                  error_quote(method, sizeof method, req->method),
                  req->path_ok || req->long_path ? error_quote(path, sizeof path, req->path)
                                                 : "(malformed path)");
        break;
    case ROUTE_HEALTH:
        if (allow_methods(req, "GET, HEAD", 1, 0, 0, &error) == 0) {
            health(req, config);
            rc = 0;
        }
        break;
    case ROUTE_FILES:
        if (allow_methods(req, "GET, HEAD, POST", 1, 1, 0, &error) == 0 &&
            authenticate(req, &caller, &error) == 0)
            rc = method_is(req, "POST") ? api_upload(req, config, &caller, &error)
                                        : api_list(req, &caller, &error);
        break;
    case ROUTE_FILE:
        if (allow_methods(req, "GET, HEAD, DELETE", 1, 0, 1, &error) == 0 &&
            authenticate(req, &caller, &error) == 0)
            rc = method_is(req, "DELETE") ? api_delete(req, config, &caller, route.file_id, &error)
                                          : api_retrieve(req, &caller, route.file_id, &error);
        break;
    case ROUTE_FILE_CONTENT:
        if (allow_methods(req, "GET, HEAD", 1, 0, 0, &error) == 0 &&
            authenticate(req, &caller, &error) == 0)
            rc = api_content(req, config, &caller, route.file_id, &error);
        break;
    }
    if (metadata_read)
        db_read_end();
    if (rc != 0)
        http_send_error(req, &error);
    error_clear(&error);
}
