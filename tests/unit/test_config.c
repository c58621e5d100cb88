/* Unit tests: configuration defaults, file parsing and limits (src/config.c). */
#undef FILES_API_SYSCONFDIR /* an installed configuration of the test's own */
#define FILES_API_SYSCONFDIR "/tmp/files-api-test-sysconfdir"
#include "../../src/config.c"

#include "testlib.h"

#include <sys/stat.h>
#include <sys/wait.h>

static int load_bytes(struct config *c, const char *text, size_t len, char *err, size_t err_size)
{
    char path[] = "/tmp/files-api-test-config.XXXXXX";
    int fd = mkstemp(path), rc;

    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        return -2;
    close(fd);
    rc = config_load_file(c, path, err, err_size);
    unlink(path);
    return rc;
}

static int load_text(struct config *c, const char *text, char *err, size_t err_size)
{
    return load_bytes(c, text, strlen(text), err, err_size);
}

/* Sets key to a value of size - 1 bytes (first, fill..., last), which must
 * be taken, then to one of size bytes, which must be refused. */
static void check_text_limit(struct config *c, const char *key, size_t size, char first, char fill,
                             char last)
{
    char value[1100], err[512];

    for (size_t length = size - 1; length <= size; length++) {
        memset(value, fill, length);
        value[0] = first;
        value[length - 1] = last;
        value[length] = '\0';
        CHECKF(config_set(c, key, value, err, sizeof err) == (length < size ? 0 : -1), "%s %zu",
               key, length);
    }
}

int main(void)
{
    struct config c;
    char err[512], value[CONFIG_MAX_LINE];

    config_defaults(&c);
    CHECK(c.max_file_bytes == 110100480ULL);
    CHECK(c.batch_checks == 1 && c.batch_url_count == 4);
    CHECK_STR(c.key_prefix, "sk-mel-");
    CHECK(c.jsonl_max_depth == 512);

    CHECK(load_text(&c,
                    "# comment\n\n  max_file_bytes = 1024  \nbatch_checks=off\n"
                    "batch_urls = /a, /b\ndownload_mode = x-sendfile\n",
                    err, sizeof err) == 0);
    CHECK(c.max_file_bytes == 1024 && c.batch_checks == 0);
    CHECK(c.batch_url_count == 2);
    CHECK_STR(c.batch_urls[1], "/b");
    CHECK(c.download_mode == DOWNLOAD_X_SENDFILE);
    CHECK(config_get(&c, "batch_urls", value, sizeof value) == 0);
    CHECK_STR(value, "/a,/b");
    CHECK(config_get(&c, "nope", value, sizeof value) == -1);
    for (const char *const *key = config_keys; *key; key++) {
        /* What config_get prints, config_set reads back. */
        struct config copy = c;
        CHECK(config_get(&c, *key, value, sizeof value) == 0);
        CHECKF(config_set(&copy, *key, value, err, sizeof err) == 0, "%s: %s", *key, err);
    }

    CHECK(load_text(&c, "unknown_key = 1\n", err, sizeof err) == -1);
    CHECK(strstr(err, ":1: unknown key") != NULL);
    CHECK(load_text(&c, "max_file_bytes\n", err, sizeof err) == -1);
    CHECK(load_text(&c, "max_file_bytes = 12abc\n", err, sizeof err) == -1);
    CHECK(load_text(&c, "max_file_bytes = 0\n", err, sizeof err) == -1);
    CHECK(load_text(&c, "batch_checks = maybe\n", err, sizeof err) == -1);
    CHECK(config_set(&c, "batch_checks", "off", err, sizeof err) == 0 && c.batch_checks == 0);
    CHECK(config_set(&c, "batch_checks", "ON", err, sizeof err) == 0 && c.batch_checks == 1);
    /* digits only: strtoll alone would take a sign or leading blanks */
    CHECK(config_set(&c, "max_requests", "+5", err, sizeof err) == -1);
    CHECK(config_set(&c, "max_requests", " 5", err, sizeof err) == -1);
    CHECK(load_text(&c, "download_mode = ftp\n", err, sizeof err) == -1);
    CHECK(load_text(&c, "batch_urls = ,\n", err, sizeof err) == -1);
    /* batch_urls: paths, no empty item (a stray ','), no spaces or quotes */
    for (const char *const *bad = (const char *const[]){"", ",/a", "/a,", "/a,,/b", "/a, ,/b",
                                                        "embeddings", "/a b", "/a\"", NULL};
         *bad; bad++)
        CHECKF(config_set(&c, "batch_urls", *bad, err, sizeof err) == -1, "%s", *bad);
    CHECK(config_set(&c, "batch_urls", " /a , /b/c ", err, sizeof err) == 0);
    CHECK(c.batch_url_count == 2);
    CHECK_STR(c.batch_urls[1], "/b/c");
    /* key_prefix: keys travel in headers */
    CHECK(config_set(&c, "key_prefix", "sk-Team_1-", err, sizeof err) == 0);
    CHECK(config_set(&c, "key_prefix", "", err, sizeof err) == 0);
    for (const char *const *bad = (const char *const[]){"sk mel", "sk\tx", "sk\"", "sk:", NULL};
         *bad; bad++)
        CHECKF(config_set(&c, "key_prefix", *bad, err, sizeof err) == -1, "%s", *bad);
    /* a key set twice in one file: refused, whichever line came last */
    CHECK(load_text(&c, "max_requests = 5\nmax_requests = 6\n", err, sizeof err) == -1);
    CHECKF(strstr(err, ":2: max_requests is set twice") != NULL, "%s", err);
    CHECK(load_text(&c, "max_requests = 5\nmax_file_bytes = 6\n", err, sizeof err) == 0);
    /* x_accel_prefix: nginx hides what is under it, so never the API's paths */
    CHECK(config_set(&c, "x_accel_prefix", "/_dl/", err, sizeof err) == 0);
    CHECK(config_set(&c, "x_accel_prefix", "/a/b-c.d~e_f/", err, sizeof err) == 0);
    for (const char *const *bad =
             (const char *const[]){"", "/", "//", "x/", "/x", "/a//b/", "/v1/", "/v1/files/",
                                   "/healthz/", "/_files_api_errors/", "/a b/", "/a\"/",
                                   "/a%2e/" /* an escape: nginx matches the decoded path */, NULL};
         *bad; bad++)
        CHECKF(config_set(&c, "x_accel_prefix", *bad, err, sizeof err) == -1, "%s", *bad);
    CHECK_STR(c.x_accel_prefix, "/a/b-c.d~e_f/");
    /* a path that opens but does not read as a file */
    CHECK(config_load_file(&c, "/tmp", err, sizeof err) == -1);
    CHECKF(strstr(err, "Is a directory") != NULL, "%s", err);
    /* Expiry default: 0 or 3600..2592000. */
    CHECK(config_set(&c, "default_expiry_seconds", "3600", err, sizeof err) == 0);
    CHECK(config_set(&c, "default_expiry_seconds", "3599", err, sizeof err) == -1);
    CHECK(config_set(&c, "default_expiry_seconds", "2592000", err, sizeof err) == 0);
    CHECK(config_set(&c, "default_expiry_seconds", "2592001", err, sizeof err) == -1);
    /* Every numeric key at its bounds, and one past each. */
    {
        static const struct {
            const char *key, *lowest, *highest, *below, *above;
        } bounds[] = {
            {"max_file_bytes", "1", "1099511627776", "0", "1099511627777"},
            {"keep_free_bytes", "0", "1125899906842624", "-1", "1125899906842625"},
            {"jsonl_max_depth", "1", "100000", "0", "100001"},
            {"db_busy_timeout_ms", "0", "600000", "-1", "600001"},
            {"max_requests", "0", "2147483648", "-1", "2147483649"},
            {"default_expiry_seconds", "0", "2592000", "-1", "2592001"},
        };
        for (size_t i = 0; i < sizeof bounds / sizeof *bounds; i++) {
            struct config copy = c;
            CHECKF(config_set(&copy, bounds[i].key, bounds[i].lowest, err, sizeof err) == 0, "%s",
                   bounds[i].key);
            CHECKF(config_set(&copy, bounds[i].key, bounds[i].highest, err, sizeof err) == 0, "%s",
                   bounds[i].key);
            CHECK(config_get(&copy, bounds[i].key, value, sizeof value) == 0);
            CHECK_STR(value, bounds[i].highest);
            CHECKF(config_set(&copy, bounds[i].key, bounds[i].below, err, sizeof err) == -1, "%s",
                   bounds[i].key);
            CHECKF(config_set(&copy, bounds[i].key, bounds[i].above, err, sizeof err) == -1, "%s",
                   bounds[i].key);
        }
    }
    /* Text keys at their buffers' size less the NUL, and one past. */
    {
        struct config copy = c;
        char urls[CONFIG_MAX_BATCH_URLS * 4 + 8] = "";
        check_text_limit(&copy, "data_dir", sizeof copy.data_dir, '/', 'a', 'a');
        check_text_limit(&copy, "key_prefix", sizeof copy.key_prefix, 'k', 'k', 'k');
        check_text_limit(&copy, "x_accel_prefix", sizeof copy.x_accel_prefix, '/', 'p', '/');
        check_text_limit(&copy, "batch_urls", sizeof copy.batch_urls[0], '/', 'u', 'u');
        for (int i = 0; i < CONFIG_MAX_BATCH_URLS; i++)
            snprintf(urls + strlen(urls), sizeof urls - strlen(urls), "%s/%c", i ? "," : "",
                     'a' + i);
        CHECK(config_set(&copy, "batch_urls", urls, err, sizeof err) == 0);
        CHECK(copy.batch_url_count == CONFIG_MAX_BATCH_URLS);
        strcat(urls, ",/z");
        CHECK(config_set(&copy, "batch_urls", urls, err, sizeof err) == -1);
    }
    /* Lines: CONFIG_MAX_LINE - 2 bytes of text fit (with newline and NUL), longer do not. */
    {
        static char text[CONFIG_MAX_LINE + 8];
        size_t prefix = strlen("key_prefix = ");
        memset(text, ' ', CONFIG_MAX_LINE - 2);
        memcpy(text, "key_prefix = ", prefix);
        text[CONFIG_MAX_LINE - 2] = '\n';
        text[CONFIG_MAX_LINE - 1] = '\0';
        CHECK(load_text(&c, text, err, sizeof err) == 0);
        memset(text, ' ', CONFIG_MAX_LINE - 1);
        memcpy(text, "key_prefix = ", prefix);
        text[CONFIG_MAX_LINE - 1] = '\n';
        text[CONFIG_MAX_LINE] = '\0';
        CHECK(load_text(&c, text, err, sizeof err) == -1 && strstr(err, "longer than"));
    }
    CHECK(load_text(&c, "data_dir =\n", err, sizeof err) == -1 && strstr(err, "data_dir: empty"));
    /* A NUL byte is named, on any line (it was "line longer than ..." or cut the
     * last line short); a byte order mark starting the file is skipped. */
    {
        static const char middle[] = "max_requests = 5\nmax_requests\0 = 7\nbatch_checks = off\n";
        static const char last[] = "max_requests = 5\0junk";
        CHECK(load_bytes(&c, middle, sizeof middle - 1, err, sizeof err) == -1);
        CHECKF(strstr(err, ":2: a NUL byte") != NULL, "%s", err);
        CHECK(load_bytes(&c, last, sizeof last - 1, err, sizeof err) == -1);
        CHECKF(strstr(err, ":1: a NUL byte") != NULL, "%s", err);
        CHECK(load_text(&c, "\xEF\xBB\xBFmax_requests = 9\n", err, sizeof err) == 0);
        CHECK(c.max_requests == 9);
        CHECK(load_text(&c, "# x\n\xEF\xBB\xBFmax_requests = 9\n", err, sizeof err) == -1);
        CHECKF(strstr(err, ":2: unknown key") != NULL, "%s", err);
    }
    CHECK(config_resolve(&c, "/nonexistent/files-api.conf", NULL, err, sizeof err) == -1);
    CHECK(config_resolve(&c, "", "/srv/data", err, sizeof err) == 0);
    CHECK_STR(c.data_dir, "/srv/data");
    /* $FILES_API_<KEY> sets KEY over the file; --data-dir still wins; empty is unset. */
    {
        char path[] = "/tmp/files-api-test-config.XXXXXX";
        int fd = mkstemp(path);
        const char *text = "download_mode = x-sendfile\nmax_requests = 7\n";
        CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        close(fd);
        setenv("FILES_API_DOWNLOAD_MODE", "x-accel-redirect", 1);
        setenv("FILES_API_DATA_DIR", "/from/env", 1);
        setenv("FILES_API_MAX_REQUESTS", "", 1);
        CHECK(config_resolve(&c, path, NULL, err, sizeof err) == 0);
        CHECK(c.download_mode == DOWNLOAD_X_ACCEL);
        CHECK_STR(c.data_dir, "/from/env");
        CHECK(c.max_requests == 7);
        CHECK(config_resolve(&c, path, "/from/arg", err, sizeof err) == 0);
        CHECK_STR(c.data_dir, "/from/arg");
        setenv("FILES_API_DOWNLOAD_MODE", "ftp", 1);
        CHECK(config_resolve(&c, path, NULL, err, sizeof err) == -1);
        CHECKF(strstr(err, "$FILES_API_DOWNLOAD_MODE: download_mode") != NULL, "%s", err);
        unsetenv("FILES_API_DOWNLOAD_MODE");
        unsetenv("FILES_API_DATA_DIR");
        unsetenv("FILES_API_MAX_REQUESTS");
        CHECK(config_resolve(&c, path, NULL, err, sizeof err) == 0);
        CHECK(c.download_mode == DOWNLOAD_X_SENDFILE);
        CHECK_STR(c.data_dir, "./var");
        unlink(path);
    }
    /* The installed file is read when neither --config nor $FILES_API_CONFIG
     * names one; an empty $FILES_API_CONFIG counts as unset (a web server
     * may pass it on empty); an explicit empty --config reads none. */
    {
        const char *installed = FILES_API_SYSCONFDIR "/files-api/files-api.conf";
        FILE *f;
        CHECK(system("mkdir -p " FILES_API_SYSCONFDIR "/files-api") == 0);
        f = fopen(installed, "w");
        CHECK(f && fputs("max_requests = 7\n", f) >= 0 && fclose(f) == 0);
        CHECK(config_resolve(&c, NULL, NULL, err, sizeof err) == 0 && c.max_requests == 7);
        setenv("FILES_API_CONFIG", "", 1);
        CHECK(config_resolve(&c, NULL, NULL, err, sizeof err) == 0);
        CHECKF(c.max_requests == 7, "max_requests %u", (unsigned)c.max_requests);
        unsetenv("FILES_API_CONFIG");
        CHECK(config_resolve(&c, "", NULL, err, sizeof err) == 0 && c.max_requests == 0);
        /* One the user cannot read stops the program, as a named one does: it
         * was skipped without a word, and the service ran on the defaults. */
        CHECK(chmod(FILES_API_SYSCONFDIR, 0755) == 0 &&
              chmod(FILES_API_SYSCONFDIR "/files-api", 0755) == 0 && chmod(installed, 0) == 0);
        /* the file unreadable, then its directory closed to the user */
        for (int closed_dir = 0; closed_dir < 2; closed_dir++) {
            pid_t child;
            if (closed_dir)
                CHECK(chmod(installed, 0644) == 0 &&
                      chmod(FILES_API_SYSCONFDIR "/files-api", 0) == 0);
            child = fork();
            int status = -1;
            if (child == 0) {
                /* root reads any file: the child is nobody */
                if (geteuid() == 0 &&
                    (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0))
                    _exit(3);
                if (config_resolve(&c, NULL, NULL, err, sizeof err) != -1)
                    _exit(1);
                _exit(strstr(err, installed) && strstr(err, "Permission denied") ? 0 : 2);
            }
            CHECK(child > 0 && waitpid(child, &status, 0) == child);
            CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d (closed_dir %d)",
                   status, closed_dir);
        }
        CHECK(chmod(FILES_API_SYSCONFDIR "/files-api", 0755) == 0);
        CHECK(system("rm -rf " FILES_API_SYSCONFDIR) == 0);
    }
    /* A $FILES_API_* that is no setting is warned about, not ignored in silence. */
    {
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        setenv("FILES_API_DOWNLAOD_MODE", "stream", 1);
        setenv("FILES_API_DOWNLOAD_MODE", "stream", 1);
        setenv("FILES_API_CONFIG", "", 1);
        setenv("FILES_API_X", "1", 1);
        setenv("FILES_API_BI", "1", 1);           /* a prefix of BIN is not BIN */
        setenv("FILES_API_SPOOL_DIR", "/tmp", 1); /* serve.sh's own */
        unsetenv("FILES_API_SERVER");             /* (the test runner's may be set) */
        unsetenv("FILES_API_KEEP_TMP");
        CHECK(config_warn_unknown_environment(out, "prog") == 3);
        fclose(out);
        CHECKF(strstr(text, "prog: warning: $FILES_API_DOWNLAOD_MODE is not a setting") != NULL,
               "%s", text);
        CHECKF(strstr(text, "$FILES_API_X is not") != NULL, "%s", text);
        CHECKF(strstr(text, "$FILES_API_BI is not") != NULL, "%s", text);
        CHECKF(strstr(text, "$FILES_API_DOWNLOAD_MODE ") == NULL, "%s", text);
        CHECKF(strstr(text, "$FILES_API_CONFIG ") == NULL, "%s", text);
        CHECKF(strstr(text, "$FILES_API_SPOOL_DIR ") == NULL, "%s", text);
        free(text);
        unsetenv("FILES_API_DOWNLAOD_MODE");
        unsetenv("FILES_API_DOWNLOAD_MODE");
        unsetenv("FILES_API_CONFIG");
        unsetenv("FILES_API_X");
        unsetenv("FILES_API_BI");
        unsetenv("FILES_API_SPOOL_DIR");
    }
    TEST_MAIN_END();
}
