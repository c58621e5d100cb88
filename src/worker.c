/* files-fcgi: one FastCGI worker. spawn-fcgi hands it the listening socket as
 * fd 0; it accepts requests one at a time until told to stop. */
#include "api.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "store.h"

#include <fcgiapp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STALE_TEMP_SECONDS 3600 /* named temp files untouched this long belong to dead workers */

static void usage(FILE *out)
{
    fprintf(out, "usage: files-fcgi [--config PATH] [--data-dir DIR]\n"
                 "Runs one FastCGI worker on the socket passed as fd 0 (spawn-fcgi).\n"
                 "Environment: FILES_API_CONFIG, FILES_API_DATA_DIR.\n");
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *data_dir = NULL;
    struct config config;
    FCGX_Request fcgi;
    char err[512], absolute[PATH_MAX];
    unsigned long served = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (!strcmp(argv[i], "--data-dir") && i + 1 < argc) {
            data_dir = argv[++i];
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (config_resolve(&config, config_path, data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "files-fcgi: config: %s\n", err);
        return 1;
    }
    if (store_init(config.data_dir, STALE_TEMP_SECONDS) != 0) {
        perror("files-fcgi: data directory");
        return 1;
    }
    /* Absolute from here on: X-Sendfile paths and the access log need it. */
    if (!realpath(config.data_dir, absolute) || strlen(absolute) >= sizeof config.data_dir) {
        perror("files-fcgi: data directory");
        return 1;
    }
    memcpy(config.data_dir, absolute, strlen(absolute) + 1);
    if (db_open(config.data_dir, config.db_busy_timeout_ms) != DB_OK) {
        fprintf(stderr, "files-fcgi: cannot open the database in %s\n", config.data_dir);
        return 1;
    }
    if (FCGX_Init() != 0 || FCGX_InitRequest(&fcgi, 0, 0) != 0) {
        fprintf(stderr, "files-fcgi: FastCGI initialisation failed\n");
        return 1;
    }
    fprintf(stderr, "files-fcgi: worker %d started, data in %s\n", (int)getpid(),
            config.data_dir);
    /* libfcgi turns SIGTERM/SIGUSR1 into a shutdown flag: the request in hand
     * finishes, then FCGX_Accept_r returns -1. */
    while (FCGX_Accept_r(&fcgi) >= 0) {
        struct http_request req;

        http_request_init(&req, &fcgi);
        api_handle(&req, &config);
        http_log_access(&req);
        FCGX_Finish_r(&fcgi);
        served++;
        if (config.max_requests && served >= config.max_requests)
            break;
    }
    fprintf(stderr, "files-fcgi: worker %d stopping after %lu requests\n", (int)getpid(), served);
    db_close();
    return 0;
}
