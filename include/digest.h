/* The content hash of stored files: XXH3-128 (libxxhash), computed while an
 * upload streams in, kept in the file's row, sent as the ETag and checked by
 * fsck. It detects corruption and changes, at ~20x the speed of SHA-256 (which
 * was a quarter of a worker's CPU per upload); it is not meant to resist
 * someone forging collisions, and nothing here needs that. */
#ifndef DIGEST_H
#define DIGEST_H

#include <stddef.h>
#include <xxhash.h>

#define DIGEST_HEX_LEN 32

struct digest {
    XXH3_state_t *state;
};

/* Starts a hash. Returns 0, or -1 on out of memory. */
int digest_begin(struct digest *d);
void digest_update(struct digest *d, const void *data, size_t len);
/* Writes the lowercase hex digest and a NUL into hex (DIGEST_HEX_LEN + 1 bytes). */
void digest_hex(const struct digest *d, char hex[DIGEST_HEX_LEN + 1]);
void digest_end(struct digest *d);

#endif
