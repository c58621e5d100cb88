/* files-fcgi: one FastCGI worker. spawn-fcgi hands it the listening socket as
 * fd 0; it accepts requests one at a time until told to stop. */
#include "api.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "store.h"

#include <fcgiapp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STALE_TEMP_SECONDS 3600 /* named temp files untouched this long belong to dead workers */

/* Graceful stop: SIGTERM (systemd, a second multiwatch signal) or SIGUSR1
 * (multiwatch's "nice" signal). While a request is in hand the handler only
 * sets a flag, and SA_RESTART resumes the read or write it interrupted: the
 * request finishes, then the worker exits. While idle in accept, the handler
 * exits at once. (Blocking the signals around each request would cost two
 * system calls per request.) */
static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t idle;
static char stop_message[96];
static size_t stop_message_len;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
    if (idle) {
        ssize_t ignored = write(STDERR_FILENO, stop_message, stop_message_len);
        (void)ignored;
        _exit(0);
    }
}

static void install_signals(void)
{
    struct sigaction action = {0};

    stop_message_len =
        (size_t)snprintf(stop_message, sizeof stop_message,
                         "files-fcgi: worker %d stopping on a signal while idle\n", (int)getpid());
    action.sa_handler = on_stop_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGTERM);
    sigaddset(&action.sa_mask, SIGUSR1);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGUSR1, &action, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-response is an error return, not a death */
}

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
    umask(0077); /* content, database and temp files are the service's alone */
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
    install_signals();
    if (FCGX_Init() != 0 || FCGX_InitRequest(&fcgi, 0, 0) != 0) {
        fprintf(stderr, "files-fcgi: FastCGI initialisation failed\n");
        return 1;
    }
    http_request_memory_init();
    fprintf(stderr, "files-fcgi: worker %d started, data in %s\n", (int)getpid(), config.data_dir);
    for (;;) {
        struct http_request req;
        int accepted;

        idle = 1;
        if (stop_requested)
            break;
        accepted = FCGX_Accept_r(&fcgi);
        idle = 0;
        if (accepted < 0)
            break;
        http_request_init(&req, &fcgi);
        api_handle(&req, &config);
        http_request_finish(&req);
        http_request_memory_reset();
        served++;
        if (config.max_requests && served >= config.max_requests)
            break;
    }
    fprintf(stderr, "files-fcgi: worker %d stopping after %lu requests\n", (int)getpid(), served);
    db_close();
    return 0;
}
