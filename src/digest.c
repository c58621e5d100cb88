#include "digest.h"

#include <stdio.h>

int digest_begin(struct digest *d)
{
    d->state = XXH3_createState();
    if (!d->state || XXH3_128bits_reset(d->state) != XXH_OK) {
        digest_end(d);
        return -1;
    }
    return 0;
}

void digest_update(struct digest *d, const void *data, size_t len)
{
    XXH3_128bits_update(d->state, data, len);
}

void digest_hex(const struct digest *d, char hex[DIGEST_HEX_LEN + 1])
{
    XXH128_canonical_t canonical;

    XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(d->state));
    for (size_t i = 0; i < sizeof canonical.digest; i++)
        snprintf(hex + 2 * i, 3, "%02x", canonical.digest[i]);
}

void digest_end(struct digest *d)
{
    XXH3_freeState(d->state);
    d->state = NULL;
}
