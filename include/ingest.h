/* Storing a new file, the same way for an HTTP upload and for `filesctl files
 * import`: every content byte goes through the size limit, the JSONL
 * validator, the content hash and into a temporary file; commit then makes the
 * content durable and records its row. Nothing is visible before the commit.
 * The validator and the hash-and-write run as the two stages of a pipeline
 * (pipeline.h), so a big file is checked, stored and received at once. */
#ifndef INGEST_H
#define INGEST_H

#include <stdint.h>

#include "config.h"
#include "db.h"
#include "digest.h"
#include "errors.h"
#include "jsonl.h"
#include "pipeline.h"
#include "store.h"

/* The first bytes of a file are checked and stored in the calling thread;
 * only past this do the pipeline's threads take over (their hand-offs cost
 * more than they save on a small file, and when many uploads run at once
 * every core is busy anyway). A file known to be larger goes to the threads
 * from its first byte. */
#define INGEST_INLINE_BYTES (16 << 20)

struct ingest {
    const struct config *config;
    struct store_upload store;
    int store_started;
    struct jsonl_validator *jsonl;
    struct digest digest;
    uint64_t bytes;
    struct pipeline_job job;
    int running;     /* the pipeline job is under way */
    int check_rc;    /* the validator's verdict on its last slot */
    int store_errno; /* why the last write failed */
    /* the validator's spilled custom_ids (jsonl.h), in a scratch file opened
     * at the first spill */
    struct jsonl_spill spill;
    int spill_open; /* spill_fd is open */
    int spill_fd;
    int spill_errno; /* why the scratch file failed, 0 if it did not */
};

/* Starts a file. check_batch: lines must be batch requests. size_hint: what
 * the file's size is expected to be (an upper bound), 0 if unknown. Returns
 * 0, or -1 with *error set; ingest_release must follow either way. */
int ingest_begin(struct ingest *in, const struct config *config, int check_batch,
                 uint64_t size_hint, struct api_error *error);

/* Takes the next content bytes. Returns 0, or -1 with *error set: 4016 past
 * max_file_bytes, 3303 invalid JSONL (in the bytes up to the limit: that comes
 * first), 503 out of descriptors or memory, 500 otherwise. A full disk stops the storing, not the
 * validation: ingest_end tells it. */
int ingest_write(struct ingest *in, const void *data, size_t len, struct api_error *error);

/* The content is complete: waits for the stages, checks the last line.
 * Returns 0 or -1 with *error: 3303 invalid JSONL, else 507 if the disk was
 * full, 503 out of descriptors or memory, 500 otherwise. */
int ingest_end(struct ingest *in, struct api_error *error);

/* Gives the file its id, bytes and hash, makes the content durable, then
 * inserts the row. file carries account_id, purpose, filename, created_at and
 * expires_at. Returns 0, or -1 with *error set and nothing left behind. */
int ingest_commit(struct ingest *in, struct file_meta *file, struct api_error *error);

/* Frees everything; removes the temporary file unless committed. */
void ingest_release(struct ingest *in);

#endif
