#include "ingest.h"

#include "hooks.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail_io(struct api_error *error, const char *what)
{
    if (errno == ENOSPC || errno == EDQUOT)
        error_set(error, ERR_NO_SPACE, NULL, "no space left to store the file");
    else
        error_set_errno(error, errno, what);
    return -1;
}

/* Turns the validator's verdict (-1 invalid, other nonzero out of memory or
 * a failed scratch file) into an error. */
static int fail_jsonl(struct ingest *in, int rc, struct api_error *error)
{
    const struct jsonl_error *bad = jsonl_validator_error(in->jsonl);

    if (rc != -1 && in->spill_errno) {
        errno = in->spill_errno;
        return fail_io(error, "keeping the custom_ids to compare");
    }
    if (rc != -1) {
        error_set_errno(error, ENOMEM, "validating a file");
        return -1;
    }
    error_set(error, ERR_INVALID_JSONL, "file", "%s", bad->message);
    error_detail(error, "line", cJSON_CreateNumber((double)bad->line));
    error_detail(error, "column", cJSON_CreateNumber((double)bad->column));
    error_detail(error, "reason", cJSON_CreateString(bad->reason));
    if (bad->reason_code)
        error_detail(error, "reason_code", cJSON_CreateString(bad->reason_code));
    return -1;
}

/* The validator's scratch store (struct jsonl_spill), run by stage 0. */
static int spill_write(void *ctx, const void *data, size_t len)
{
    struct ingest *in = ctx;

    if (!in->spill_open) {
        if ((in->spill_fd = store_scratch(in->config->data_dir)) < 0)
            goto fail;
        in->spill_open = 1;
    }
    if (store_append(in->spill_fd, data, len) == 0)
        return 0;
fail:
    in->spill_errno = errno;
    return -1;
}

static int spill_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
    struct ingest *in = ctx;

    if (store_read_at(in->spill_fd, offset, buf, len) == 0)
        return 0;
    in->spill_errno = errno;
    return -1;
}

/* Stage 0: the JSONL validator. */
static int check_slot(void *ctx, const unsigned char *data, size_t len)
{
    struct ingest *in = ctx;

    in->check_rc = jsonl_validator_feed(in->jsonl, data, len);
    return in->check_rc;
}

/* Stage 1: the content hash and the temporary file. A failed write (a full
 * disk) ends the storing but not the job: the validator goes on, as content
 * that could never be accepted is better told so (3303, or 4016 past the
 * limit) than sent back for a retry (507, see ingest_end). */
static int store_slot(void *ctx, const unsigned char *data, size_t len)
{
    struct ingest *in = ctx;

    if (in->store_errno)
        return 0;
    digest_update(&in->digest, data, len);
    if (store_write(&in->store, data, len) != 0)
        in->store_errno = errno ? errno : EIO;
    return 0;
}

/* Ends the pipeline job; returns 0 or -1 with the validator's error (the
 * only stage that fails). */
static int finish_stages(struct ingest *in, struct api_error *error)
{
    int stage = pipeline_finish();

    in->running = 0;
    if (stage == 0)
        return fail_jsonl(in, in->check_rc, error);
    return 0;
}

int ingest_begin(struct ingest *in, const struct config *config, int check_batch,
                 uint64_t size_hint, struct api_error *error)
{
    const char *urls[CONFIG_MAX_BATCH_URLS];
    struct jsonl_options options = {
        .max_depth = config->jsonl_max_depth,
        .check_batch = check_batch,
        .batch_urls = urls,
        .batch_url_count = config->batch_url_count,
    };

    memset(in, 0, sizeof *in);
    in->config = config;
    in->spill = (struct jsonl_spill){.write = spill_write, .read = spill_read, .ctx = in};
    options.spill = &in->spill; /* memory stays flat however many lines */
    for (size_t i = 0; i < config->batch_url_count; i++)
        urls[i] = config->batch_urls[i];
    /* A per-file seed: nobody can aim custom_id fingerprint collisions. */
    if (getrandom(&options.hash_seed, sizeof options.hash_seed, 0) != sizeof options.hash_seed)
        options.hash_seed = (uint64_t)time(NULL);
    in->jsonl = jsonl_validator_new(&options);
    if (!in->jsonl || digest_begin(&in->digest) != 0) {
        error_set_errno(error, ENOMEM, "starting a file");
        return -1;
    }
    /* No room for the temporary file (inodes run out, a quota): as for a
     * failed write, the storing ends but not the validation (see store_slot);
     * ingest_end answers 507 for content that is valid. */
    if (store_begin(&in->store, config->data_dir) == 0)
        in->store_started = 1;
    else if (errno == ENOSPC || errno == EDQUOT)
        in->store_errno = errno;
    else
        return fail_io(error, "creating the temporary file");
    in->job = (struct pipeline_job){.stage = {check_slot, store_slot},
                                    .ctx = {in, in},
                                    .inline_bytes =
                                        size_hint > INGEST_INLINE_BYTES ? 0 : INGEST_INLINE_BYTES};
    if (pipeline_begin(&in->job) != 0) {
        error_set_errno(error, ENOMEM, "starting a file");
        return -1;
    }
    in->running = 1;
    return 0;
}

int ingest_write(struct ingest *in, const void *data, size_t len, struct api_error *error)
{
    if (!in->running) {
        error_set(error, ERR_INTERNAL, NULL, "writing to a file that is not open");
        return -1;
    }
    if (len > in->config->max_file_bytes - in->bytes) {
        /* A problem in the bytes up to the limit is reported first, also when
         * this piece holds both. */
        size_t room = (size_t)(in->config->max_file_bytes - in->bytes);
        int rc;
        if (room > 0 && pipeline_push(data, room) != 0)
            return finish_stages(in, error);
        in->bytes += room;
        if (finish_stages(in, error) != 0)
            return -1;
        /* a duplicate among the custom_ids in the spill store too; if they
         * could not be compared (-2), the file is too large all the same */
        rc = jsonl_validator_stop(in->jsonl);
        if (rc == -1)
            return fail_jsonl(in, rc, error);
        error_set(error, ERR_FILE_TOO_LARGE, "file", "the file is larger than %llu bytes",
                  (unsigned long long)in->config->max_file_bytes);
        return -1;
    }
    in->bytes += len;
    if (pipeline_push(data, len) != 0)
        return finish_stages(in, error);
    return 0;
}

int ingest_end(struct ingest *in, struct api_error *error)
{
    int rc;

    if (!in->running) {
        error_set(error, ERR_INTERNAL, NULL, "ending a file that is not open");
        return -1;
    }
    if (finish_stages(in, error) != 0)
        return -1;
    /* The disk flushes the last bytes while the validator merges the spilled
     * custom_ids (if any). */
    if (!in->store_errno)
        store_flush_start(&in->store);
    rc = jsonl_validator_finish(in->jsonl);
    if (rc != 0)
        return fail_jsonl(in, rc, error);
    if (in->store_errno) {
        errno = in->store_errno;
        return fail_io(error, "writing the temporary file");
    }
    return 0;
}

/* An upload never takes the last of the disk: with no room left, SQLite
 * cannot record a delete, and then nothing can free space. The content is
 * in tmp/ by now, so what is free, with the validator's scratch file (gone
 * with the upload) given back, is what the upload leaves. */
static int check_room_left(const struct ingest *in, struct api_error *error)
{
    unsigned long long keep = in->config->keep_free_bytes;
    uint64_t free_bytes;
    struct stat scratch;

    if (!keep || store_free_bytes(in->config->data_dir, &free_bytes) != 0)
        return 0;
    if (in->spill_open && fstat(in->spill_fd, &scratch) == 0)
        free_bytes += (uint64_t)scratch.st_blocks * 512;
    if (free_bytes >= keep)
        return 0;
    error_set(error, ERR_NO_SPACE, NULL,
              "no space left to store the file (the server keeps %llu bytes of its disk free)",
              keep);
    return -1;
}

int ingest_commit(struct ingest *in, struct file_meta *file, struct api_error *error)
{
    int status;

    if (in->running) { /* ingest_end has not run: the content is not checked */
        error_set(error, ERR_INTERNAL, NULL, "committing a file that is not complete");
        return -1;
    }
    if (check_room_left(in, error) != 0)
        return -1;
    digest_hex(&in->digest, file->content_hash);
    if (ids_make(file->id, sizeof file->id, IDS_FILE_PREFIX, IDS_FILE_RANDOM) != 0) {
        error_set(error, ERR_INTERNAL, NULL, "no randomness for a file id");
        return -1;
    }
    file->bytes = (int64_t)in->bytes;
    in->store_started = 0; /* store_commit owns the temporary file from here */
    if (store_commit(&in->store, in->config->data_dir, file->id) != 0)
        return fail_io(error, "storing the file");
    hooks_pause_point("upload_before_insert");
    status = db_file_insert(file);
    if (status != DB_OK) {
        store_remove(in->config->data_dir, file->id);
        error_set_db(error, status);
        return -1;
    }
    hooks_pause_point("upload_after_insert");
    /* `filesctl fsck --repair` removes content that no live row owns, holding
     * the write lock: if it did so while this upload was stalled between the
     * link and the row (longer than its grace), the row must not stand. (A
     * DELETE may also have come first, of the row and then the content: the
     * row is gone already, and the upload did succeed.) */
    if (store_exists(in->config->data_dir, file->id) == 0) {
        status = db_file_remove(file->id, file->created_at);
        if (status == DB_NOT_FOUND)
            return 0;
        if (status == DB_OK)
            error_set(error, ERR_INTERNAL, NULL,
                      "the content of %s was removed before its row was written", file->id);
        else
            error_set_db(error, status);
        return -1;
    }
    hooks_crash_point("upload_after_commit");
    return 0;
}

void ingest_release(struct ingest *in)
{
    if (in->running)
        pipeline_abort(); /* no stage may touch *in from here */
    in->running = 0;
    if (in->store_started)
        store_abort(&in->store);
    in->store_started = 0;
    jsonl_validator_free(in->jsonl);
    in->jsonl = NULL;
    if (in->spill_open) /* (an ingest that never began is all zeros: fd 0 is not ours) */
        close(in->spill_fd);
    in->spill_open = 0;
    digest_end(&in->digest);
}
