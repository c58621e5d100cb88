/* Unit tests: file id syntax and the random base62 characters (src/ids.c).
 * test_auth.c makes ids and checks a few shapes; these are the edges. */
#include "../../src/ids.c"

#include "testlib.h"

#include <stdlib.h>

/* prefix, then IDS_FILE_RANDOM copies of ch. */
static const char *id_of(const char *prefix, char ch)
{
    static char out[IDS_FILE_LEN + 1];

    snprintf(out, sizeof out, "%s", prefix);
    memset(out + strlen(prefix), ch, IDS_FILE_RANDOM);
    out[strlen(prefix) + IDS_FILE_RANDOM] = '\0';
    return out;
}

static void test_is_file_id(void)
{
    /* Each end of each base62 range is a character of an id. */
    CHECK(ids_is_file_id(id_of(IDS_FILE_PREFIX, 'z')) == 1);
    CHECK(ids_is_file_id(id_of(IDS_FILE_PREFIX, 'a')) == 1);
    CHECK(ids_is_file_id(id_of(IDS_FILE_PREFIX, 'Z')) == 1);
    CHECK(ids_is_file_id(id_of(IDS_FILE_PREFIX, '9')) == 1);
    CHECK(ids_is_file_id(id_of(IDS_FILE_PREFIX, '{')) == 0); /* the byte after 'z' */
    /* A prefix that sorts after "file_" is as wrong as one before it. */
    CHECK(ids_is_file_id(id_of("filf_", 'A')) == 0);
    CHECK(ids_is_file_id(id_of("zile_", 'A')) == 0);
}

/* Rejection sampling must keep every character equally likely: taking the
 * byte 248 too (248 % 62 == 0) makes '0' about 25% more common. Each count of
 * 1,000,000 draws is binomial, mean 16129, standard deviation 126: a count
 * 1000 off is 8 deviations, which the fair generator misses but for about
 * one run in 10^12, while that bias puts '0' near 20080. */
static void test_random_is_uniform(void)
{
    enum { DRAWS = 1000000 };
    static char buf[DRAWS + 1];
    long count[256] = {0}, expect = DRAWS / 62;

    CHECK(ids_random_base62(buf, DRAWS) == 0);
    CHECK(strlen(buf) == DRAWS);
    for (size_t i = 0; i < DRAWS; i++)
        count[(unsigned char)buf[i]]++;
    for (const char *ch = IDS_BASE62; *ch; ch++)
        CHECKF(labs(count[(unsigned char)*ch] - expect) < 1000, "'%c' drawn %ld times, want %ld",
               *ch, count[(unsigned char)*ch], expect);
}

int main(void)
{
    test_is_file_id();
    test_random_is_uniform();
    TEST_MAIN_END();
}
