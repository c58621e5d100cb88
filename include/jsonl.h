/* jsonl — a streaming JSON Lines validator (RFC 8259 JSON, RFC 3629 UTF-8).
 *
 * Pure: no I/O. The caller feeds the file content in chunks of any size, split
 * anywhere (down to one byte), as it streams in; the validator says whether
 * every non-blank line is exactly one strict JSON object and, with
 * check_batch, a batch request. It never buffers a line or a value: memory is
 * the validator itself (about 1 KiB plus max_depth/8 bytes) and, in batch
 * mode, about 10 bytes per line for the custom_id uniqueness set.
 * Every decision about what is accepted is in docs/jsonl.md.
 */
#ifndef JSONL_H
#define JSONL_H

#include <stddef.h>
#include <stdint.h>

#define JSONL_DEFAULT_MAX_DEPTH 512 /* nesting limit (objects + arrays, the line's object is 1) */

struct jsonl_options {
    unsigned max_depth; /* nesting limit (objects+arrays); 0 means JSONL_DEFAULT_MAX_DEPTH */
    int check_batch;    /* nonzero: each line must also be a batch request */
    const char *const *batch_urls; /* allowed "url" values when check_batch; NULL or a count
                                      of 0 means jsonl_default_batch_urls. Copied at new. */
    size_t batch_url_count;
    uint64_t hash_seed; /* seed for custom_id fingerprints (caller passes random) */
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
 * (also sticky; the validator can then only be freed). Feeding after
 * jsonl_validator_finish returns -1. */
int jsonl_validator_feed(struct jsonl_validator *v, const void *data, size_t len);

/* End of input: checks the last line and that there was at least one object.
 * Same returns as feed; calling it again returns the same result. */
int jsonl_validator_finish(struct jsonl_validator *v);

/* The first problem once feed or finish returned -1 (or "out of memory" after
 * -2); NULL while there is none. Owned by v, valid until jsonl_validator_free. */
const struct jsonl_error *jsonl_validator_error(const struct jsonl_validator *v);

/* Objects (lines) accepted so far: a line counts once its end (LF or end of
 * input) has been seen and it passed every check. */
uint64_t jsonl_validator_objects(const struct jsonl_validator *v);

/* Releases v and everything it holds. v may be NULL. */
void jsonl_validator_free(struct jsonl_validator *v);

#endif
