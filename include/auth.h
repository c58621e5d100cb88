/* API keys: where a request carries one, how keys are hashed at rest, and
 * which scopes open the Files API. */
#ifndef AUTH_H
#define AUTH_H

#include <stddef.h>

#define AUTH_HASH_SIZE 32 /* SHA-256 */
#define AUTH_MAX_KEY 256  /* longer presented keys are rejected unhashed */
#define AUTH_REQUIRED_SCOPE "inference.*"

/* Picks the presented key from "Authorization: Bearer <key>" (scheme
 * case-insensitive, RFC 7235 §2.1) or else "x-api-key: <key>". Either header
 * may be NULL. Returns a pointer into one of them (surrounding blanks not
 * included, length in *len), or NULL when neither carries a key. */
const char *auth_presented_key(const char *authorization, const char *x_api_key, size_t *len);

/* SHA-256 of the key text (nettle: small, no provider machinery to load,
 * which kept 3 MiB of libcrypto resident in every worker). Returns 0. */
int auth_hash_key(const char *key, size_t len, unsigned char hash[AUTH_HASH_SIZE]);

/* Returns 1 if a comma-separated scope list opens the Files API: one of its
 * scopes is "*", "inference.*" or any "inference.<name>" (SPEC: "*" matches
 * everything, "inference.*" every inference scope), or the list is empty
 * (legacy keys have full access). */
int auth_scopes_allow_files(const char *scopes);

/* Makes a new key: prefix followed by random characters. Returns 0 or -1. */
int auth_new_key(char *out, size_t out_size, const char *prefix);

#endif
