/* Unit tests: the pipeline of upload stages (src/pipeline.c). */
#include "../../src/pipeline.c"

#include "testlib.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* One stage's view of the stream: checks every byte is the pattern byte of
 * its offset, counts its calls and can fail or dawdle at a given slot. */
struct probe {
    uint64_t offset;
    int calls;
    int fail_at_call; /* 1-based; 0 never */
    int mismatches;
    useconds_t delay;
    pthread_t thread;
};

static unsigned char pattern(uint64_t offset)
{
    return (unsigned char)(offset * 2654435761u >> 13);
}

static int probe_stage(void *ctx, const unsigned char *data, size_t len)
{
    struct probe *probe = ctx;

    probe->calls++;
    probe->thread = pthread_self();
    for (size_t i = 0; i < len; i++)
        probe->mismatches += data[i] != pattern(probe->offset + i);
    probe->offset += len;
    if (probe->delay)
        usleep(probe->delay);
    return probe->calls == probe->fail_at_call;
}

static struct pipeline_job job_for(struct probe *a, struct probe *b)
{
    return (struct pipeline_job){.stage = {probe_stage, probe_stage}, .ctx = {a, b}};
}

/* Pushes total bytes of the pattern in pieces of the given size. Returns the
 * first nonzero pipeline_push result, or 0. */
static int push_pattern(uint64_t total, size_t piece)
{
    static unsigned char buf[PIPELINE_SLOT_BYTES * 2 + 7];
    uint64_t offset = 0;

    while (offset < total) {
        size_t n = total - offset < piece ? (size_t)(total - offset) : piece;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(offset + i);
        if (pipeline_push(buf, n) != 0)
            return 1;
        offset += n;
    }
    return 0;
}

static void test_every_byte_in_order_to_both_stages(void)
{
    /* 5 times round the ring, in pieces that straddle slots; a slow stage
     * makes the producer wait for slots instead of overwriting them */
    static const size_t pieces[] = {1, 4093, 65536, PIPELINE_SLOT_BYTES,
                                    PIPELINE_SLOT_BYTES * 2 + 7};
    uint64_t total = (uint64_t)PIPELINE_SLOTS * PIPELINE_SLOT_BYTES * 5 + 12345;

    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
        struct probe a = {.delay = k == 2 ? 2000 : 0}, b = {0};
        struct pipeline_job job = job_for(&a, &b);
        CHECK(pipeline_begin(&job) == 0);
        CHECK(push_pattern(total, pieces[k]) == 0);
        CHECK(pipeline_finish() == -1);
        CHECKF(a.offset == total && b.offset == total, "piece %zu: %llu, %llu of %llu", pieces[k],
               (unsigned long long)a.offset, (unsigned long long)b.offset,
               (unsigned long long)total);
        CHECK(a.mismatches == 0 && b.mismatches == 0);
        CHECK(a.calls == PIPELINE_SLOTS * 5 + 1 && b.calls == a.calls); /* one call per slot */
    }
}

static void test_small_stream_runs_in_the_caller(void)
{
    struct probe a = {0}, b = {0};
    struct pipeline_job job = job_for(&a, &b);

    CHECK(pipeline_begin(&job) == 0);
    CHECK(push_pattern(PIPELINE_SLOT_BYTES, 1000) == 0); /* exactly one slot */
    CHECK(a.calls == 0);                                 /* nothing runs before finish */
    CHECK(pipeline_finish() == -1);
    CHECK(a.calls == 1 && b.calls == 1);
    CHECK(pthread_equal(a.thread, pthread_self()) && pthread_equal(b.thread, pthread_self()));
    CHECK(a.offset == PIPELINE_SLOT_BYTES && a.mismatches == 0);

    /* an empty stream calls nothing */
    a = (struct probe){0};
    b = (struct probe){0};
    CHECK(pipeline_begin(&job) == 0);
    CHECK(pipeline_finish() == -1);
    CHECK(a.calls == 0 && b.calls == 0);
}

static void test_big_stream_runs_on_the_stage_threads(void)
{
    struct probe a = {0}, b = {0};
    struct pipeline_job job = job_for(&a, &b);

    CHECK(pipeline_begin(&job) == 0);
    CHECK(push_pattern((uint64_t)PIPELINE_SLOT_BYTES * 3, 65536) == 0);
    CHECK(pipeline_finish() == -1);
    CHECK(!pthread_equal(a.thread, pthread_self()) && !pthread_equal(b.thread, pthread_self()));
    CHECK(!pthread_equal(a.thread, b.thread));
}

/* The first inline_bytes go to the stages as pushed, in the caller's thread,
 * without a copy; the rest through the slots and the threads. */
static const unsigned char *seen_data;
static size_t seen_len;
static int record_stage(void *ctx, const unsigned char *data, size_t len)
{
    struct probe *probe = ctx;
    if (probe->calls == 0) {
        seen_data = data;
        seen_len = len;
    }
    return probe_stage(ctx, data, len);
}

static void test_inline_prefix(void)
{
    static unsigned char buf[1000];
    struct probe a = {0}, b = {0};
    struct pipeline_job job = {
        .stage = {record_stage, probe_stage}, .ctx = {&a, &b}, .inline_bytes = 3000};
    uint64_t total = 3000 + (uint64_t)PIPELINE_SLOT_BYTES * 3;

    CHECK(pipeline_begin(&job) == 0);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = pattern(i);
    CHECK(pipeline_push(buf, sizeof buf) == 0);
    CHECK(a.calls == 1 && b.calls == 1);               /* at once, */
    CHECK(seen_data == buf && seen_len == sizeof buf); /* the caller's bytes, */
    CHECK(pthread_equal(a.thread, pthread_self()));    /* in the caller's thread */
    pipeline_abort();

    /* the same stream in pieces: inline up to the mark, then threads; every
     * byte in order either way */
    a = (struct probe){0};
    b = (struct probe){0};
    CHECK(pipeline_begin(&job) == 0);
    CHECK(push_pattern(total, 1000) == 0);
    CHECK(pipeline_finish() == -1);
    CHECK(a.offset == total && b.offset == total && a.mismatches == 0 && b.mismatches == 0);
    CHECK(!pthread_equal(a.thread, pthread_self())); /* the last slots went to a thread */
    CHECK(a.calls == 3 + 3); /* three pieces inline, then one call per slot */

    /* a failure in the inline part is known at once */
    a = (struct probe){.fail_at_call = 2};
    b = (struct probe){0};
    CHECK(pipeline_begin(&job) == 0);
    CHECK(pipeline_push(buf, sizeof buf) == 0);
    CHECK(pipeline_push(buf, sizeof buf) == 1);
    CHECK(pipeline_finish() == 0);
}

/* Runs a 20-slot stream where stage 0 fails at call fail0 and stage 1 at
 * fail1 (0: never); returns pipeline_finish's verdict. */
static int failing_stream(int fail0, int fail1, struct probe *a, struct probe *b)
{
    struct pipeline_job job;
    int pushed;

    *a = (struct probe){.fail_at_call = fail0};
    *b = (struct probe){.fail_at_call = fail1};
    job = job_for(a, b);
    CHECK(pipeline_begin(&job) == 0);
    pushed = push_pattern((uint64_t)PIPELINE_SLOT_BYTES * 20, 100000);
    if (fail0 || fail1)
        CHECK(pushed == 1); /* the producer hears of it before the end */
    return pipeline_finish();
}

static void test_the_first_failure_in_the_stream_wins(void)
{
    struct probe a, b;

    CHECK(failing_stream(0, 0, &a, &b) == -1);
    CHECK(failing_stream(3, 0, &a, &b) == 0);
    CHECK(failing_stream(0, 2, &a, &b) == 1);
    CHECK(failing_stream(6, 3, &a, &b) == 1); /* stage 1 failed at an earlier slot */
    CHECK(failing_stream(3, 6, &a, &b) == 0);
    CHECK(failing_stream(4, 4, &a, &b) == 0); /* same slot: the lower stage */
    /* later slots are skipped: the failed stage is called no more, and the
     * other one gets at most the ring's worth beyond the failed slot */
    CHECK(failing_stream(0, 2, &a, &b) == 1);
    CHECK(b.calls == 2 && a.calls <= PIPELINE_SLOTS + 2);
}

/* The failing slot itself is run by every stage, even one that reaches it
 * after another stage has failed there: the lower stage's failure is the one
 * reported, whichever came first in time. */
static void test_a_slower_lower_stage_failing_at_the_same_slot_wins(void)
{
    struct probe a = {.fail_at_call = 3, .delay = 30000}, b = {.fail_at_call = 3};
    struct pipeline_job job = job_for(&a, &b);

    CHECK(pipeline_begin(&job) == 0);
    CHECK(push_pattern((uint64_t)PIPELINE_SLOT_BYTES * 8, 100000) == 1);
    CHECK(pipeline_finish() == 0);
    CHECK(a.calls == 3 && b.calls == 3);
}

/* Slots handed to the stages but not yet begun are skipped by an abort, not
 * run through before it returns. */
static void test_abort_skips_the_slots_still_queued(void)
{
    struct probe a = {.delay = 50000}, b = {0};
    struct pipeline_job job = job_for(&a, &b);

    CHECK(pipeline_begin(&job) == 0);
    CHECK(push_pattern((uint64_t)PIPELINE_SLOT_BYTES * PIPELINE_SLOTS, 65536) == 0);
    pipeline_abort(); /* 3 slots handed, the 4th still being filled */
    CHECK(a.calls <= 2);
}

static void test_abort_stops_the_stages(void)
{
    struct probe a = {.delay = 20000}, b = {0};
    struct pipeline_job job = job_for(&a, &b);
    int calls;

    CHECK(pipeline_begin(&job) == 0);
    CHECK(push_pattern((uint64_t)PIPELINE_SLOT_BYTES * PIPELINE_SLOTS, 65536) == 0);
    pipeline_abort();
    calls = a.calls;
    usleep(100000);
    CHECK(a.calls == calls); /* no stage touches the job after abort returns */
    CHECK(calls < PIPELINE_SLOTS);

    /* the next job works as usual */
    a = (struct probe){0};
    b = (struct probe){0};
    CHECK(pipeline_begin(&job) == 0);
    CHECK(push_pattern((uint64_t)PIPELINE_SLOT_BYTES * 4 + 1, 8192) == 0);
    CHECK(pipeline_finish() == -1);
    CHECK(a.offset == (uint64_t)PIPELINE_SLOT_BYTES * 4 + 1 && a.mismatches == 0);
    pipeline_abort(); /* no job: nothing to do */
}

static int thread_count(void)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *entry;
    int n = 0;

    while (dir && (entry = readdir(dir)))
        n += entry->d_name[0] != '.';
    if (dir)
        closedir(dir);
    return n;
}

/* Resident pages of the ring (mincore), in a page-aligned view of it. */
static size_t ring_pages_resident(size_t *pages)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)pl.buffers + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)pl.buffers + (size_t)PIPELINE_SLOTS * PIPELINE_SLOT_BYTES) &
                    ~(uintptr_t)(page - 1);
    static unsigned char vec[(PIPELINE_SLOTS * PIPELINE_SLOT_BYTES) / 4096 + 1];
    size_t resident = 0;

    *pages = (end - start) / page;
    if (*pages > sizeof vec || mincore((void *)start, end - start, vec) != 0)
        return 0;
    for (size_t i = 0; i < *pages; i++)
        resident += vec[i] & 1;
    return resident;
}

/* Runs first: nothing has started the threads yet. */
static void test_prepare_takes_the_memory_and_threads_at_once(void)
{
    struct probe a = {0}, b = {0};
    struct pipeline_job job = job_for(&a, &b);
    size_t pages = 0, resident;
    int before = thread_count(), after;

    CHECK(pl.threads == 0 && pl.buffers == NULL);
    CHECK(pipeline_prepare() == 0);
    after = thread_count(); /* ThreadSanitizer adds a thread of its own */
    CHECKF(pl.threads == 1 && after >= before + PIPELINE_STAGES, "%d then %d threads", before,
           after);
    resident = ring_pages_resident(&pages);
    CHECKF(pages > 0 && resident == pages, "%zu of %zu ring pages resident", resident, pages);
    CHECK(pipeline_prepare() == 0); /* again: nothing more */
    CHECK(thread_count() == after);

    CHECK(pipeline_begin(&job) == 0);
    CHECK(push_pattern((uint64_t)PIPELINE_SLOT_BYTES * 3, 65536) == 0);
    CHECK(pipeline_finish() == -1);
    CHECK(!pthread_equal(a.thread, pthread_self()) && a.mismatches == 0 && b.mismatches == 0);
    CHECK(thread_count() == after);
}

/* Runs last: as when a thread could not be started, the threads are told to
 * stop; pipeline_prepare says so and every slot runs in the caller's thread. */
static void test_without_threads_everything_runs_inline(void)
{
    struct probe a = {0}, b = {0};
    struct pipeline_job job = job_for(&a, &b);

    pthread_mutex_lock(&pl.lock);
    pl.threads = -1;
    pthread_cond_broadcast(&pl.work);
    pthread_mutex_unlock(&pl.lock);
    CHECK(pipeline_prepare() == 1);
    CHECK(pipeline_begin(&job) == 0);
    CHECK(push_pattern((uint64_t)PIPELINE_SLOT_BYTES * 5 + 3, 65536) == 0);
    CHECK(pipeline_finish() == -1);
    CHECK(pthread_equal(a.thread, pthread_self()) && pthread_equal(b.thread, pthread_self()));
    CHECK(a.offset == (uint64_t)PIPELINE_SLOT_BYTES * 5 + 3 && a.mismatches == 0);
    CHECK(b.offset == a.offset && b.mismatches == 0);
}

int main(void)
{
    test_prepare_takes_the_memory_and_threads_at_once();
    test_small_stream_runs_in_the_caller();
    test_every_byte_in_order_to_both_stages();
    test_big_stream_runs_on_the_stage_threads();
    test_the_first_failure_in_the_stream_wins();
    test_a_slower_lower_stage_failing_at_the_same_slot_wins();
    test_abort_stops_the_stages();
    test_abort_skips_the_slots_still_queued();
    test_inline_prefix();
    test_without_threads_everything_runs_inline();
    TEST_MAIN_END();
}
