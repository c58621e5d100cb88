#include "pipeline.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NO_FAILURE UINT64_MAX

/* Slot seq % PIPELINE_SLOTS holds the job's seq-th slot. The producer fills
 * slot `filled` while no stage still needs its previous use; stage i has
 * finished slots [0, consumed[i]). Everything shared is under lock. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t work; /* a slot was filled, or the threads must stop */
    pthread_cond_t done; /* a stage finished a slot */
    unsigned char *buffers;
    size_t len[PIPELINE_SLOTS];
    uint64_t filled;
    uint64_t consumed[PIPELINE_STAGES];
    uint64_t fail_seq[PIPELINE_STAGES];
    const struct pipeline_job *job;
    int failed, cancelled;
    int threads;        /* 1: the stage threads run; 0: not started; -1: none, run inline */
    int active;         /* a job has begun and not finished */
    size_t fill;        /* producer only: bytes in slot `filled` so far */
    size_t inline_left; /* producer only: bytes still to run inline */
    int handed;         /* producer only: a slot of this job went to the threads */
} pl = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .work = PTHREAD_COND_INITIALIZER,
        .done = PTHREAD_COND_INITIALIZER};

static unsigned char *slot_data(uint64_t seq)
{
    return pl.buffers + (size_t)(seq % PIPELINE_SLOTS) * PIPELINE_SLOT_BYTES;
}

static uint64_t first_failure(void)
{
    uint64_t first = NO_FAILURE;
    for (int i = 0; i < PIPELINE_STAGES; i++)
        if (pl.fail_seq[i] < first)
            first = pl.fail_seq[i];
    return first;
}

/* Called with the lock held; runs stage i over the bytes of the seq-th piece
 * of the stream without it. The caller then counts the piece as consumed. */
static void run_stage_on(int i, uint64_t seq, const unsigned char *data, size_t len)
{
    const struct pipeline_job *job = pl.job;
    int skip = pl.cancelled || seq > first_failure();
    int rc = 0;

    pthread_mutex_unlock(&pl.lock);
    if (!skip)
        rc = job->stage[i](job->ctx[i], data, len);
    pthread_mutex_lock(&pl.lock);
    if (rc != 0 && seq < pl.fail_seq[i]) {
        pl.fail_seq[i] = seq;
        pl.failed = 1;
    }
}

static void run_stage(int i, uint64_t seq)
{
    run_stage_on(i, seq, slot_data(seq), pl.len[seq % PIPELINE_SLOTS]);
}

/* Runs every stage over data in the caller's thread, as the next piece of the
 * stream (counted as filled once done, so no thread takes it). */
static void run_here(const unsigned char *data, size_t len)
{
    pthread_mutex_lock(&pl.lock);
    for (int i = 0; i < PIPELINE_STAGES; i++)
        run_stage_on(i, pl.filled, data, len);
    for (int i = 0; i < PIPELINE_STAGES; i++)
        pl.consumed[i]++;
    pl.filled++;
    pthread_mutex_unlock(&pl.lock);
}

static void *stage_thread(void *arg)
{
    int i = (int)(intptr_t)arg;

    pthread_mutex_lock(&pl.lock);
    for (;;) {
        while (pl.consumed[i] == pl.filled && pl.threads != -1)
            pthread_cond_wait(&pl.work, &pl.lock);
        if (pl.threads == -1)
            break; /* a sibling could not be started: everything runs inline */
        run_stage(i, pl.consumed[i]);
        pl.consumed[i]++;
        pthread_cond_broadcast(&pl.done);
    }
    pthread_mutex_unlock(&pl.lock);
    return NULL;
}

/* Starts one thread per stage, with every signal blocked in them (the
 * worker's stop signals belong to its main thread). */
static void start_threads(void)
{
    sigset_t all, old;
    pthread_attr_t attr;
    int started = 0;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pl.threads = 1;
    for (int i = 0; i < PIPELINE_STAGES; i++) {
        pthread_t thread;
        if (pthread_create(&thread, &attr, stage_thread, (void *)(intptr_t)i) != 0)
            break;
        started++;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started < PIPELINE_STAGES) {
        pthread_mutex_lock(&pl.lock);
        pl.threads = -1;
        pthread_cond_broadcast(&pl.work);
        pthread_mutex_unlock(&pl.lock);
    }
}

static int take_ring(void)
{
    if (!pl.buffers)
        pl.buffers = malloc((size_t)PIPELINE_SLOTS * PIPELINE_SLOT_BYTES);
    return pl.buffers ? 0 : -1;
}

int pipeline_prepare(void)
{
    if (!pl.buffers) {
        if (take_ring() != 0)
            return -1;
        /* not 0: the compiler may turn malloc + memset 0 into calloc, which
         * leaves the pages untouched */
        memset(pl.buffers, 1, (size_t)PIPELINE_SLOTS * PIPELINE_SLOT_BYTES);
    }
    if (pl.threads == 0)
        start_threads();
    return pl.threads == 1 ? 0 : 1;
}

int pipeline_begin(const struct pipeline_job *job)
{
    if (take_ring() != 0)
        return -1;
    pthread_mutex_lock(&pl.lock);
    pl.job = job;
    pl.filled = 0;
    for (int i = 0; i < PIPELINE_STAGES; i++) {
        pl.consumed[i] = 0;
        pl.fail_seq[i] = NO_FAILURE;
    }
    pl.failed = pl.cancelled = 0;
    pl.active = 1;
    pthread_mutex_unlock(&pl.lock);
    pl.fill = 0;
    pl.inline_left = job->inline_bytes;
    pl.handed = 0;
    return 0;
}

/* Hands the slot being filled to the stages: to their threads, or, without
 * threads (or for a stream of one slot, at finish), runs them here. */
static void dispatch(int here)
{
    if (here) {
        run_here(slot_data(pl.filled), pl.fill);
    } else {
        pthread_mutex_lock(&pl.lock);
        pl.len[pl.filled % PIPELINE_SLOTS] = pl.fill;
        pl.filled++;
        pthread_cond_broadcast(&pl.work);
        pthread_mutex_unlock(&pl.lock);
        pl.handed = 1;
    }
    pl.fill = 0;
}

/* Waits until slot `filled` is free: every stage is done with its last use. */
static int wait_for_slot(void)
{
    int failed;

    pthread_mutex_lock(&pl.lock);
    for (;;) {
        uint64_t slowest = pl.consumed[0];
        for (int i = 1; i < PIPELINE_STAGES; i++)
            if (pl.consumed[i] < slowest)
                slowest = pl.consumed[i];
        if (pl.filled - slowest < PIPELINE_SLOTS || pl.failed)
            break;
        pthread_cond_wait(&pl.done, &pl.lock);
    }
    failed = pl.failed;
    pthread_mutex_unlock(&pl.lock);
    return failed;
}

int pipeline_push(const void *data, size_t len)
{
    const unsigned char *p = data;

    if (pl.inline_left > 0 && len > 0) {
        pl.inline_left = len < pl.inline_left ? pl.inline_left - len : 0;
        run_here(p, len);
        len = 0;
    }
    while (len > 0) {
        size_t n;
        /* A full slot goes once more bytes come: a stream of one slot stays here. */
        if (pl.fill == PIPELINE_SLOT_BYTES) {
            if (pl.threads == 0)
                start_threads();
            dispatch(pl.threads != 1);
        }
        if (pl.fill == 0 && wait_for_slot())
            return 1;
        n = PIPELINE_SLOT_BYTES - pl.fill;
        if (n > len)
            n = len;
        memcpy(slot_data(pl.filled) + pl.fill, p, n);
        pl.fill += n;
        p += n;
        len -= n;
    }
    pthread_mutex_lock(&pl.lock);
    int failed = pl.failed;
    pthread_mutex_unlock(&pl.lock);
    return failed;
}

/* Waits until every stage has finished (or skipped) every slot; ends the job. */
static void drain(void)
{
    pthread_mutex_lock(&pl.lock);
    for (int i = 0; i < PIPELINE_STAGES; i++)
        while (pl.consumed[i] != pl.filled)
            pthread_cond_wait(&pl.done, &pl.lock);
    pl.active = 0;
    pthread_mutex_unlock(&pl.lock);
}

int pipeline_finish(void)
{
    int stage = -1;
    uint64_t first;

    if (!pl.active)
        return -1;
    if (pl.fill > 0)
        dispatch(!pl.handed || pl.threads != 1);
    drain();
    first = first_failure();
    for (int i = 0; i < PIPELINE_STAGES; i++)
        if (first != NO_FAILURE && pl.fail_seq[i] == first) {
            stage = i;
            break;
        }
    return stage;
}

void pipeline_abort(void)
{
    if (!pl.active)
        return;
    pthread_mutex_lock(&pl.lock);
    pl.cancelled = 1;
    pthread_mutex_unlock(&pl.lock);
    drain();
    pl.fill = 0;
}
