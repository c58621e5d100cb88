/* Runs the stages of one stream at once: the caller pushes bytes, which are
 * copied into a ring of slots, and every stage sees every slot, in order, each
 * on its own thread. An upload uses it to validate on one core while it
 * hashes and writes on another and reads the next bytes on a third, instead
 * of doing the three one after the other.
 *
 * A slot is reused once every stage is done with it. A stage that fails (its
 * function returns nonzero) stops the job: later slots are skipped, and
 * pipeline_finish names the stage whose failure came first in the stream
 * (the earlier slot; at the same slot, the lower stage index).
 *
 * One job at a time per process (a worker handles one request at a time).
 * The ring and the threads are taken once, by pipeline_prepare or else on
 * first use, and live as long as the process. The
 * first inline_bytes of a stream are run in the caller's thread, as pushed
 * and without a copy: a small file is done before hand-offs would pay off,
 * and when many uploads run at once the cores are busy anyway. A stream that
 * fits in one slot after that never wakes the threads either: its stages run
 * in the caller's thread at pipeline_finish. Without threads (pthread_create
 * failed) every slot is run in the caller's thread. */
#ifndef PIPELINE_H
#define PIPELINE_H

#include <stddef.h>

#define PIPELINE_STAGES 2
#define PIPELINE_SLOTS 4
#define PIPELINE_SLOT_BYTES (256 << 10)

struct pipeline_job {
    /* Each stage gets every slot's bytes in stream order; returns 0, or
     * nonzero to fail the job. */
    int (*stage[PIPELINE_STAGES])(void *ctx, const unsigned char *data, size_t len);
    void *ctx[PIPELINE_STAGES];
    size_t inline_bytes; /* run in the caller's thread, as pushed (see above) */
};

/* Takes the ring (every page touched) and starts the threads now, so that a
 * process's memory is the same whatever it later streams: a worker calls it
 * at start, before any job. Returns 0; 1 if the threads could not be started
 * (every slot then runs in the caller's thread); -1 on out of memory. */
int pipeline_prepare(void);

/* Starts a job (job must outlive it). Returns 0, or -1 on out of memory. */
int pipeline_begin(const struct pipeline_job *job);

/* Copies len bytes into the stream, waiting for a free slot when all are in
 * use. Returns 0, or 1 once a stage has failed (the bytes are then dropped). */
int pipeline_push(const void *data, size_t len);

/* Runs the stages over everything pushed and waits for them. Ends the job.
 * Returns -1 if every stage succeeded, else the index of the failed stage. */
int pipeline_finish(void);

/* Ends the job without running what is still queued (the stream is dropped);
 * waits until no stage touches the job's contexts. No-op without a job. */
void pipeline_abort(void);

#endif
