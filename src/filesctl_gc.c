/* filesctl gc: deletes expired files, once or every few seconds. */
#include "filesctl.h"

#include "db.h"
#include "hooks.h"
#include "ids.h"
#include "store.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GC_BATCH 100 /* expired ids listed per query */

/* Whether one of `stops` (blocked, so pending until taken) has arrived. */
static int stop_pending(const sigset_t *stops)
{
    sigset_t pending;

    if (!stops || sigpending(&pending) != 0)
        return 0;
    sigandset(&pending, &pending, stops);
    return !sigisemptyset(&pending);
}

/* Deletes what has expired by now, or until one of `stops` arrives (checked
 * between files: a pass over a million expired files would hold up a stop for
 * minutes). Returns 0, or the failure's exit status (1 if some content could
 * not be removed: its row is gone all the same). */
static int gc_pass(const struct config *config, int quiet_if_none, const sigset_t *stops)
{
    char ids[GC_BATCH][IDS_FILE_LEN + 1];
    unsigned long deleted = 0, content_left = 0;
    int64_t now = (int64_t)time(NULL);
    int count, stopped = 0;

    while (!stopped && (count = db_expired_ids(now, ids, GC_BATCH)) > 0) {
        hooks_pause_point("gc_after_listing");
        for (int i = 0; i < count && !(stopped = stop_pending(stops)); i++) {
            int status = db_file_remove(ids[i], now);
            if (status == DB_NOT_FOUND) /* deleted meanwhile (DELETE, another gc) */
                continue;
            if (status != DB_OK)
                return filesctl_db_failure("gc", status);
            if (store_remove(config->data_dir, ids[i]) != 0 && errno != ENOENT) {
                fprintf(stderr, "filesctl: removing the content of %s: %s\n", ids[i],
                        strerror(errno));
                content_left++;
            }
            deleted++;
            filesctl_progress("deleting expired files", deleted, 0);
        }
    }
    if (deleted && isatty(STDERR_FILENO))
        fputc('\n', stderr);
    if (deleted || stopped || !quiet_if_none) {
        printf("gc: expired files deleted: %lu%s\n", deleted,
               stopped ? " (stopped before the rest)" : "");
        fflush(stdout);
    }
    if (!stopped && count < 0)
        return filesctl_db_failure("gc", count);
    if (content_left) {
        fprintf(stderr,
                "filesctl: gc: the content of %lu deleted file(s) remains (fsck --repair "
                "removes it later)\n",
                content_left);
        return 1;
    }
    return 0;
}

int filesctl_gc(const struct config *config, const struct filesctl_args *args)
{
    long every = 0;
    sigset_t stops;
    struct timespec wait;

    if (filesctl_seconds_option(args, "--every", &every) != 0)
        return 2;
    if (!every)
        return gc_pass(config, 0, NULL);
    /* A pass every `every` seconds until a stop signal, which ends the wait
     * between passes or a pass between two files; a failed pass (a busy
     * database) is tried again at the next. */
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGHUP);
    sigprocmask(SIG_BLOCK, &stops, NULL);
    for (;;) {
        int stop;
        gc_pass(config, 1, &stops);
        wait = (struct timespec){.tv_sec = every};
        do
            stop = sigtimedwait(&stops, NULL, &wait);
        while (stop < 0 && errno == EINTR);
        if (stop > 0)
            return 0;
    }
}
