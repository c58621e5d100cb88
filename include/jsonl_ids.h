/* The custom_ids a batch file has used so far, for the JSONL validator
 * (src/jsonl.c), as 64-bit fingerprints: a sharded set in memory, and past
 * memory_ids of them (given a spill store), records in runs in the store,
 * merged at the end to find the first duplicate. No I/O but the caller's
 * store. See docs/jsonl.md for the memory and false-duplicate figures. */
#ifndef JSONL_IDS_H
#define JSONL_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "jsonl.h"

/* The set: 2^12 shards, each an open-addressing (linear probing) table of
 * 6-byte slots grown by 1.25x at 7/8 load. A fingerprint's top 12 bits pick
 * the shard, its low 48 bits are stored (0 marks an empty slot, so a
 * remainder of 0 is stored as 1): 60 bits of the 64-bit fingerprint decide
 * equality. */
#define JSONL_SET_SHARD_BITS 12
#define JSONL_SET_SHARDS (1u << JSONL_SET_SHARD_BITS)
#define JSONL_SET_SLOT 6
#define JSONL_SET_REMAINDER_MASK ((UINT64_C(1) << 48) - 1)
#define JSONL_SET_PAD 2 /* bytes after the last slot, for 8-byte slot access */
#define JSONL_SET_MIN_CAP 8u
#define JSONL_SET_MAX_CAP (UINT32_MAX / 2)
/* Spilled custom_ids: records per run, and the least read ahead per run when
 * merging. */
#define JSONL_SPILL_RUN 4096
#define JSONL_SPILL_READ 32

/* A spilled custom_id: where it was used. */
struct jsonl_spill_record {
    uint64_t fingerprint;
    uint64_t line;
    uint64_t column;
};

struct jsonl_shard {
    unsigned char *slots; /* cap slots of JSONL_SET_SLOT bytes and JSONL_SET_PAD, owned */
    uint32_t count;
    uint32_t cap;
};

struct jsonl_ids {
    struct jsonl_shard *shards; /* JSONL_SET_SHARDS, owned; allocated at the first reserve */
    uint64_t set_count;
    /* beyond memory_ids fingerprints (with a spill store): the set only
     * answers lookups, and the fingerprints go to the store in runs */
    struct jsonl_spill spill;
    int spilling; /* a store was given */
    uint64_t memory_ids;
    struct jsonl_spill_record *run; /* JSONL_SPILL_RUN records being gathered, owned */
    size_t run_len;
    uint64_t spilled; /* records in the store, in runs of JSONL_SPILL_RUN (the last may be short) */
    uint64_t spilled_by_top[256]; /* of them, how many have each top byte of the fingerprint */
    int spill_failed; /* the store (or memory for a run) failed: later ids go unchecked */
};

/* spill: NULL (or one without both functions) keeps every fingerprint in
 * memory; memory_ids 0 means JSONL_DEFAULT_MEMORY_IDS. */
void jsonl_ids_init(struct jsonl_ids *ids, const struct jsonl_spill *spill, size_t memory_ids);
void jsonl_ids_free(struct jsonl_ids *ids);

/* 1 while the set takes new fingerprints (jsonl_ids_reserve then
 * jsonl_ids_insert); 0 once they spill (jsonl_ids_contains, then
 * jsonl_ids_spill if it is not there). */
int jsonl_ids_in_memory(const struct jsonl_ids *ids);

/* Makes room for one more fingerprint in fp's shard. Returns 0, or -1 on out
 * of memory (the set is then unchanged). */
int jsonl_ids_reserve(struct jsonl_ids *ids, uint64_t fp);
/* Adds fp, for which jsonl_ids_reserve made room. Returns 1 if it was
 * already there (nothing changes), 0 if it was added. */
int jsonl_ids_insert(struct jsonl_ids *ids, uint64_t fp);
/* 1 if fp is in the set: the lookup alone. */
int jsonl_ids_contains(const struct jsonl_ids *ids, uint64_t fp);

/* Keeps fp, used at line and column, for jsonl_ids_first_duplicate. */
void jsonl_ids_spill(struct jsonl_ids *ids, uint64_t fp, uint64_t line, uint64_t column);
/* 1 if anything went past the set (or tried to). */
int jsonl_ids_spilled_any(const struct jsonl_ids *ids);
/* Among the spilled records of lines before below_line, the duplicate whose
 * second use comes first: *second gets that use, *first the earliest one's
 * line. Returns 1 if there is one, 0 if none, -1 if the store or memory
 * failed (now or before). */
int jsonl_ids_first_duplicate(struct jsonl_ids *ids, uint64_t below_line,
                              struct jsonl_spill_record *second, uint64_t *first);

/* Home slot of remainder r in a table of cap slots (multiply-shift range reduction). */
static inline uint32_t jsonl_ids_slot_home(uint64_t r, uint32_t cap)
{
    return (uint32_t)(((r >> 16) * cap) >> 32);
}

static inline uint64_t jsonl_ids_remainder(uint64_t fp)
{
    uint64_t r = fp & JSONL_SET_REMAINDER_MASK;
    return r ? r : 1;
}

/* Starts loading the memory that jsonl_ids_insert (or jsonl_ids_contains)
 * will probe for fp, so that it arrives while the caller reads on. Always
 * inlined: GCC's IPA finds a separate function free of side effects and
 * drops the call, prefetches and all. */
static inline __attribute__((always_inline)) void jsonl_ids_prefetch(const struct jsonl_ids *ids,
                                                                     uint64_t fp)
{
    const struct jsonl_shard *sh;
    const unsigned char *home;

    if (!ids->shards)
        return; /* no fingerprint went into the set yet */
    sh = &ids->shards[fp >> (64 - JSONL_SET_SHARD_BITS)];
    if (!sh->slots)
        return; /* a shard that the set never reached before it spilled */
    home =
        sh->slots + (size_t)jsonl_ids_slot_home(jsonl_ids_remainder(fp), sh->cap) * JSONL_SET_SLOT;
    __builtin_prefetch(home);
    __builtin_prefetch(home + 64);
}

#endif
