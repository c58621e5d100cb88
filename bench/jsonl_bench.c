/* jsonl_bench — throughput of the JSONL validator against per-line cJSON.
 *
 * Generates about 200 MB of batch JSONL in memory (chat-completion requests of
 * ~200-2000 bytes, mostly ASCII text with some multi-byte UTF-8 and escapes;
 * deterministic), then times, interleaved over several rounds:
 *   (a) jsonl_validator in batch mode, fed in 64 KiB chunks, its custom_id
 *       fingerprints spilling to a scratch file past the default count held in
 *       memory, as the worker runs it (src/ingest.c);
 *   (b) cJSON_ParseWithLength + cJSON_Delete on each line (found with memchr).
 * Prints the median GB/s of each and their ratio.
 *
 * Build (from the repository root):
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -o /tmp/jsonl_bench bench/jsonl_bench.c \
 *       src/jsonl.c src/jsonl_ids.c -lcjson -lxxhash
 * Usage: jsonl_bench [megabytes [rounds]]     (default 200 MB, 7 rounds)
 *        jsonl_bench --tiny N                 (N minimal batch lines: reports the
 *                                              validator's peak RSS, for the memory budget)
 *        jsonl_bench --ours [megabytes [rounds]]  (the validator only, for a profiler)
 *        jsonl_bench --file PATH [rounds]     (the same comparison on a file's batch JSONL,
 *                                              e.g. the upload bench's, instead of generated data)
 */
#include "jsonl.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_CHUNK (64 * 1024)

static uint64_t bench_rng = 0x9E3779B97F4A7C15u;

static uint64_t bench_next(void)
{
    bench_rng ^= bench_rng << 13;
    bench_rng ^= bench_rng >> 7;
    bench_rng ^= bench_rng << 17;
    return bench_rng;
}

static unsigned bench_below(unsigned n)
{
    return (unsigned)(bench_next() % n);
}

struct bench_buf {
    char *data;
    size_t len, cap;
};

static void bench_put(struct bench_buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data) {
            perror("realloc");
            exit(1);
        }
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void bench_puts(struct bench_buf *b, const char *s)
{
    bench_put(b, s, strlen(s));
}

static const char *const bench_words[] = {
    "the",      "quick",    "brown",     "fox",       "jumps",   "over",         "lazy",
    "dog",      "please",   "summarize", "following", "article", "about",        "climate",
    "policy",   "and",      "its",       "effects",   "on",      "agriculture",  "in",
    "Europe",   "write",    "a",         "short",     "poem",    "translate",    "this",
    "sentence", "into",     "French",    "explain",   "how",     "transformers", "work",
    "with",     "examples", "of",        "code",      "Python",  "function",     "returns",
    "list",     "customer", "review",    "product",   "quality", "shipping",     "was",
    "fast",     "but",      "packaging", "damaged",   "rate",    "from",         "1",
    "to",       "5",        "JSON",      "output",    "only",    "fields:",      "name,",
    "score,",   "reason.",  "What",      "is",        "capital", "Australia?",   "Answer",
};
static const char *const bench_utf8_words[] = {
    "caf\xc3\xa9",
    "na\xc3\xafve",
    "\xc3\xbc"
    "ber",
    "Stra\xc3\x9f"
    "e",
    "\xe2\x80\x94",
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
    "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
    "\xf0\x9f\x98\x80",
    "\xe2\x82\xac"
    "42",
    "r\xc3\xa9sum\xc3\xa9",
};
static const char *const bench_escapes[] = {"\\n", "\\\"", "\\t", "\\u00e9", "\\\\", "\\n\\n"};

/* Appends about target bytes of prompt text. */
static void bench_text(struct bench_buf *b, size_t target)
{
    size_t start = b->len;
    while (b->len - start < target) {
        unsigned r = bench_below(100);
        if (b->len != start)
            bench_put(b, " ", 1);
        if (r < 5)
            bench_puts(b, bench_utf8_words[bench_below(sizeof bench_utf8_words /
                                                       sizeof bench_utf8_words[0])]);
        else if (r < 7)
            bench_puts(b,
                       bench_escapes[bench_below(sizeof bench_escapes / sizeof bench_escapes[0])]);
        else
            bench_puts(b, bench_words[bench_below(sizeof bench_words / sizeof bench_words[0])]);
    }
}

static void bench_generate(struct bench_buf *b, size_t bytes, uint64_t *lines)
{
    char tmp[256];
    uint64_t n = 0;
    while (b->len < bytes) {
        size_t total = 200 + bench_below(1800);
        size_t line_start = b->len;
        snprintf(tmp, sizeof tmp,
                 "{\"custom_id\": \"request-%llu\", \"method\": \"POST\", \"url\": "
                 "\"/v1/chat/completions\", \"body\": {\"model\": \"gpt-4o-mini\", "
                 "\"messages\": [{\"role\": \"system\", \"content\": \"",
                 (unsigned long long)n);
        bench_puts(b, tmp);
        bench_text(b, 20 + bench_below(60));
        bench_puts(b, "\"}, {\"role\": \"user\", \"content\": \"");
        {
            size_t used = b->len - line_start + 60;
            bench_text(b, total > used ? total - used : 10);
        }
        snprintf(tmp, sizeof tmp, "\"}], \"max_tokens\": %u, \"temperature\": 0.%u}}\n",
                 100 + bench_below(4000), bench_below(10));
        bench_puts(b, tmp);
        n++;
    }
    *lines = n;
}

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this thread: unlike wall time, not inflated when other
 * processes share the cores. */
static double bench_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The validator's scratch store: a file deleted at once, as the worker's. */
static int bench_spill_write(void *ctx, const void *data, size_t len)
{
    return fwrite(data, 1, len, ctx) == len ? 0 : -1;
}

static int bench_spill_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
    return fflush(ctx) == 0 && pread(fileno(ctx), buf, len, (off_t)offset) == (ssize_t)len ? 0 : -1;
}

static int bench_validate(const char *data, size_t len, uint64_t *objects)
{
    FILE *scratch = tmpfile();
    struct jsonl_spill spill = {bench_spill_write, bench_spill_read, scratch};
    struct jsonl_options o = {.check_batch = 1, .hash_seed = 0x1234567890abcdefu, .spill = &spill};
    struct jsonl_validator *v = scratch ? jsonl_validator_new(&o) : NULL;
    int rc = 0;
    if (!v) {
        if (scratch)
            fclose(scratch);
        return -2;
    }
    for (size_t off = 0; off < len && rc == 0; off += BENCH_CHUNK)
        rc = jsonl_validator_feed(v, data + off, len - off < BENCH_CHUNK ? len - off : BENCH_CHUNK);
    if (rc == 0)
        rc = jsonl_validator_finish(v);
    if (rc)
        fprintf(stderr, "validator: %s\n", jsonl_validator_error(v)->message);
    *objects = jsonl_validator_objects(v);
    jsonl_validator_free(v);
    fclose(scratch);
    return rc;
}

static int bench_cjson(const char *data, size_t len, uint64_t *objects)
{
    const char *p = data, *end = data + len;
    uint64_t n = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        cJSON *j = cJSON_ParseWithLength(p, l);
        if (!j)
            return -1;
        cJSON_Delete(j);
        n++;
        p += l + 1;
    }
    *objects = n;
    return 0;
}

static int bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long bench_maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* N minimal batch lines in 64 KiB pieces generated on the fly: the RSS growth
 * is the validator's (mostly the custom_id set). */
static int bench_tiny(uint64_t n)
{
    struct jsonl_options o = {.check_batch = 1, .hash_seed = 42};
    struct jsonl_validator *v = jsonl_validator_new(&o);
    char *chunk = malloc(BENCH_CHUNK + 256);
    size_t used = 0;
    uint64_t bytes = 0;
    long before = bench_maxrss_kib();
    int rc = 0;
    double t0 = bench_now();
    if (!v || !chunk)
        return 1;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        used += (size_t)sprintf(chunk + used,
                                "{\"custom_id\":\"%llx\",\"method\":\"POST\",\"url\":"
                                "\"/v1/embeddings\",\"body\":{}}\n",
                                (unsigned long long)i);
        if (used >= BENCH_CHUNK) {
            rc = jsonl_validator_feed(v, chunk, used);
            bytes += used;
            used = 0;
        }
    }
    if (rc == 0 && used)
        rc = jsonl_validator_feed(v, chunk, used);
    bytes += used;
    if (rc == 0)
        rc = jsonl_validator_finish(v);
    printf("tiny: %llu lines, %.1f MiB, rc %d, %.2f s, objects %llu, max RSS %ld KiB -> %ld KiB "
           "(+%.2f MiB, %.2f bytes per line)\n",
           (unsigned long long)n, (double)bytes / 1048576.0, rc, bench_now() - t0,
           (unsigned long long)jsonl_validator_objects(v), before, bench_maxrss_kib(),
           (double)(bench_maxrss_kib() - before) / 1024.0,
           (double)(bench_maxrss_kib() - before) * 1024.0 / (double)n);
    jsonl_validator_free(v);
    free(chunk);
    return rc != 0;
}

int main(int argc, char **argv)
{
    size_t megabytes = 200;
    int rounds = 7;
    struct bench_buf b = {0};
    uint64_t lines, objects = 0;
    double ours[64], theirs[64], ours_cpu[64], theirs_cpu[64];

    int only_ours = 0;

    const char *path = NULL;

    if (argc > 2 && strcmp(argv[1], "--tiny") == 0)
        return bench_tiny(strtoull(argv[2], NULL, 10));
    if (argc > 2 && strcmp(argv[1], "--file") == 0) {
        path = argv[2];
        argc -= 1; /* what follows is [rounds], in the place of [megabytes [rounds]] */
        argv += 1;
        argv[1] = "1";
    }
    if (argc > 1 && strcmp(argv[1], "--ours") == 0) {
        only_ours = 1;
        argc--;
        argv++;
    }
    if (argc > 1)
        megabytes = strtoul(argv[1], NULL, 10);
    if (argc > 2)
        rounds = atoi(argv[2]);
    if (rounds < 1 || rounds > 64 || megabytes == 0) {
        fprintf(stderr, "usage: %s [megabytes [rounds 1-64]] | --tiny LINES\n", argv[0]);
        return 2;
    }
    if (path) {
        FILE *f = fopen(path, "rb");
        long size;
        if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET)) {
            perror(path);
            return 2;
        }
        b.len = b.cap = (size_t)size;
        b.data = malloc(b.len);
        if (!b.data || fread(b.data, 1, b.len, f) != b.len) {
            perror(path);
            return 2;
        }
        fclose(f);
        lines = 0;
        for (size_t i = 0; i < b.len; i++)
            lines += b.data[i] == '\n';
        if (b.len && b.data[b.len - 1] != '\n')
            lines++;
    } else {
        bench_generate(&b, megabytes * 1000 * 1000, &lines);
    }
    /* The first read of freshly generated memory is slow on this VM (about 1 GB/s
     * even for memchr): touch it once so that neither contender pays for it. */
    {
        size_t n = 0;
        for (const char *p = b.data; (p = memchr(p, '\n', (size_t)(b.data + b.len - p))); p++)
            n++;
        if (n != lines)
            return 1;
    }
    printf("data: %.1f MB, %llu lines, %.0f bytes per line\n", (double)b.len / 1e6,
           (unsigned long long)lines, (double)b.len / (double)lines);

    for (int r = 0; r < rounds; r++) {
        double t0 = bench_now(), c0 = bench_cpu_now();
        if (bench_validate(b.data, b.len, &objects) != 0 || objects != lines) {
            fprintf(stderr, "validator rejected the data (%llu objects)\n",
                    (unsigned long long)objects);
            return 1;
        }
        double t1 = bench_now(), c1 = bench_cpu_now();
        ours[r] = (double)b.len / (t1 - t0) / 1e9;
        ours_cpu[r] = (double)b.len / (c1 - c0) / 1e9;
        if (only_ours) {
            printf("round %d: jsonl %.3f GB/s (cpu %.3f)\n", r + 1, ours[r], ours_cpu[r]);
            continue;
        }
        if (bench_cjson(b.data, b.len, &objects) != 0 || objects != lines) {
            fprintf(stderr, "cJSON rejected the data\n");
            return 1;
        }
        double t2 = bench_now(), c2 = bench_cpu_now();
        theirs[r] = (double)b.len / (t2 - t1) / 1e9;
        theirs_cpu[r] = (double)b.len / (c2 - c1) / 1e9;
        printf("round %d: jsonl %.3f GB/s, cJSON %.3f GB/s (cpu time: %.3f, %.3f)\n", r + 1,
               ours[r], theirs[r], ours_cpu[r], theirs_cpu[r]);
    }
    if (only_ours)
        return 0;
    qsort(ours, (size_t)rounds, sizeof ours[0], bench_cmp);
    qsort(theirs, (size_t)rounds, sizeof theirs[0], bench_cmp);
    qsort(ours_cpu, (size_t)rounds, sizeof ours_cpu[0], bench_cmp);
    qsort(theirs_cpu, (size_t)rounds, sizeof theirs_cpu[0], bench_cmp);
    printf("median: jsonl_validator %.3f GB/s, cJSON_ParseWithLength per line %.3f GB/s, "
           "ratio %.2fx\n",
           ours[rounds / 2], theirs[rounds / 2], ours[rounds / 2] / theirs[rounds / 2]);
    printf("median by thread CPU time: jsonl_validator %.3f GB/s, cJSON %.3f GB/s, ratio %.2fx\n",
           ours_cpu[rounds / 2], theirs_cpu[rounds / 2],
           ours_cpu[rounds / 2] / theirs_cpu[rounds / 2]);
    free(b.data);
    return 0;
}
