#include "errors.h"

#include "db.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int status;
    const char *code;
    const char *type;
} error_catalog[] = {
    [ERR_NONE] = {200, "", ""},
    [ERR_AUTH_MISSING_KEY] = {401, "AUTH_1007", "authentication_error"},
    [ERR_AUTH_INVALID_KEY] = {401, "AUTH_1008", "authentication_error"},
    [ERR_AUTH_SCOPE] = {403, "AUTH_1015", "permission_error"},
    [ERR_MALFORMED_REQUEST] = {400, "VALIDATION_4001", "invalid_request_error"},
    [ERR_INVALID_PARAMETER] = {400, "VALIDATION_4002", "invalid_request_error"},
    [ERR_NO_ROUTE] = {404, "VALIDATION_4004", "invalid_request_error"},
    [ERR_METHOD_NOT_ALLOWED] = {405, "VALIDATION_4005", "invalid_request_error"},
    [ERR_INVALID_PURPOSE] = {400, "VALIDATION_4007", "invalid_request_error"},
    [ERR_FILE_TOO_LARGE] = {413, "VALIDATION_4016", "invalid_request_error"},
    [ERR_RANGE_NOT_SATISFIABLE] = {416, "VALIDATION_4002", "invalid_request_error"},
    [ERR_PRECONDITION_FAILED] = {412, "VALIDATION_4002", "invalid_request_error"},
    [ERR_FILE_NOT_FOUND] = {404, "INFERENCE_3302", "invalid_request_error"},
    [ERR_INVALID_JSONL] = {400, "INFERENCE_3303", "invalid_request_error"},
    [ERR_INTERNAL] = {500, "SYSTEM_9001", "server_error"},
    [ERR_BUSY] = {503, "SYSTEM_9003", "server_error"},
    [ERR_NO_SPACE] = {507, "SYSTEM_9007", "server_error"},
};

void error_set(struct api_error *e, enum error_kind kind, const char *param, const char *format,
               ...)
{
    va_list ap;

    error_clear(e);
    e->kind = kind;
    e->param = param;
    va_start(ap, format);
    vsnprintf(e->message, sizeof e->message, format, ap);
    va_end(ap);
}

void error_detail(struct api_error *e, const char *name, cJSON *value)
{
    if (!e->details)
        e->details = cJSON_CreateObject();
    if (e->details)
        cJSON_AddItemToObject(e->details, name, value);
    else
        cJSON_Delete(value);
}

void error_set_db(struct api_error *e, int db_status)
{
    if (db_status == DB_BUSY)
        error_set(e, ERR_BUSY, NULL, "the database is busy; retry shortly");
    else if (db_status == DB_FULL)
        error_set(e, ERR_NO_SPACE, NULL, "no space left on the server's disk");
    else
        error_set(e, ERR_INTERNAL, NULL, "database error");
}

int error_is_shortage(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS;
}

void error_set_errno(struct api_error *e, int err, const char *what)
{
    if (error_is_shortage(err)) {
        fprintf(stderr, "files-api: %s: %s (answered 503)\n", what, strerror(err));
        error_set(e, ERR_BUSY, NULL, "the server is short of %s; retry shortly",
                  err == ENOMEM || err == ENOBUFS ? "memory" : "open files");
    } else {
        error_set(e, ERR_INTERNAL, NULL, "%s: %s", what, strerror(err));
    }
}

void error_clear(struct api_error *e)
{
    cJSON_Delete(e->details);
    e->kind = ERR_NONE;
    e->param = NULL;
    e->message[0] = '\0';
    e->details = NULL;
    e->allow = NULL;
    e->extra_headers[0] = '\0';
}

const char *error_quote(char *out, size_t out_size, const char *text)
{
    size_t n = 0;

    for (; *text && n + 1 < out_size; text++)
        out[n++] = (*text >= 0x20 && *text < 0x7f) ? *text : '?';
    out[n] = '\0';
    if (*text && out_size >= 4)
        memcpy(out + out_size - 4, "...", 4);
    return out;
}

int error_http_status(enum error_kind kind)
{
    return error_catalog[kind].status;
}

const char *error_code(enum error_kind kind)
{
    return error_catalog[kind].code;
}

const char *error_type(enum error_kind kind)
{
    return error_catalog[kind].type;
}
