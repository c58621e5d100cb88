/* Unit tests: presented keys, hashing, scopes (src/auth.c) and ids (src/ids.c). */
#include "../../src/auth.c"

#include "testlib.h"

static const char *key_of(const char *authorization, const char *x_api_key)
{
    static char out[64];
    size_t len;
    const char *key = auth_presented_key(authorization, x_api_key, &len);

    if (!key)
        return "(none)";
    snprintf(out, sizeof out, "%.*s", (int)len, key);
    return out;
}

static void test_presented_key(void)
{
    CHECK_STR(key_of("Bearer sk-1", NULL), "sk-1");
    CHECK_STR(key_of("bearer sk-1", NULL), "sk-1");
    CHECK_STR(key_of("BEARER   sk-1  ", NULL), "sk-1");
    CHECK_STR(key_of("Basic abc", NULL), "(none)");
    CHECK_STR(key_of("Bearer", NULL), "(none)");
    CHECK_STR(key_of("Bearer ", NULL), "(none)");
    CHECK_STR(key_of("Bearersk-1", NULL), "(none)");
    CHECK_STR(key_of(NULL, "sk-2"), "sk-2");
    CHECK_STR(key_of(NULL, " sk-2 "), "sk-2");
    CHECK_STR(key_of(NULL, ""), "(none)");
    CHECK_STR(key_of("Basic abc", "sk-2"), "sk-2");
    CHECK_STR(key_of("Bearer sk-1", "sk-2"), "sk-1");
    CHECK_STR(key_of(NULL, NULL), "(none)");
    /* a tab is a blank too (HTTP's OWS), after the scheme and around a key */
    CHECK_STR(key_of("Bearer\tsk-1", NULL), "sk-1");
    CHECK_STR(key_of(NULL, "\tsk-2\t"), "sk-2");
    /* a Bearer with no key leaves the word to x-api-key */
    CHECK_STR(key_of("Bearer   ", "sk-2"), "sk-2");
}

static void test_scopes(void)
{
    CHECK(auth_scopes_allow_files("") == 1);    /* legacy: empty list, full access */
    CHECK(auth_scopes_allow_files(" , ") == 1); /* only blanks is still empty */
    CHECK(auth_scopes_allow_files("*") == 1);
    CHECK(auth_scopes_allow_files("inference.*") == 1);
    CHECK(auth_scopes_allow_files("inference.chat") == 1);
    { /* a scope as long as a key's list may be (1023 bytes): no shorter bound */
        char long_scope[1024] = "files.read, inference.";
        size_t used = strlen(long_scope);
        memset(long_scope + used, 'x', sizeof long_scope - 1 - used);
        long_scope[sizeof long_scope - 1] = '\0';
        CHECK(auth_scopes_allow_files(long_scope) == 1);
        memcpy(long_scope + 12, "inferencex", 10); /* no longer an inference scope */
        CHECK(auth_scopes_allow_files(long_scope) == 0);
    }
    CHECK(auth_scopes_allow_files("files.read,inference.embeddings") == 1);
    CHECK(auth_scopes_allow_files("files.read, inference.x") == 1);
    CHECK(auth_scopes_allow_files("files.read") == 0);
    CHECK(auth_scopes_allow_files("inference") == 0);
    CHECK(auth_scopes_allow_files("inference.") == 0);
    CHECK(auth_scopes_allow_files("inferencex.chat") == 0);
    CHECK(auth_scopes_allow_files("admin.*") == 0);
    CHECK(auth_scopes_allow_files("**") == 0);
}

static void test_hash_and_ids(void)
{
    unsigned char a[AUTH_HASH_SIZE], b[AUTH_HASH_SIZE];
    char key[128], id[IDS_FILE_LEN + 1], other[IDS_FILE_LEN + 1];
    /* SHA-256("abc"), FIPS 180-2 appendix B.1. */
    static const unsigned char abc[AUTH_HASH_SIZE] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

    CHECK(auth_hash_key("abc", 3, a) == 0 && memcmp(a, abc, sizeof abc) == 0);
    CHECK(auth_new_key(key, sizeof key, "sk-mel-") == 0);
    CHECK(strncmp(key, "sk-mel-", 7) == 0 && strlen(key) == 7 + IDS_KEY_SECRET_RANDOM);
    CHECK(auth_hash_key(key, strlen(key), b) == 0 && memcmp(a, b, sizeof a) != 0);
    CHECK(auth_new_key(key, 7 + IDS_KEY_SECRET_RANDOM, "sk-mel-") == -1); /* no room for NUL */

    CHECK(ids_make(id, sizeof id, IDS_FILE_PREFIX, IDS_FILE_RANDOM) == 0);
    CHECK(ids_make(other, sizeof other, IDS_FILE_PREFIX, IDS_FILE_RANDOM) == 0);
    CHECK(strlen(id) == IDS_FILE_LEN && ids_is_file_id(id));
    CHECK(strcmp(id, other) != 0);
    CHECK(!ids_is_file_id("file_"));
    CHECK(!ids_is_file_id("file_abc"));
    other[IDS_FILE_LEN - 1] = '-';
    CHECK(!ids_is_file_id(other));
    strcpy(other, id);
    other[0] = 'F';
    CHECK(!ids_is_file_id(other));
    snprintf(other, sizeof other, "%s", id);
    CHECK(ids_is_file_id(other));
    {
        char longer[IDS_FILE_LEN + 2];
        snprintf(longer, sizeof longer, "%sA", id);
        CHECK(!ids_is_file_id(longer));
    }
}

/* Every base62 character appears and the distribution is roughly flat. */
static void test_random_spread(void)
{
    unsigned counts[128] = {0};
    char buf[62 * 400 + 1];

    CHECK(ids_random_base62(buf, sizeof buf - 1) == 0);
    for (size_t i = 0; i < sizeof buf - 1; i++)
        counts[(unsigned char)buf[i]]++;
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    for (const char *c = alphabet; *c; c++)
        CHECKF(counts[(unsigned char)*c] > 250 && counts[(unsigned char)*c] < 600, "'%c': %u", *c,
               counts[(unsigned char)*c]);
}

int main(void)
{
    test_presented_key();
    test_scopes();
    test_hash_and_ids();
    test_random_spread();
    TEST_MAIN_END();
}
