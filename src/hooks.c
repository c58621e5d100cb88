#include "hooks.h"

#ifdef FILES_API_TEST_HOOKS
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void hooks_crash_point(const char *point)
{
    const char *target = getenv("FILES_API_CRASH_AT");

    if (target && strcmp(target, point) == 0) {
        fprintf(stderr, "files-api: test hook: crashing at %s\n", point);
        _exit(99);
    }
}

void hooks_pause_point(const char *point)
{
    const char *target = getenv("FILES_API_PAUSE_AT");

    if (target && strcmp(target, point) == 0) {
        fprintf(stderr, "files-api: test hook: pausing 1 s at %s\n", point);
        sleep(1);
    }
}
#else
typedef int hooks_unused; /* ISO C wants a translation unit to declare something */
#endif
