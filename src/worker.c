/* files-fcgi: one FastCGI worker. spawn-fcgi hands it the listening socket as
 * fd 0; it accepts requests one at a time until told to stop. */
#include "api.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "linger.h"
#include "pipeline.h"
#include "route.h"
#include "store.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STALE_TEMP_SECONDS 3600 /* named temp files untouched this long belong to dead workers */
#define PARAMS_SECONDS 5        /* a web server sends a request's parameters at once */
#define START_RETRY_SECONDS 1   /* the pause before a worker that could not start exits */
#define LEAVE_TO_OTHERS_MS 100  /* what such a worker leaves a request to the others */
/* multiwatch (-t 1000) takes a worker that exits within 1 s of its start for
 * a failed start, and gives up on a slot after -r of those in a row: a worker
 * that served max_requests sooner goes on until it has lived this long. */
#define RECYCLE_MIN_SECONDS 2
/* Connections a web server may keep open to one worker between requests
 * (FCGI_KEEP_CONN). One more is never kept: it takes a connection when all
 * of these are, and closes it after its request. */
#define KEPT_MAX 64
#define LISTENING UINT32_MAX /* epoll's tag for the listening socket */
/* Descriptors a request needs beyond those the worker holds, at most: an
 * upload's connection, its temporary file, the validator's scratch file, and
 * the directory store_commit fsyncs (with fewer, every upload is a 503). */
#define REQUEST_DESCRIPTORS 4

static FCGX_Request connections[KEPT_MAX + 1];
static int watched[KEPT_MAX + 1]; /* the connection's fd as epoll watches it, else -1 */
static int kept_count;            /* connections watched */

/* Graceful stop: SIGTERM (systemd, a second multiwatch signal) or SIGUSR1
 * (multiwatch's "nice" signal). Both stay blocked except while the worker
 * waits for a connection: there a stop ends the wait. One that comes once a
 * connection is ready (libfcgi's accept also reads the request's parameters)
 * waits until that request is answered. (The old way, exiting at once from the
 * handler while idle, dropped a request caught in libfcgi's accept.) */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

/* Sets *waiting to the signal mask to wait with (the stop signals open). */
static void install_signals(sigset_t *waiting)
{
    struct sigaction action = {0};
    sigset_t stops;

    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGUSR1, &action, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-response is an error return, not a death */
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGUSR1);
    sigprocmask(SIG_BLOCK, &stops, waiting);
    sigdelset(waiting, SIGTERM);
    sigdelset(waiting, SIGUSR1);
}

/* The connection to take a new one in: the first not in use. The last is
 * never kept, so there is always one. */
static int free_connection(void)
{
    int i = 0;

    while (i < KEPT_MAX && connections[i].ipcFd >= 0)
        i++;
    return i;
}

/* After a request, its connection, if the web server keeps it open, is
 * watched for the next one beside the listening socket: a worker waiting on
 * one connection alone would leave new ones queued for as long as the web
 * server keeps that one idle. */
static void watch_kept(int epoll_fd, int i)
{
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    FCGX_Request *c = &connections[i];

    if (c->ipcFd < 0 || watched[i] == c->ipcFd)
        return;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->ipcFd, &event) != 0) {
        perror("files-fcgi: watching a kept connection");
        /* A plain close: libfcgi's would wait up to 2 s for an end of input
         * that a web server keeping the connection never sends. */
        FCGX_Detach(c);
        FCGX_Free(c, 1);
        return;
    }
    watched[i] = c->ipcFd;
    kept_count++;
}

/* A connection libfcgi closed is no longer watched (close removed it). */
static void forget_closed(int i)
{
    if (connections[i].ipcFd < 0 && watched[i] >= 0) {
        watched[i] = -1;
        kept_count--;
    }
}

/* Waits for the next request: a new connection on the listening socket
 * (fd 0) or the next request on a kept one, both in epoll_fd. Returns the
 * connection to take it from, or -1 when the worker must stop: on a stop
 * signal, or (draining) when nothing is ready. A wait returns what is ready
 * without delivering a pending stop signal, which waits for a wait that
 * finds nothing: a stopping worker first answers every connection already
 * queued. */
static int wait_for_request(int epoll_fd, int draining, const sigset_t *waiting)
{
    struct epoll_event event;

    while (!stop_requested) {
        int ready = epoll_pwait(epoll_fd, &event, 1, draining ? 0 : -1, waiting);
        if (ready > 0)
            return event.data.u32 == LISTENING ? free_connection() : (int)event.data.u32;
        if (ready == 0)
            return -1;
        if (errno != EINTR) {
            perror("files-fcgi: waiting for a request");
            return -1;
        }
    }
    return -1;
}

/* Bounds the time a read on fd may block (0: no bound). */
static void limit_reads(int fd, int seconds)
{
    struct timeval limit = {.tv_sec = seconds};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
}

/* Takes the next request. libfcgi's accept also reads the request's
 * parameters, with the stop signals shut: the worker accepts the connection
 * itself and bounds those reads, so a web server that stalls there cannot
 * hold the worker past a stop. Returns 1 with a request, 0 if there was none
 * after all (another worker took the connection, or it closed or stalled),
 * -1 on an error that ends the worker. */
static int take_request(FCGX_Request *fcgi)
{
    int accepted;

    if (fcgi->ipcFd < 0) {
        static int short_of_resources; /* said once until an accept succeeds */
        int connection = accept4(0, NULL, NULL, SOCK_CLOEXEC);
        if (connection < 0 && error_is_shortage(errno)) {
            /* The connection waits in the backlog while the lingering closes
             * or other processes free some: ending the worker would drop the
             * connections it keeps. The pause takes a stop signal (the queue
             * stays ready, so the wait for a request would never take it). */
            sigset_t stops_open;
            if (!short_of_resources)
                fprintf(stderr, "files-fcgi: accepting a request: %s (trying again every 100 ms)\n",
                        strerror(errno));
            short_of_resources = 1;
            sigprocmask(SIG_SETMASK, NULL, &stops_open);
            sigdelset(&stops_open, SIGTERM);
            sigdelset(&stops_open, SIGUSR1);
            ppoll(NULL, 0, &(struct timespec){.tv_nsec = 100 * 1000 * 1000}, &stops_open);
            return 0;
        }
        if (connection < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED ||
                           errno == EINTR
                       ? 0
                       : -1;
        short_of_resources = 0;
        fcgi->ipcFd = connection;
        fcgi->keepConnection = 1; /* or FCGX_Accept_r closes it as the last request's */
    }
    limit_reads(fcgi->ipcFd, PARAMS_SECONDS);
    accepted = FCGX_Accept_r(fcgi);
    if (accepted == -EBADF)
        return 0; /* libfcgi dropped the connection (see FCGX_InitRequest) */
    if (accepted < 0) {
        errno = -accepted;
        return -1;
    }
    return 1;
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: files-fcgi [--config PATH] [--data-dir DIR]\n"
                 "Runs one FastCGI worker on the socket passed as fd 0 (spawn-fcgi).\n"
                 "Environment: FILES_API_CONFIG (the configuration file), and FILES_API_<KEY>\n"
                 "for any configuration key (FILES_API_DATA_DIR, FILES_API_DOWNLOAD_MODE, ...).\n");
}

/* Answers one queued request, if any, with 503: the worker cannot serve. */
static void answer_unavailable(void)
{
    FCGX_Request fcgi;
    struct http_request req;
    struct api_error error = {0};
    struct route route;

    FCGX_InitRequest(&fcgi, -1, 0);
    if (take_request(&fcgi) != 1)
        return;
    http_request_init(&req, &fcgi);
    route_match(req.path_ok ? req.path : "", &route); /* as api_handle does */
    if (route.kind == ROUTE_HEALTH) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "status", "unavailable");
        http_send_json(&req, 503, body);
    } else {
        error_set(&error, ERR_BUSY, NULL,
                  "the service cannot start (its log says why); try again later");
        http_send_error(&req, &error);
        error_clear(&error);
    }
    fcgi.keepConnection = 0;
    http_request_finish(&req);
}

/* Whether the process's own limit (RLIMIT_NOFILE, not the system's table,
 * whose shortage passes) leaves it REQUEST_DESCRIPTORS more descriptors. */
static int descriptors_to_spare(void)
{
    int fds[REQUEST_DESCRIPTORS], got = 0, saved = 0;

    while (got < REQUEST_DESCRIPTORS && (fds[got] = dup(0)) >= 0) /* (fd 0: the socket) */
        got++;
    if (got < REQUEST_DESCRIPTORS)
        saved = errno;
    for (int i = 0; i < got; i++)
        close(fds[i]);
    return got == REQUEST_DESCRIPTORS || saved != EMFILE;
}

/* A worker that cannot start (configuration, data directory, database)
 * exits after a pause: multiwatch restarts it at once and has no backoff of
 * its own, so a lasting fault would restart it a thousand times a second and
 * then leave the pool empty for good. Paced, the pool retries each second and
 * serves again when the fault is gone. Meanwhile what comes is answered 503
 * (Retry-After): left queued with no worker able to take it, a request (a
 * health check too) would wait for as long as the fault lasts. */
static int start_failed(void)
{
    struct timespec until, now;
    struct pollfd listener = {.fd = 0, .events = POLLIN};

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += START_RETRY_SECONDS;
    if (FCGX_Init() != 0 || fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK) != 0) {
        sleep(START_RETRY_SECONDS);
        return 1;
    }
    /* (A body still coming must not hold the pause open: its close is the
     * closer thread's, bounded, if there is one.) */
    if (!linger_available())
        linger_start();
    for (;;) {
        long left_ms;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left_ms = (until.tv_sec - now.tv_sec) * 1000 + (until.tv_nsec - now.tv_nsec) / 1000000;
        if (left_ms <= 0)
            break;
        if (poll(&listener, 1, (int)left_ms) > 0) {
            /* Other workers may be well: one that is idle takes the
             * connection meanwhile, and only what none takes gets the 503. */
            nanosleep(&(struct timespec){.tv_nsec = LEAVE_TO_OTHERS_MS * 1000000L}, NULL);
            answer_unavailable();
        }
    }
    linger_wait();
    return 1;
}

/* start_failed once the database (and perhaps the epoll set) is open: their
 * descriptors are given back first, else a worker whose RLIMIT_NOFILE they
 * fill cannot accept the connection it would answer 503, and every request
 * waits for as long as the limit stands. */
static int start_failed_open(int epoll_fd)
{
    if (epoll_fd >= 0)
        close(epoll_fd);
    db_close();
    return start_failed();
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *data_dir = NULL;
    struct config config;
    sigset_t waiting;
    struct stat listener;
    struct epoll_event listening = {0};
    int epoll_fd, status = 0;
    char err[512], absolute[PATH_MAX];
    unsigned long served = 0;
    struct timespec started;

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
    if (fstat(0, &listener) != 0 || !S_ISSOCK(listener.st_mode)) {
        fprintf(stderr, "files-fcgi: fd 0 is not a listening socket (start it with spawn-fcgi)\n");
        return 1;
    }
    umask(0077);                /* content, database and temp files are the service's alone */
    http_request_memory_init(); /* (a worker that cannot start answers requests too) */
    if (config_resolve(&config, config_path, data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "files-fcgi: config: %s\n", err);
        return start_failed();
    }
    config_warn_unknown_environment(stderr, "files-fcgi");
    if (store_init(config.data_dir, STALE_TEMP_SECONDS) != 0) {
        if (errno == EXDEV)
            fprintf(stderr,
                    "files-fcgi: %s/" STORE_TMP_DIR " and %s/" STORE_FILES_DIR
                    " are on different mounts: an upload is made in the one and "
                    "linked into the other (mount the volume at the data directory)\n",
                    config.data_dir, config.data_dir);
        else
            perror("files-fcgi: data directory");
        return start_failed();
    }
    /* Absolute from here on: X-Sendfile paths and the access log need it. */
    if (!realpath(config.data_dir, absolute) || strlen(absolute) >= sizeof config.data_dir) {
        perror("files-fcgi: data directory");
        return start_failed();
    }
    memcpy(config.data_dir, absolute, strlen(absolute) + 1);
    if (db_open(config.data_dir, config.db_busy_timeout_ms) != DB_OK) {
        fprintf(stderr, "files-fcgi: cannot open the database in %s\n", config.data_dir);
        return start_failed();
    }
    /* Else every write would be a 500 for as long as this worker lives, also
     * once the database can be written again (while /healthz said ok). */
    if (db_read_only()) {
        fprintf(stderr,
                "files-fcgi: %s/" DB_FILENAME " can only be read (a read-only file or mount, or "
                "another user's): writes would fail\n",
                config.data_dir);
        return start_failed_open(-1);
    }
    install_signals(&waiting);
    /* No listening socket for libfcgi (-1): after a connection that closed
     * before its parameters, it would accept the next one itself and wait for
     * its parameters without the bound take_request sets. Now that accept
     * fails at once (EBADF) and the worker takes the next connection itself. */
    if (FCGX_Init() != 0) {
        fprintf(stderr, "files-fcgi: FastCGI initialisation failed\n");
        return start_failed_open(-1);
    }
    for (int i = 0; i <= KEPT_MAX; i++) {
        FCGX_InitRequest(&connections[i], -1, 0);
        watched[i] = -1;
    }
    /* One idle worker wakes per connection (EPOLLEXCLUSIVE; sometimes more):
     * one that loses the race to accept gets EAGAIN, not a wait in accept with
     * the stop signals shut. */
    listening.events = EPOLLIN | EPOLLEXCLUSIVE;
    listening.data.u32 = LISTENING;
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, 0, &listening) != 0 ||
        fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK) != 0) {
        perror("files-fcgi: listening socket");
        return start_failed_open(epoll_fd);
    }
    /* Memory taken now, not by the first big upload, and one malloc arena
     * for all threads (the validator's thread reuses what a small upload
     * freed): a worker's footprint does not depend on what it stores. */
    mallopt(M_ARENA_MAX, 1);
    switch (pipeline_prepare()) {
    case -1:
        fprintf(stderr, "files-fcgi: out of memory for the upload pipeline\n");
        return start_failed_open(epoll_fd);
    case 1:
        fprintf(stderr, "files-fcgi: no threads for the upload pipeline: uploads run in one "
                        "thread\n");
        break;
    }
    if (linger_start() != 0)
        fprintf(stderr,
                "files-fcgi: no thread for lingering closes: a refused body holds the "
                "worker up to %d s\n",
                LINGER_SECONDS);
    /* Started under an RLIMIT_NOFILE that its own descriptors fill, it
     * waited for room to accept a connection that never came: every request
     * (a health check too) hung, for as long as the limit stood. A worker
     * short of them later answers 503 (or waits at accept) instead. */
    if (!descriptors_to_spare()) {
        struct rlimit limit = {0};
        getrlimit(RLIMIT_NOFILE, &limit);
        fprintf(stderr,
                "files-fcgi: RLIMIT_NOFILE (%llu) leaves fewer than %d descriptors for a request "
                "once the worker has started: raise it (ulimit -n, systemd's LimitNOFILE=)\n",
                (unsigned long long)limit.rlim_cur, REQUEST_DESCRIPTORS);
        return start_failed_open(epoll_fd); /* (room to answer 503 meanwhile) */
    }
    fprintf(stderr, "files-fcgi: worker %d started, data in %s\n", (int)getpid(), config.data_dir);
    clock_gettime(CLOCK_MONOTONIC, &started);
    for (int current = 0, just_served = 0, draining = 0;;) {
        struct http_request req;
        FCGX_Request *fcgi;
        int taken;

        /* After a request on a connection now closed, the next connection
         * may already be queued: try to take it before waiting (one system
         * call fewer per request under load; a stop signal still waits for a
         * wait that finds nothing). Not with connections kept: their
         * requests would wait for as long as new connections come. */
        if (just_served && connections[current].ipcFd < 0 && !kept_count && !draining) {
            current = free_connection();
        } else {
            if (just_served)
                watch_kept(epoll_fd, current);
            if ((current = wait_for_request(epoll_fd, draining, &waiting)) < 0) {
                status = stop_requested || draining ? 0 : 1;
                break;
            }
        }
        fcgi = &connections[current];
        taken = take_request(fcgi);
        forget_closed(current);
        just_served = 0;
        if (taken == 0)
            continue;
        if (taken < 0) {
            perror("files-fcgi: accepting a request");
            status = 1;
            break;
        }
        http_request_init(&req, fcgi);
        /* A body may be slow (the web server bounds that): its reads are not
         * bounded here. A request that declares none (lighttpd's GETs) keeps
         * the bound, which saves a system call: nothing more is read of it. */
        if (req.content_length != 0)
            limit_reads(fcgi->ipcFd, 0);
        api_handle(&req, &config);
        /* Recycling: no new connections; the requests already waiting on
         * kept ones are answered, each closing its connection with the
         * response (kept, it would invite the next request), and the worker
         * exits once none is left. */
        if (!draining && config.max_requests && served + 1 >= config.max_requests &&
            seconds_since(&started) >= RECYCLE_MIN_SECONDS) {
            draining = 1;
            epoll_ctl(epoll_fd, EPOLL_CTL_DEL, 0, NULL);
        }
        if (draining || current == KEPT_MAX)
            fcgi->keepConnection = 0; /* closed with the response */
        http_request_finish(&req);
        forget_closed(current);
        http_request_memory_reset();
        served++;
        just_served = 1;
    }
    fprintf(stderr, "files-fcgi: worker %d stopping after %lu requests\n", (int)getpid(), served);
    linger_wait();
    db_close();
    return status;
}
