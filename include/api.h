/* The handlers: one request in, one response out. The path of a request reads
 * accept (worker) -> api_handle: route -> authenticate -> handler -> response. */
#ifndef API_H
#define API_H

#include <stdint.h>

#include "config.h"
#include "db.h"
#include "errors.h"
#include "http.h"

/* Who is calling: the account the key belongs to. */
struct api_caller {
    int64_t account_id;
    char account[128];
};

/* Handles one request completely and writes its response. */
void api_handle(struct http_request *req, const struct config *config);

/* The handlers (api_files.c, api_upload.c). Each either writes a success
 * response and returns 0, or fills *error (nothing written) and returns -1. */
int api_upload(struct http_request *req, const struct config *config,
               const struct api_caller *caller, struct api_error *error);
int api_list(struct http_request *req, const struct api_caller *caller, struct api_error *error);
int api_retrieve(struct http_request *req, const struct api_caller *caller, const char *file_id,
                 struct api_error *error);
int api_content(struct http_request *req, const struct config *config,
                const struct api_caller *caller, const char *file_id, struct api_error *error);
int api_delete(struct http_request *req, const struct config *config,
               const struct api_caller *caller, const char *file_id, struct api_error *error);

/* The file object of SPEC: written into w (or only its members, into an
 * object the caller has begun), or sent as a 200 response. */
void api_write_file(struct json_writer *w, const struct file_meta *file);
void api_write_file_members(struct json_writer *w, const struct file_meta *file);
void api_send_file(struct http_request *req, const struct file_meta *file);

#endif
