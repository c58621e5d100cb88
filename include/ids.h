/* Random identifiers from the kernel's CSPRNG: file ids, key ids, API keys,
 * request ids. All use the URL-safe base62 alphabet. */
#ifndef IDS_H
#define IDS_H

#include <stddef.h>

/* The characters of random ids and keys; also the letters and digits that
 * names and prefixes checked elsewhere are built from. */
#define IDS_BASE62 "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

#define IDS_FILE_PREFIX "file_"
#define IDS_FILE_RANDOM 24 /* base62 characters: 142 bits */
#define IDS_FILE_LEN (sizeof IDS_FILE_PREFIX - 1 + IDS_FILE_RANDOM)
#define IDS_KEY_ID_PREFIX "key_"
#define IDS_KEY_ID_RANDOM 16
#define IDS_KEY_SECRET_RANDOM 48 /* characters after the configured key prefix: 285 bits */

/* Writes n uniformly random base62 characters and a NUL to out (n+1 bytes).
 * Returns 0, or -1 if the kernel's random source failed. */
int ids_random_base62(char *out, size_t n);

/* Writes prefix followed by n random base62 characters into out (out_size
 * bytes). Returns 0, or -1 on a random-source failure or short buffer. */
int ids_make(char *out, size_t out_size, const char *prefix, size_t n);

/* Returns 1 if text is exactly a file id (prefix, IDS_FILE_RANDOM base62
 * characters, nothing else), 0 otherwise. Checked before any lookup. */
int ids_is_file_id(const char *text);

#endif
