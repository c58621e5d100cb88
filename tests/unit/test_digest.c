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
    TEST_MAIN_END();
}
