/* Service configuration: built-in defaults, overridden by one "key = value"
 * file (conf/files-api.conf documents every key), then by command-line flags. */
#ifndef CONFIG_H
#define CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_DEFAULT_MAX_FILE_BYTES 110100480ULL /* 105 MiB */
#define CONFIG_DEFAULT_KEEP_FREE_BYTES 16777216ULL /* 16 MiB */
#define CONFIG_MAX_BATCH_URLS 16
#define CONFIG_MAX_LINE 4096 /* bytes of one line of the config file */
/* The expiry a file may be given (OpenAI's expires_after[seconds] rule): an
 * upload's own, or default_expiry_seconds. */
#define CONFIG_EXPIRY_MIN_SECONDS 3600
#define CONFIG_EXPIRY_MAX_SECONDS 2592000

enum download_mode {
    DOWNLOAD_STREAM,     /* the worker streams the bytes itself */
    DOWNLOAD_X_SENDFILE, /* X-Sendfile: lighttpd, Apache mod_xsendfile */
    DOWNLOAD_X_ACCEL,    /* X-Accel-Redirect: nginx */
};

struct config {
    char data_dir[1024];      /* content, temp files and the database */
    uint64_t max_file_bytes;  /* largest accepted file part */
    uint64_t keep_free_bytes; /* an upload may not leave less free on the data's disk */
    unsigned jsonl_max_depth; /* nesting limit of one JSONL line */
    int batch_checks;         /* purpose=batch lines must be batch requests */
    char batch_urls[CONFIG_MAX_BATCH_URLS][128];
    size_t batch_url_count;
    char key_prefix[32];    /* prefix of new API keys */
    int db_busy_timeout_ms; /* wait for the write lock before SYSTEM_9003 */
    unsigned max_requests;  /* worker exits after this many requests; 0 = never */
    enum download_mode download_mode;
    char x_accel_prefix[256];       /* internal nginx location mapped to data_dir/files */
    int64_t default_expiry_seconds; /* expiry of batch uploads without expires_after; 0 = none */
};

/* Fills *c with the built-in defaults. */
void config_defaults(struct config *c);

/* Reads "key = value" lines from path over *c. Returns 0, or -1 with a
 * "file:line: reason" message in err. Unknown keys are errors (typos matter). */
int config_load_file(struct config *c, const char *path, char *err, size_t err_size);

/* Sets one key from its text value. Returns 0, or -1 with a reason in err. */
int config_set(struct config *c, const char *key, const char *value, char *err, size_t err_size);

/* Every key, in the order the shipped config file documents them; NULL-terminated. */
extern const char *const config_keys[];

/* Writes the value of key as config_set would read it. Returns 0, or -1 for an unknown key. */
int config_get(const struct config *c, const char *key, char *out, size_t out_size);

/* Finds the configuration the way both programs do: --config PATH, else
 * $FILES_API_CONFIG, else SYSCONFDIR/files-api/files-api.conf if it exists,
 * else defaults; then $FILES_API_<KEY> overrides KEY (e.g. $FILES_API_DATA_DIR,
 * $FILES_API_DOWNLOAD_MODE), and --data-dir overrides data_dir.
 * Returns 0, or -1 with a reason in err. */
int config_resolve(struct config *c, const char *config_path, const char *data_dir, char *err,
                   size_t err_size);

/* Warns on out, as program, of each $FILES_API_* variable that is neither a key
 * nor read by the project's programs and scripts (a misspelled setting, most
 * likely, which would otherwise be ignored in silence). Returns how many. */
size_t config_warn_unknown_environment(FILE *out, const char *program);
/* Calls each() with the name (len bytes, not NUL-terminated) of each of those
 * variables instead. Returns how many. */
size_t config_each_unknown_environment(void (*each)(const char *name, size_t len, void *ctx),
                                       void *ctx);

#endif
