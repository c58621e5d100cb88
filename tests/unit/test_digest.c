/* Unit tests: the content hash (src/digest.c), against the xxh128sum tool's
 * output for the same bytes, fed whole and in pieces. */
#include "../../src/digest.c"

#include "testlib.h"

#include <string.h>

static void hex_of(const char *pieces[], char out[DIGEST_HEX_LEN + 1])
{
    struct digest d;

    if (digest_begin(&d) != 0) {
        strcpy(out, "(no memory)");
        return;
    }
    for (; *pieces; pieces++)
        digest_update(&d, *pieces, strlen(*pieces));
    digest_hex(&d, out);
    digest_end(&d);
}

/* The SIMD loop chosen at run time gives the hash of libxxhash's plain build
 * (the one earlier files' stored hashes came from), over a long input fed in
 * uneven pieces. */
static void test_long_input_matches_plain_build(void)
{
    enum { LEN = (1 << 20) + 13 };
    static unsigned char data[LEN];
    struct digest d;
    char hex[DIGEST_HEX_LEN + 1], want[DIGEST_HEX_LEN + 1];
    XXH128_canonical_t canonical;
    size_t at = 0, piece = 1;

    for (size_t i = 0; i < LEN; i++)
        data[i] = (unsigned char)(i * 131 + (i >> 8));
    CHECK(digest_begin(&d) == 0);
    while (at < LEN) { /* 1, 4, 16, ... bytes, then 256 KiB, as an upload gives them */
        size_t n = piece < LEN - at ? piece : LEN - at;
        digest_update(&d, data + at, n);
        at += n;
        piece = piece < (256 << 10) ? piece * 4 : piece;
    }
    digest_hex(&d, hex);
    digest_end(&d);
#undef XXH3_128bits /* the plain build's function, not the dispatching one */
    XXH128_canonicalFromHash(&canonical, XXH3_128bits(data, LEN));
    for (size_t i = 0; i < sizeof canonical.digest; i++)
        snprintf(want + 2 * i, 3, "%02x", canonical.digest[i]);
    CHECK_STR(hex, want);
}

int main(void)
{
    char hex[DIGEST_HEX_LEN + 1];
    const char *whole[] = {"abc", NULL};
    const char *split[] = {"a", "", "bc", NULL};
    const char *empty[] = {NULL};

    hex_of(whole, hex); /* printf 'abc' | xxh128sum */
    CHECK_STR(hex, "06b05ab6733a618578af5f94892f3950");
    hex_of(split, hex);
    CHECK_STR(hex, "06b05ab6733a618578af5f94892f3950");
    hex_of(empty, hex);
    CHECK_STR(hex, "99aa06d3014798d86001c324468d497f"); /* printf "" | xxh128sum */
    test_long_input_matches_plain_build();
    TEST_MAIN_END();
}
