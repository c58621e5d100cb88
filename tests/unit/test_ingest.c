/* Unit tests: taking in a file's content (src/ingest.c). Where its stages run
 * follows the expected size, and the verdict is the same either way. */
#include "../../src/ingest.c"

#include "testlib.h"

#include <fcntl.h>
#include <stdlib.h>

static char data_dir[] = "/tmp/files-api-test-ingest.XXXXXX";
static struct config config;
static int disk_full; /* the temporary and scratch files' writes fail with ENOSPC */

/* Ingests content in 64 KiB pieces, as an upload would push it. Returns what
 * ingest_end returned; *kind is the error's kind (ERR_NONE on success). */
static int ingest_all(uint64_t size_hint, const char *content, size_t len, size_t *inline_bytes,
                      enum error_kind *kind)
{
    struct ingest in;
    struct api_error error = {0};
    int rc = ingest_begin(&in, &config, 1, size_hint, &error);

    *inline_bytes = in.job.inline_bytes;
    if (rc == 0 && disk_full) {
        int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
        CHECK(full >= 0 && dup2(full, in.store.fd) == in.store.fd);
        in.spill_fd = full; /* the validator's scratch file, opened at its first spill */
        in.spill_open = 1;
    }
    for (size_t at = 0; rc == 0 && at < len; at += 65536)
        rc = ingest_write(&in, content + at, len - at < 65536 ? len - at : 65536, &error);
    if (rc == 0)
        rc = ingest_end(&in, &error);
    *kind = error.kind;
    ingest_release(&in);
    error_clear(&error);
    return rc;
}

/* n batch lines, each about 100 bytes; a syntax error in line bad (1-based)
 * if nonzero; line dup (if nonzero) repeats the custom_id of line dup_of. */
static char *batch_lines_with(size_t n, size_t bad, size_t dup, size_t dup_of, size_t *len)
{
    char *out = malloc(n * 128), *p = out;

    for (size_t i = 1; i <= n; i++)
        p += sprintf(p,
                     "{\"custom_id\":\"r%zu\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\","
                     "\"body\":{\"model\":\"m\"%s}}\n",
                     i == dup ? dup_of : i, i == bad ? "," : "");
    *len = (size_t)(p - out);
    return out;
}

static char *batch_lines(size_t n, size_t bad, size_t *len)
{
    return batch_lines_with(n, bad, 0, 0, len);
}

int main(void)
{
    size_t len, bad_len, inline_bytes;
    enum error_kind kind;
    char *good, *bad, cmd[128];

    if (!mkdtemp(data_dir) || store_init(data_dir, 3600) != 0) {
        perror("test_ingest: data directory");
        return 1;
    }
    config_defaults(&config);
    snprintf(config.data_dir, sizeof config.data_dir, "%s", data_dir);

    /* Unknown or small sizes start in the caller's thread; a file known to be
     * larger goes to the pipeline's threads from its first byte. */
    good = batch_lines(20000, 0, &len);
    CHECK(ingest_all(0, good, len, &inline_bytes, &kind) == 0 && kind == ERR_NONE);
    CHECK(inline_bytes == INGEST_INLINE_BYTES);
    CHECK(ingest_all(INGEST_INLINE_BYTES, good, len, &inline_bytes, &kind) == 0);
    CHECK(kind == ERR_NONE && inline_bytes == INGEST_INLINE_BYTES);
    CHECK(ingest_all(INGEST_INLINE_BYTES + 1, good, len, &inline_bytes, &kind) == 0);
    CHECK(kind == ERR_NONE && inline_bytes == 0);

    /* The same verdict on bad content, threaded from the start or not. */
    bad = batch_lines(20000, 15000, &len);
    CHECK(ingest_all(0, bad, len, &inline_bytes, &kind) == -1 && kind == ERR_INVALID_JSONL);
    CHECK(ingest_all(INGEST_INLINE_BYTES + 1, bad, len, &inline_bytes, &kind) == -1);
    CHECK(kind == ERR_INVALID_JSONL && inline_bytes == 0);

    /* Past the limit: a bad line before it is still the answer, also when the
     * piece that crosses the limit holds both (here all of it is one piece). */
    free(bad);
    free(good);
    bad = batch_lines(30, 1, &len);
    config.max_file_bytes = len / 2;
    CHECK(ingest_all(0, bad, len, &inline_bytes, &kind) == -1);
    CHECKF(kind == ERR_INVALID_JSONL, "kind %d", kind);
    good = batch_lines(30, 0, &len);
    CHECK(ingest_all(0, good, len, &inline_bytes, &kind) == -1 && kind == ERR_FILE_TOO_LARGE);
    config.max_file_bytes = len; /* at the limit, then one byte past it */
    CHECK(ingest_all(0, good, len, &inline_bytes, &kind) == 0 && kind == ERR_NONE);
    config.max_file_bytes = len - 1;
    CHECK(ingest_all(0, good, len, &inline_bytes, &kind) == -1 && kind == ERR_FILE_TOO_LARGE);

    /* ... also a duplicate custom_id before the limit once the ids go to the
     * spill store (past 16,384 lines): the store is compared at the limit. */
    free(good);
    free(bad);
    config_defaults(&config);
    snprintf(config.data_dir, sizeof config.data_dir, "%s", data_dir);
    bad = batch_lines_with(20000, 0, 19000, 17000, &len);
    config.max_file_bytes = len - 400 * 100; /* within line ~19,600 */
    CHECK(ingest_all(0, bad, len, &inline_bytes, &kind) == -1);
    CHECKF(kind == ERR_INVALID_JSONL, "kind %d", kind);
    CHECK(ingest_all(INGEST_INLINE_BYTES + 1, bad, len, &inline_bytes, &kind) == -1);
    CHECKF(kind == ERR_INVALID_JSONL, "kind %d", kind);
    free(bad);

    /* A full disk stops the storing, not the validation: content that could
     * never be accepted says why (3303, or 4016 past the limit); only valid
     * content gets 507. Inline and threaded alike. */
    disk_full = 1;
    config_defaults(&config);
    snprintf(config.data_dir, sizeof config.data_dir, "%s", data_dir);
    bad = batch_lines(30000, 25000, &bad_len); /* past the first failed spill (~20,500) */
    good = batch_lines(30000, 0, &len);
    for (int threaded = 0; threaded < 2; threaded++) {
        uint64_t hint = threaded ? INGEST_INLINE_BYTES + 1 : 0;
        CHECK(ingest_all(hint, good, len, &inline_bytes, &kind) == -1);
        CHECKF(kind == ERR_NO_SPACE, "kind %d", kind);
        CHECK(ingest_all(hint, bad, bad_len, &inline_bytes, &kind) == -1);
        CHECKF(kind == ERR_INVALID_JSONL, "kind %d", kind);
        CHECK(ingest_all(hint, good, len - 2, &inline_bytes, &kind) == -1); /* an open object */
        CHECKF(kind == ERR_INVALID_JSONL, "kind %d", kind);
        config.max_file_bytes = len - 1;
        CHECK(ingest_all(hint, good, len, &inline_bytes, &kind) == -1);
        CHECKF(kind == ERR_FILE_TOO_LARGE, "kind %d", kind);
        config.max_file_bytes = len;
    }
    /* A small file: the validator spills nothing, so only the temporary
     * file's failed write can tell that the content was not stored. */
    {
        size_t small_len;
        char *small = batch_lines(100, 0, &small_len);
        for (int threaded = 0; threaded < 2; threaded++) {
            uint64_t hint = threaded ? INGEST_INLINE_BYTES + 1 : 0;
            CHECK(ingest_all(hint, small, small_len, &inline_bytes, &kind) == -1);
            CHECKF(kind == ERR_NO_SPACE, "kind %d", kind);
        }
        free(small);
    }
    disk_full = 0;

    free(good);
    free(bad);
    snprintf(cmd, sizeof cmd, "rm -rf %s", data_dir);
    CHECK(system(cmd) == 0);
    TEST_MAIN_END();
}
