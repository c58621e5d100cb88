/* jsonl_ids: the custom_ids a batch file has used, as fingerprints. See
 * include/jsonl_ids.h and docs/jsonl.md. */
#include "jsonl_ids.h"

#include <stdlib.h>
#include <string.h>

/* Allocation goes through these so that the unit test can count and fail them. */
#ifndef JSONL_MALLOC
#define JSONL_MALLOC(n) malloc(n)
#define JSONL_CALLOC(n, size) calloc((n), (size))
#define JSONL_FREE(p) free(p)
#endif

/* The records of one top byte the merge holds before it compacts them, and
 * the size below which a sort goes by insertion. */
#ifndef JSONL_BUCKET_MAX /* the unit test makes it small, to compact and grow it often */
#define JSONL_BUCKET_MAX 16384
#endif
#define JSONL_SORT_SMALL 32

void jsonl_ids_init(struct jsonl_ids *ids, const struct jsonl_spill *spill, size_t memory_ids)
{
    memset(ids, 0, sizeof *ids);
    if (spill && spill->write && spill->read) {
        ids->spill = *spill;
        ids->spilling = 1;
        ids->memory_ids = memory_ids ? memory_ids : JSONL_DEFAULT_MEMORY_IDS;
    }
}

void jsonl_ids_free(struct jsonl_ids *ids)
{
    if (ids->shards) {
        for (unsigned i = 0; i < JSONL_SET_SHARDS; i++)
            JSONL_FREE(ids->shards[i].slots);
        JSONL_FREE(ids->shards);
    }
    JSONL_FREE(ids->run);
    ids->shards = NULL;
    ids->run = NULL;
}

/* ---- the set ---------------------------------------------------------------- */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* A slot is read and written as 8 bytes (the arrays have JSONL_SET_PAD bytes
 * of padding after the last slot), keeping the 2 bytes that belong to the next. */
static uint64_t jsonl_slot_get(const unsigned char *s)
{
    uint64_t x;
    memcpy(&x, s, sizeof x);
    return x & JSONL_SET_REMAINDER_MASK;
}

static void jsonl_slot_put(unsigned char *s, uint64_t r)
{
    uint64_t x;
    memcpy(&x, s, sizeof x);
    x = (x & ~JSONL_SET_REMAINDER_MASK) | r;
    memcpy(s, &x, sizeof x);
}
#else
static uint64_t jsonl_slot_get(const unsigned char *s)
{
    return (uint64_t)s[0] | (uint64_t)s[1] << 8 | (uint64_t)s[2] << 16 | (uint64_t)s[3] << 24 |
           (uint64_t)s[4] << 32 | (uint64_t)s[5] << 40;
}

static void jsonl_slot_put(unsigned char *s, uint64_t r)
{
    for (int i = 0; i < JSONL_SET_SLOT; i++)
        s[i] = (unsigned char)(r >> (8 * i));
}
#endif

/* Puts r into the first free slot from its home (the caller ensured room). */
static void jsonl_shard_place(unsigned char *slots, uint32_t cap, uint64_t r)
{
    uint32_t i = jsonl_ids_slot_home(r, cap);
    while (jsonl_slot_get(slots + (size_t)i * JSONL_SET_SLOT) != 0)
        i = i + 1 == cap ? 0 : i + 1;
    jsonl_slot_put(slots + (size_t)i * JSONL_SET_SLOT, r);
}

static struct jsonl_shard *jsonl_set_shard(const struct jsonl_ids *ids, uint64_t fp)
{
    return &ids->shards[fp >> (64 - JSONL_SET_SHARD_BITS)];
}

/* Only the shard that fills up is rehashed, so growing never holds more than
 * one small table twice. */
int jsonl_ids_reserve(struct jsonl_ids *ids, uint64_t fp)
{
    struct jsonl_shard *sh;
    uint32_t cap;
    unsigned char *slots;
    if (!ids->shards) {
        ids->shards = JSONL_CALLOC(JSONL_SET_SHARDS, sizeof *ids->shards);
        if (!ids->shards)
            return -1;
    }
    sh = jsonl_set_shard(ids, fp);
    if ((uint64_t)(sh->count + 1) * 8 <= (uint64_t)sh->cap * 7)
        return 0;
    if (sh->cap >= JSONL_SET_MAX_CAP)
        return -1;
    cap = sh->cap < JSONL_SET_MIN_CAP ? JSONL_SET_MIN_CAP : sh->cap + sh->cap / 4;
    slots = JSONL_CALLOC((size_t)cap * JSONL_SET_SLOT + JSONL_SET_PAD, 1);
    if (!slots)
        return -1;
    for (uint32_t i = 0; i < sh->cap; i++) {
        uint64_t s = jsonl_slot_get(sh->slots + (size_t)i * JSONL_SET_SLOT);
        if (s)
            jsonl_shard_place(slots, cap, s);
    }
    JSONL_FREE(sh->slots);
    sh->slots = slots;
    sh->cap = cap;
    return 0;
}

int jsonl_ids_insert(struct jsonl_ids *ids, uint64_t fp)
{
    struct jsonl_shard *sh = jsonl_set_shard(ids, fp);
    uint64_t r = jsonl_ids_remainder(fp);
    uint32_t i = jsonl_ids_slot_home(r, sh->cap);
    for (;;) {
        unsigned char *slot = sh->slots + (size_t)i * JSONL_SET_SLOT;
        uint64_t s = jsonl_slot_get(slot);
        if (s == r)
            return 1;
        if (s == 0) {
            jsonl_slot_put(slot, r);
            sh->count++;
            ids->set_count++;
            return 0;
        }
        i = i + 1 == sh->cap ? 0 : i + 1;
    }
}

int jsonl_ids_contains(const struct jsonl_ids *ids, uint64_t fp)
{
    struct jsonl_shard *sh = jsonl_set_shard(ids, fp);
    uint64_t r = jsonl_ids_remainder(fp);
    uint32_t i;
    if (sh->cap == 0)
        return 0;
    for (i = jsonl_ids_slot_home(r, sh->cap);; i = i + 1 == sh->cap ? 0 : i + 1) {
        uint64_t s = jsonl_slot_get(sh->slots + (size_t)i * JSONL_SET_SLOT);
        if (s == r)
            return 1;
        if (s == 0)
            return 0;
    }
}

/* ---- spilled fingerprints -------------------------------------------------- */

int jsonl_ids_in_memory(const struct jsonl_ids *ids)
{
    return !ids->spilling || ids->set_count < ids->memory_ids;
}

/* Groups records by the fingerprint's byte at shift, in place and in one pass
 * of American flag sort (McIlroy, Bostic and McIlroy, 1993); end[b] gets the
 * end of byte b's group. */
static void jsonl_group_records(struct jsonl_spill_record *r, size_t n, unsigned shift,
                                size_t end[256])
{
    size_t count[256] = {0}, next[256], at = 0;

    for (size_t i = 0; i < n; i++)
        count[(r[i].fingerprint >> shift) & 0xFF]++;
    for (int b = 0; b < 256; b++) {
        next[b] = at;
        at += count[b];
        end[b] = at;
    }
    for (int b = 0; b < 256; b++) {
        while (next[b] < end[b]) {
            struct jsonl_spill_record x = r[next[b]];
            int home = (int)((x.fingerprint >> shift) & 0xFF);
            while (home != b) { /* carry x to its group, taking what was there */
                struct jsonl_spill_record y = r[next[home]];
                r[next[home]++] = x;
                x = y;
                home = (int)((x.fingerprint >> shift) & 0xFF);
            }
            r[next[b]++] = x;
        }
    }
}

/* Sorts records by fingerprint, most significant byte first from the byte at
 * shift down: grouped by that byte, then each group on the next byte, small
 * groups by insertion. Linear for the uniform fingerprints of XXH3, and for
 * many copies of one fingerprint too (they go down the bytes together). */
static void jsonl_sort_records(struct jsonl_spill_record *r, size_t n, unsigned shift)
{
    size_t end[256];

    if (n <= JSONL_SORT_SMALL) {
        for (size_t i = 1; i < n; i++) {
            struct jsonl_spill_record x = r[i];
            size_t j = i;
            for (; j > 0 && r[j - 1].fingerprint > x.fingerprint; j--)
                r[j] = r[j - 1];
            r[j] = x;
        }
        return;
    }
    jsonl_group_records(r, n, shift, end);
    if (shift == 0)
        return; /* each group is one fingerprint */
    for (size_t b = 0, start = 0; b < 256; start = end[b++])
        if (end[b] - start > 1)
            jsonl_sort_records(r + start, end[b] - start, shift - 8);
}

/* Groups the gathered run by the fingerprint's top byte and appends it to
 * the store: the merge reads every run one top byte at a time. Once the
 * store has failed, the run is dropped. */
static void jsonl_spill_run(struct jsonl_ids *ids)
{
    size_t end[256];

    if (ids->run_len > 0 && !ids->spill_failed) {
        jsonl_group_records(ids->run, ids->run_len, 56, end);
        if (ids->spill.write(ids->spill.ctx, ids->run, ids->run_len * sizeof *ids->run) != 0)
            ids->spill_failed = 1;
        ids->spilled += ids->run_len;
    }
    ids->run_len = 0;
}

/* Once the store has failed (or the run could not be allocated), the
 * fingerprints past the set go unchecked: the validator still validates the
 * rest of the file (see jsonl_spill_verdict in src/jsonl.c). */
void jsonl_ids_spill(struct jsonl_ids *ids, uint64_t fp, uint64_t line, uint64_t column)
{
    if (ids->spill_failed)
        return;
    if (!ids->run) {
        ids->run = JSONL_MALLOC(JSONL_SPILL_RUN * sizeof *ids->run);
        if (!ids->run) {
            ids->spill_failed = 1;
            return;
        }
    }
    ids->run[ids->run_len++] = (struct jsonl_spill_record){fp, line, column};
    ids->spilled_by_top[fp >> 56]++;
    if (ids->run_len == JSONL_SPILL_RUN)
        jsonl_spill_run(ids);
}

/* One run's place in the merge, with some of its records read ahead. */
struct jsonl_run_cursor {
    uint64_t next, end; /* records of the run still in the store */
    size_t pos, len;
    struct jsonl_spill_record *buf; /* cap records */
    size_t cap;
};

/* Loads the cursor's next records; returns 0, 1 when the run is done, -1 on failure. */
static int jsonl_cursor_fill(struct jsonl_ids *ids, struct jsonl_run_cursor *c)
{
    size_t n = c->end - c->next < c->cap ? (size_t)(c->end - c->next) : c->cap;
    if (n == 0)
        return 1;
    if (ids->spill.read(ids->spill.ctx, c->next * sizeof c->buf[0], c->buf, n * sizeof c->buf[0]) !=
        0)
        return -1;
    c->next += n;
    c->pos = 0;
    c->len = n;
    return 0;
}

/* In records sorted by fingerprint, the group of equal ones that starts at
 * r[i]: *earliest and *next get its two earliest uses (next.line is
 * UINT64_MAX if it has one). Returns where the next group starts. */
static size_t jsonl_two_earliest(const struct jsonl_spill_record *r, size_t n, size_t i,
                                 struct jsonl_spill_record *earliest,
                                 struct jsonl_spill_record *next)
{
    size_t j = i + 1;

    *earliest = r[i];
    *next = (struct jsonl_spill_record){.line = UINT64_MAX};
    for (; j < n && r[j].fingerprint == r[i].fingerprint; j++) {
        if (r[j].line < earliest->line) {
            *next = *earliest;
            *earliest = r[j];
        } else if (r[j].line < next->line) {
            *next = r[j];
        }
    }
    return j;
}

/* In records sorted by fingerprint, finds the duplicate whose second use
 * comes first: if it comes before *second (or nothing was found yet),
 * *second gets that use, *first the earliest one, and *found is set. */
static void jsonl_first_duplicate(const struct jsonl_spill_record *r, size_t n,
                                  struct jsonl_spill_record *second, uint64_t *first, int *found)
{
    struct jsonl_spill_record earliest, next;

    for (size_t i = 0; i < n;) {
        i = jsonl_two_earliest(r, n, i, &earliest, &next);
        if (next.line != UINT64_MAX && (!*found || next.line < second->line)) {
            *second = next;
            *first = earliest.line;
            *found = 1;
        }
    }
}

/* One top byte's records, gathered from the runs. */
struct jsonl_bucket {
    struct jsonl_spill_record *r;
    size_t n, cap;
};

/* The bucket is full: keeps only the two earliest uses of each fingerprint
 * (all the merge needs of it), and if that leaves it more than half full,
 * doubles it. So memory follows the distinct fingerprints of one top byte,
 * however often a custom_id repeats. Returns 0, or -1 on out of memory. */
static int jsonl_bucket_make_room(struct jsonl_bucket *b)
{
    struct jsonl_spill_record earliest, next;
    size_t kept = 0;

    jsonl_sort_records(b->r, b->n, 48);
    for (size_t i = 0; i < b->n;) {
        i = jsonl_two_earliest(b->r, b->n, i, &earliest, &next);
        b->r[kept++] = earliest;
        if (next.line != UINT64_MAX)
            b->r[kept++] = next;
    }
    b->n = kept;
    if (kept > b->cap / 2) {
        struct jsonl_spill_record *bigger = NULL;
        if (b->cap <= SIZE_MAX / 2 / sizeof *bigger)
            bigger = JSONL_MALLOC(2 * b->cap * sizeof *bigger);
        if (!bigger)
            return -1;
        memcpy(bigger, b->r, kept * sizeof *bigger);
        JSONL_FREE(b->r);
        b->r = bigger;
        b->cap *= 2;
    }
    return 0;
}

/* Merges the runs and finds the duplicate whose second use comes first,
 * among the records of lines before below_line: *second gets that use,
 * *first the earliest one. Every run is grouped by the fingerprint's top
 * byte, so equal fingerprints share a top byte: for each byte, each run's
 * records of it are gathered, sorted, and their groups checked. Returns 1 if
 * there is a duplicate, 0 if none, -1 if the store or memory failed (or the
 * store gave back other records than it was given). */
static int jsonl_spill_merge(struct jsonl_ids *ids, uint64_t below_line,
                             struct jsonl_spill_record *second, uint64_t *first)
{
    uint64_t runs = (ids->spilled + JSONL_SPILL_RUN - 1) / JSONL_SPILL_RUN;
    struct jsonl_run_cursor *cursors = JSONL_CALLOC(runs ? runs : 1, sizeof *cursors);
    struct jsonl_bucket bucket = {.cap = 1};
    /* The read-ahead shares the run buffer, free once the last run is out:
     * the fewer the runs, the more each reads at a time (each read is a
     * system call). Past JSONL_SPILL_RUN / JSONL_SPILL_READ runs, a buffer
     * of JSONL_SPILL_READ records each. */
    size_t per_run = runs ? JSONL_SPILL_RUN / runs : 0;
    struct jsonl_spill_record *ahead = ids->run, *own = NULL;
    int found = 0, rc = -1;

    for (int b = 0; b < 256; b++)
        if (ids->spilled_by_top[b] > bucket.cap)
            bucket.cap = ids->spilled_by_top[b] < JSONL_BUCKET_MAX ? ids->spilled_by_top[b]
                                                                   : JSONL_BUCKET_MAX;
    bucket.r = JSONL_MALLOC(bucket.cap * sizeof *bucket.r);
    if (per_run < JSONL_SPILL_READ) {
        per_run = JSONL_SPILL_READ;
        ahead = own = JSONL_CALLOC(runs, JSONL_SPILL_READ * sizeof *own);
    }
    if (!cursors || !bucket.r || !ahead)
        goto out;
    for (uint64_t i = 0; i < runs; i++) {
        struct jsonl_run_cursor *c = &cursors[i];
        c->buf = ahead + i * per_run;
        c->cap = per_run;
        c->next = i * JSONL_SPILL_RUN;
        c->end =
            c->next + JSONL_SPILL_RUN < ids->spilled ? c->next + JSONL_SPILL_RUN : ids->spilled;
        if (jsonl_cursor_fill(ids, c) < 0)
            goto out;
    }
    for (unsigned b = 0; b < 256; b++) {
        uint64_t taken = 0;
        bucket.n = 0;
        for (uint64_t i = 0; i < runs; i++) {
            struct jsonl_run_cursor *c = &cursors[i];
            while (c->pos < c->len && c->buf[c->pos].fingerprint >> 56 == b) {
                struct jsonl_spill_record r = c->buf[c->pos];
                if (++c->pos == c->len && jsonl_cursor_fill(ids, c) < 0)
                    goto out;
                taken++;
                if (r.line >= below_line)
                    continue;
                if (bucket.n == bucket.cap && jsonl_bucket_make_room(&bucket) != 0)
                    goto out;
                bucket.r[bucket.n++] = r;
            }
        }
        if (taken != ids->spilled_by_top[b])
            goto out; /* the store gave back other records than it was given */
        jsonl_sort_records(bucket.r, bucket.n, 48);
        jsonl_first_duplicate(bucket.r, bucket.n, second, first, &found);
    }
    rc = found;
out:
    JSONL_FREE(cursors);
    JSONL_FREE(bucket.r);
    JSONL_FREE(own);
    return rc;
}

int jsonl_ids_spilled_any(const struct jsonl_ids *ids)
{
    return ids->spilled > 0 || ids->run_len > 0 || ids->spill_failed;
}

int jsonl_ids_first_duplicate(struct jsonl_ids *ids, uint64_t below_line,
                              struct jsonl_spill_record *second, uint64_t *first)
{
    jsonl_spill_run(ids);
    return ids->spill_failed ? -1 : jsonl_spill_merge(ids, below_line, second, first);
}
