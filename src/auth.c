#include "auth.h"

#include "ids.h"

#include <nettle/sha2.h>
#include <string.h>
#include <strings.h>

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Returns the text between leading and trailing blanks, or NULL if empty. */
static const char *trim_blanks(const char *text, size_t *len)
{
    size_t n;

    while (is_blank(*text))
        text++;
    n = strlen(text);
    while (n > 0 && is_blank(text[n - 1]))
        n--;
    *len = n;
    return n ? text : NULL;
}

const char *auth_presented_key(const char *authorization, const char *x_api_key, size_t *len)
{
    if (authorization) {
        while (is_blank(*authorization))
            authorization++;
        if (strncasecmp(authorization, "Bearer", 6) == 0 && is_blank(authorization[6])) {
            const char *key = trim_blanks(authorization + 7, len);
            if (key)
                return key;
        }
    }
    if (x_api_key)
        return trim_blanks(x_api_key, len);
    return NULL;
}

int auth_hash_key(const char *key, size_t len, unsigned char hash[AUTH_HASH_SIZE])
{
    struct sha256_ctx ctx;

    sha256_init(&ctx);
    sha256_update(&ctx, len, (const uint8_t *)key);
    sha256_digest(&ctx, AUTH_HASH_SIZE, hash);
    return 0;
}

/* Returns 1 if pattern grants at least one inference scope. */
static int grants_inference(const char *pattern, size_t len)
{
    static const char inference[] = "inference.";
    size_t prefix = sizeof inference - 1;

    if (len == 1 && pattern[0] == '*')
        return 1;
    return len > prefix && memcmp(pattern, inference, prefix) == 0;
}

int auth_scopes_allow_files(const char *scopes)
{
    int any = 0;

    while (*scopes) {
        const char *end = strchr(scopes, ',');
        const char *stop = end ? end : scopes + strlen(scopes);

        /* Trimmed in place: a scope may be as long as the key's whole list. */
        while (scopes < stop && is_blank(*scopes))
            scopes++;
        while (stop > scopes && is_blank(stop[-1]))
            stop--;
        if (stop > scopes) {
            any = 1;
            if (grants_inference(scopes, (size_t)(stop - scopes)))
                return 1;
        }
        if (!end)
            break;
        scopes = end + 1;
    }
    return !any;
}

int auth_new_key(char *out, size_t out_size, const char *prefix)
{
    return ids_make(out, out_size, prefix, IDS_KEY_SECRET_RANDOM);
}
