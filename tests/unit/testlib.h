/* Minimal unit-test support: CHECK records a pass or a failure, TEST_MAIN_END
 * prints the closing "N passed, N failed" line and sets the exit status. */
#ifndef TESTLIB_H
#define TESTLIB_H

#include <stdio.h>
#include <string.h>

static unsigned long testlib_passed, testlib_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            testlib_passed++;                                                                      \
        } else {                                                                                   \
            testlib_failed++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

/* Like CHECK, with a printf-style explanation on failure. */
#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (cond) {                                                                                \
            testlib_passed++;                                                                      \
        } else {                                                                                   \
            testlib_failed++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b) CHECKF(strcmp((a), (b)) == 0, "\"%s\" != \"%s\"", (a), (b))

#define TEST_MAIN_END()                                                                            \
    do {                                                                                           \
        printf("%lu passed, %lu failed\n", testlib_passed, testlib_failed);                        \
        return testlib_failed ? 1 : 0;                                                             \
    } while (0)

#endif
