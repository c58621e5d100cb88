#include "ids.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static const char base62[] = IDS_BASE62;

static int fill_random(unsigned char *buf, size_t n)
{
    while (n > 0) {
        ssize_t got = getrandom(buf, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += got;
        n -= (size_t)got;
    }
    return 0;
}

/* Random bytes are drawn from the kernel a pool at a time: one getrandom
 * serves a few hundred ids instead of one. Each worker is its own exec'd
 * process (no fork after the pool fills), so no two share a pool. */
static unsigned char pool[4096];
static size_t pool_used = sizeof pool;

int ids_random_base62(char *out, size_t n)
{
    size_t written = 0;

    while (written < n) {
        if (pool_used == sizeof pool) {
            if (fill_random(pool, sizeof pool) != 0)
                return -1;
            pool_used = 0;
        }
        /* Rejection sampling keeps every character equally likely: 248 = 4 * 62. */
        unsigned char byte = pool[pool_used++];
        if (byte < 248)
            out[written++] = base62[byte % 62];
    }
    out[n] = '\0';
    return 0;
}

int ids_make(char *out, size_t out_size, const char *prefix, size_t n)
{
    size_t prefix_len = strlen(prefix);

    if (prefix_len + n + 1 > out_size)
        return -1;
    memcpy(out, prefix, prefix_len);
    return ids_random_base62(out + prefix_len, n);
}

int ids_is_file_id(const char *text)
{
    size_t prefix_len = sizeof IDS_FILE_PREFIX - 1;

    if (strncmp(text, IDS_FILE_PREFIX, prefix_len) != 0)
        return 0;
    text += prefix_len;
    for (size_t i = 0; i < IDS_FILE_RANDOM; i++) {
        char ch = text[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')))
            return 0;
    }
    return text[IDS_FILE_RANDOM] == '\0';
}
