/* jsonl — a streaming JSON Lines validator (RFC 8259 JSON, RFC 3629 UTF-8).
 *
 * Pure: no I/O. The caller feeds the file content in chunks of any size, split
 * anywhere (down to one byte), as it streams in; the validator says whether
 * every non-blank line is exactly one strict JSON object and, with
 * check_batch, a batch request. It never buffers a line or a value: memory is
 * the validator itself (about 3 KiB plus max_depth/8 bytes) and, in batch
 * mode, about 9 bytes per line for the custom_id uniqueness set, or, given a
 * spill store, a fixed amount whatever the number of lines (the ids beyond
 * memory_ids go to the store in runs, compared at the end to find duplicates
 * among them). The store is the caller's: the validator itself
 * still does no I/O. Every decision about what is accepted is in docs/jsonl.md.
 */
#ifndef JSONL_H
#define JSONL_H

#include <stddef.h>
#include <stdint.h>

#define JSONL_DEFAULT_MAX_DEPTH 512 /* nesting limit (objects + arrays, the line's object is 1) */

struct jsonl_spill;

struct jsonl_options {
    unsigned max_depth; /* nesting limit (objects+arrays); 0 means JSONL_DEFAULT_MAX_DEPTH */
    int check_batch;    /* nonzero: each line must also be a batch request */
    const char *const *batch_urls; /* allowed "url" values when check_batch; NULL or a count
                                      of 0 means jsonl_default_batch_urls. Copied at new. */
    size_t batch_url_count;
    uint64_t hash_seed; /* seed for custom_id fingerprints (caller passes random) */
    /* Optional, batch mode: where custom_id fingerprints go once memory_ids
     * of them (0: JSONL_DEFAULT_MEMORY_IDS) are held in memory. Copied at new. */
    const struct jsonl_spill *spill;
    size_t memory_ids;
};

#define JSONL_DEFAULT_MEMORY_IDS 16384

/* An append-only scratch store that the caller provides (a temporary file).
 * Each function returns 0, or -1 on failure (see feed for what follows). */
struct jsonl_spill {
    int (*write)(void *ctx, const void *data, size_t len);          /* appends */
    int (*read)(void *ctx, uint64_t offset, void *buf, size_t len); /* of what was written */
    void *ctx;
};

/* The batch endpoints of SPEC, used when options->batch_urls is NULL or
 * options->batch_url_count is 0. */
extern const char *const jsonl_default_batch_urls[];
extern const size_t jsonl_default_batch_url_count;

struct jsonl_error {
    uint64_t line;           /* 1-based line of the first problem */
    uint64_t column;         /* 1-based byte column in that line */
    const char *reason_code; /* NULL for syntax/encoding errors (and out of memory); for
                                batch-rule failures one of "duplicate_custom_id",
                                "missing_required_parameter", "invalid_method", "invalid_url",
                                "url_mismatch", "invalid_body" (static strings) */
    char reason[192];        /* what is wrong, for a person */
    char message[256];       /* "line 12, column 40: " followed by reason */
};

struct jsonl_validator;

/* Returns a new validator, or NULL on out of memory. options may be NULL
 * (defaults: max_depth 512, no batch check). The strings of batch_urls are
 * copied; the caller keeps ownership of options. */
struct jsonl_validator *jsonl_validator_new(const struct jsonl_options *options);

/* Feeds the next chunk (any size, any split, down to one byte; len 0 is a
 * no-op). Returns 0 while the input is valid so far, -1 once a problem was
 * found (sticky: later calls return -1 and do nothing), -2 on out of memory
 * (also sticky; the validator can then only be freed). A failed spill store
 * does not stop the validation: the custom_ids past it go unchecked, and
 * finish (or stop) returns -2 unless a problem is found (-1). Feeding after
 * jsonl_validator_finish returns -1. */
int jsonl_validator_feed(struct jsonl_validator *v, const void *data, size_t len);

/* End of input: checks the last line and that there was at least one object.
 * Same returns as feed; calling it again returns the same result. */
int jsonl_validator_finish(struct jsonl_validator *v);

/* The input stops here without ending (the caller takes no more of it, e.g.
 * at a size limit): settles what the lines so far decide, as finish does (the
 * custom_ids in the spill store are compared), but does not take this for the
 * end of the last line. Same returns as finish; finish then returns the same. */
int jsonl_validator_stop(struct jsonl_validator *v);

/* The first problem once feed or finish returned -1 (or "out of memory" after
 * -2); NULL while there is none. Owned by v, valid until jsonl_validator_free. */
const struct jsonl_error *jsonl_validator_error(const struct jsonl_validator *v);

/* Objects (lines) accepted so far: a line counts once its end (LF or end of
 * input) has been seen and it passed every check (a duplicate among spilled
 * custom_ids is found only at the end or at the first other problem). */
uint64_t jsonl_validator_objects(const struct jsonl_validator *v);

/* Releases v and everything it holds. v may be NULL. */
void jsonl_validator_free(struct jsonl_validator *v);

#endif
