/* sink — the benchmarks' FastCGI baseline: the least a worker can do.
 *
 * Accepts requests one at a time on the socket spawn-fcgi passes as fd 0 (like
 * files-fcgi), reads the whole request body with FCGX_GetStr in 64 KiB reads,
 * throws it away, and answers every request (any method, any path) with a
 * constant small JSON document shaped like a file object. bench/run.sh runs it
 * with scripts/serve.sh itself (as bin/files-fcgi of a scratch bin directory),
 * so it gets exactly the same lighttpd configuration, spawn-fcgi + multiwatch
 * pool and worker count as the service. Command-line arguments are ignored
 * (serve.sh passes --data-dir/--config).
 *
 *   cc -O2 -o sink bench/sink.c -lfcgi
 */
#include <fcgiapp.h>
#include <stdio.h>
#include <string.h>

#define SINK_CHUNK (64 * 1024)

static const char sink_body[] =
    "{\"id\":\"file_000000000000000000000000\",\"object\":\"file\",\"bytes\":0,"
    "\"created_at\":1700000000,\"filename\":\"sink.jsonl\",\"purpose\":\"batch\","
    "\"status\":\"processed\",\"expires_at\":null}\n";

int main(void)
{
    static char chunk[SINK_CHUNK];
    FCGX_Request request;

    if (FCGX_Init() != 0 || FCGX_InitRequest(&request, 0, 0) != 0) {
        fprintf(stderr, "sink: FastCGI initialisation failed\n");
        return 1;
    }
    while (FCGX_Accept_r(&request) >= 0) {
        unsigned long long total = 0;
        int got;

        while ((got = FCGX_GetStr(chunk, SINK_CHUNK, request.in)) > 0) {
            total += (unsigned long long)got;
            if (got < SINK_CHUNK)
                break;
        }
        FCGX_FPrintF(request.out,
                     "Status: 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %u\r\nX-Sink-Bytes: %llu\r\n\r\n",
                     (unsigned)(sizeof sink_body - 1), total);
        FCGX_PutStr(sink_body, (int)(sizeof sink_body - 1), request.out);
        FCGX_Finish_r(&request);
    }
    return 0;
}
