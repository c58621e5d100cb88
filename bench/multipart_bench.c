/* Throughput of the multipart parser on one ~100 MiB file part fed in 64 KiB
 * chunks, as the upload handler feeds it. Three kinds of content: JSONL with
 * LF line ends (the common case), JSONL with CRLF (a CR every line: the
 * delimiter scan stops at each), and random bytes (a CR every 256 bytes).
 *
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -o /tmp/multipart_bench \
 *      bench/multipart_bench.c src/multipart.c && /tmp/multipart_bench
 */
#include "multipart.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FILE_BYTES (100u * 1024 * 1024)
#define CHUNK (64 * 1024)
#define ROUNDS 7

static const char boundary[] = "9d1a7fe2d4c64b2c8cfb3f7ad9e2b4e1"; /* as httpx makes them */

struct counts {
    uint64_t bytes;  /* data bytes delivered */
    uint64_t pieces; /* on_part_data calls */
    uint64_t sum;    /* touches the data a little, so nothing is optimised away */
};

static int on_data(void *ctx, const char *data, size_t len)
{
    struct counts *c = ctx;
    c->bytes += len;
    c->pieces++;
    c->sum += (unsigned char)data[0] + (unsigned char)data[len - 1];
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Builds the body; kind 0 JSONL/LF, 1 JSONL/CRLF, 2 random bytes. */
static char *make_body(int kind, size_t *len)
{
    static const char head_fmt[] =
        "--%s\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
        "batch\r\n--%s\r\nContent-Disposition: form-data; "
        "name=\"file\"; filename=\"big.jsonl\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n";
    const char *eol = kind == 1 ? "\r\n" : "\n";
    char head[512], tail[128], line[256];
    size_t hl, tl, at, n = 0;
    uint64_t x = 88172645463325252ULL;
    char *b;

    hl = (size_t)snprintf(head, sizeof head, head_fmt, boundary, boundary);
    tl = (size_t)snprintf(tail, sizeof tail, "\r\n--%s--\r\n", boundary);
    b = malloc(hl + FILE_BYTES + tl);
    if (b == NULL)
        exit(1);
    memcpy(b, head, hl);
    at = hl;
    while (at < hl + FILE_BYTES) {
        size_t ll, room = hl + FILE_BYTES - at;
        if (kind == 2) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[at++] = (char)x;
            continue;
        }
        ll = (size_t)snprintf(line, sizeof line,
                              "{\"custom_id\":\"request-%zu\",\"method\":\"POST\",\"url\":"
                              "\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-4o-mini\","
                              "\"messages\":[{\"role\":\"user\",\"content\":\"Hello %zu\"}]}}%s",
                              n, n, eol);
        n++;
        memcpy(b + at, line, ll < room ? ll : room);
        at += ll < room ? ll : room;
    }
    if (kind == 2) /* random bytes must not hold the delimiter */
        for (size_t i = hl; i + 4 <= hl + FILE_BYTES; i++)
            if (memcmp(b + i, "\r\n--", 4) == 0)
                b[i] = 'x';
    memcpy(b + at, tail, tl);
    *len = at + tl;
    return b;
}

int main(void)
{
    static const char *names[] = {"JSONL, LF line ends", "JSONL, CRLF line ends", "random bytes"};
    int kind;

    printf("multipart_bench: %u MiB file part, %d KiB chunks, best and median of %d runs\n",
           FILE_BYTES >> 20, CHUNK >> 10, ROUNDS);
    for (kind = 0; kind < 3; kind++) {
        size_t len, at;
        char *body = make_body(kind, &len);
        double secs[ROUNDS];
        struct counts c = {0, 0, 0};
        int r;

        for (r = 0; r < ROUNDS; r++) {
            struct multipart_parser p;
            struct multipart_callbacks cb = {NULL, on_data, NULL};
            double t0;
            int st = MULTIPART_OK;

            memset(&c, 0, sizeof c);
            multipart_parser_init(&p, boundary, &cb, &c);
            t0 = now();
            for (at = 0; at < len && st == MULTIPART_OK; at += CHUNK)
                st = multipart_parser_feed(&p, body + at, len - at < CHUNK ? len - at : CHUNK);
            if (st == MULTIPART_OK)
                st = multipart_parser_finish(&p);
            secs[r] = now() - t0;
            if (st != MULTIPART_OK || c.bytes != FILE_BYTES + 5) {
                fprintf(stderr, "parse failed: %d %s (%llu bytes)\n", st,
                        multipart_parser_error(&p), (unsigned long long)c.bytes);
                return 1;
            }
        }
        qsort(secs, ROUNDS, sizeof secs[0], cmp_double);
        printf("%-24s %7.2f GB/s best, %7.2f GB/s median (%.1f ms; %llu pieces)\n", names[kind],
               (double)len / secs[0] / 1e9, (double)len / secs[ROUNDS / 2] / 1e9, secs[0] * 1e3,
               (unsigned long long)c.pieces);
        free(body);
    }
    printf("sizeof(struct multipart_parser) = %zu bytes\n", sizeof(struct multipart_parser));
    return 0;
}
