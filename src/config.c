#include "config.h"

#include "ids.h"
#include "jsonl.h"

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef FILES_API_SYSCONFDIR
#define FILES_API_SYSCONFDIR "/usr/local/etc"
#endif

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->data_dir, sizeof c->data_dir, "./var");
    c->max_file_bytes = CONFIG_DEFAULT_MAX_FILE_BYTES;
    c->keep_free_bytes = CONFIG_DEFAULT_KEEP_FREE_BYTES;
    c->jsonl_max_depth = JSONL_DEFAULT_MAX_DEPTH;
    c->batch_checks = 1;
    for (size_t i = 0; i < jsonl_default_batch_url_count; i++)
        snprintf(c->batch_urls[i], sizeof c->batch_urls[i], "%s", jsonl_default_batch_urls[i]);
    c->batch_url_count = jsonl_default_batch_url_count;
    snprintf(c->key_prefix, sizeof c->key_prefix, "sk-mel-");
    c->db_busy_timeout_ms = 5000;
    c->max_requests = 0;
    c->download_mode = DOWNLOAD_STREAM;
    snprintf(c->x_accel_prefix, sizeof c->x_accel_prefix, "/_files_internal/");
    c->default_expiry_seconds = 0;
}

/* Parses a whole decimal number in [min, max]. Returns 0 or -1. */
static int parse_integer(const char *text, long long min, long long max, long long *out)
{
    char *end;
    long long v;

    if (!isdigit((unsigned char)text[0]) && text[0] != '-')
        return -1;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* The integer keys: their range, and where each goes in struct config (a
 * field of 8 or 4 bytes, never negative). */
struct integer_key {
    const char *key;
    long long min, max;
    long long least_but_zero; /* a value other than 0 must be at least this (0: no rule) */
    size_t offset, size;
};

#define CONFIG_FIELD(name) offsetof(struct config, name), sizeof((struct config *)0)->name

static const struct integer_key integer_keys[] = {
    {"max_file_bytes", 1, 1LL << 40, 0, CONFIG_FIELD(max_file_bytes)},
    {"keep_free_bytes", 0, 1LL << 50, 0, CONFIG_FIELD(keep_free_bytes)},
    {"jsonl_max_depth", 1, 100000, 0, CONFIG_FIELD(jsonl_max_depth)},
    {"db_busy_timeout_ms", 0, 600000, 0, CONFIG_FIELD(db_busy_timeout_ms)},
    {"max_requests", 0, 1LL << 31, 0, CONFIG_FIELD(max_requests)},
    {"default_expiry_seconds", 0, CONFIG_EXPIRY_MAX_SECONDS, CONFIG_EXPIRY_MIN_SECONDS,
     CONFIG_FIELD(default_expiry_seconds)},
};

static const struct integer_key *find_integer_key(const char *key)
{
    for (size_t i = 0; i < sizeof integer_keys / sizeof *integer_keys; i++)
        if (!strcmp(key, integer_keys[i].key))
            return &integer_keys[i];
    return NULL;
}

static void store_integer(struct config *c, const struct integer_key *k, long long n)
{
    char *field = (char *)c + k->offset;

    if (k->size == sizeof(int64_t)) {
        int64_t wide = n;
        memcpy(field, &wide, sizeof wide);
    } else {
        uint32_t narrow = (uint32_t)n; /* unsigned or int: the range fits either */
        memcpy(field, &narrow, sizeof narrow);
    }
}

static long long load_integer(const struct config *c, const struct integer_key *k)
{
    const char *field = (const char *)c + k->offset;
    int64_t wide;
    uint32_t narrow;

    if (k->size == sizeof(int64_t)) {
        memcpy(&wide, field, sizeof wide);
        return wide;
    }
    memcpy(&narrow, field, sizeof narrow);
    return narrow;
}

static int parse_bool(const char *text, int *out)
{
    if (!strcasecmp(text, "on") || !strcasecmp(text, "true") || !strcmp(text, "1") ||
        !strcasecmp(text, "yes"))
        *out = 1;
    else if (!strcasecmp(text, "off") || !strcasecmp(text, "false") || !strcmp(text, "0") ||
             !strcasecmp(text, "no"))
        *out = 0;
    else
        return -1;
    return 0;
}

static char *trim(char *s);

static int set_batch_urls(struct config *c, const char *value, char *err, size_t err_size)
{
    char copy[CONFIG_MAX_LINE];
    char *item = copy;

    snprintf(copy, sizeof copy, "%s", value);
    c->batch_url_count = 0;
    for (;;) {
        char *comma = strchr(item, ',');
        char *url;
        if (comma)
            *comma = '\0';
        url = trim(item);
        /* (an empty item, as in a stray ',', is a typo, not nothing) */
        if (url[0] != '/' || url[strcspn(url, " \t\"")] != '\0') {
            snprintf(err, err_size,
                     "batch_urls: each url is a path like /v1/embeddings, not \"%s\"", url);
            return -1;
        }
        if (c->batch_url_count == CONFIG_MAX_BATCH_URLS || strlen(url) >= sizeof c->batch_urls[0]) {
            snprintf(err, err_size, "batch_urls: at most %d urls of at most %zu bytes",
                     CONFIG_MAX_BATCH_URLS, sizeof c->batch_urls[0] - 1);
            return -1;
        }
        snprintf(c->batch_urls[c->batch_url_count++], sizeof c->batch_urls[0], "%s", url);
        if (!comma)
            break;
        item = comma + 1;
    }
    return 0;
}

static int set_text(char *dest, size_t dest_size, const char *key, const char *value, char *err,
                    size_t err_size)
{
    if (strlen(value) >= dest_size) {
        snprintf(err, err_size, "%s: longer than %zu bytes", key, dest_size - 1);
        return -1;
    }
    memcpy(dest, value, strlen(value) + 1);
    return 0;
}

/* nginx's internal location for X-Accel-Redirect: it hides every URL under
 * it, so it must be "/name/" of URL-safe characters, away from the API. */
static const char *x_accel_prefix_problem(const char *v)
{
    size_t len = strlen(v);

    if (len < 3 || v[0] != '/' || v[len - 1] != '/' || strstr(v, "//"))
        return "must be a path of the form /name/ (like /_files_internal/)";
    if (strspn(v, IDS_BASE62 "/._~-") != len)
        return "may hold only letters, digits and / . _ ~ -";
    if (!strncmp(v, "/v1/", 4) || !strncmp(v, "/healthz/", 9) ||
        !strncmp(v, "/_files_api_errors/", 19))
        return "must not be under the API's paths (/v1/, /healthz) or its error pages";
    return NULL;
}

int config_set(struct config *c, const char *key, const char *value, char *err, size_t err_size)
{
    const struct integer_key *integer = find_integer_key(key);
    long long n;

    if (!strcmp(key, "data_dir") && !*value) {
        snprintf(err, err_size, "data_dir: empty (leave the key out for ./var)");
        return -1;
    }
    if (!strcmp(key, "data_dir"))
        return set_text(c->data_dir, sizeof c->data_dir, key, value, err, err_size);
    if (!strcmp(key, "key_prefix")) {
        /* keys travel in headers: letters, digits, '-' and '_' only */
        if (strspn(value, IDS_BASE62 "-_") != strlen(value)) {
            snprintf(err, err_size, "key_prefix: letters, digits, '-' and '_' only");
            return -1;
        }
        return set_text(c->key_prefix, sizeof c->key_prefix, key, value, err, err_size);
    }
    if (!strcmp(key, "x_accel_prefix")) {
        const char *why = x_accel_prefix_problem(value);
        if (why) {
            snprintf(err, err_size, "%s: %s", key, why);
            return -1;
        }
        return set_text(c->x_accel_prefix, sizeof c->x_accel_prefix, key, value, err, err_size);
    }
    if (!strcmp(key, "batch_urls"))
        return set_batch_urls(c, value, err, err_size);
    if (integer) {
        if (parse_integer(value, integer->min, integer->max, &n) == 0 &&
            (n == 0 || n >= integer->least_but_zero)) {
            store_integer(c, integer, n);
            return 0;
        }
    } else if (!strcmp(key, "batch_checks")) {
        if (parse_bool(value, &c->batch_checks) == 0)
            return 0;
    } else if (!strcmp(key, "download_mode")) {
        if (!strcmp(value, "stream"))
            c->download_mode = DOWNLOAD_STREAM;
        else if (!strcmp(value, "x-sendfile"))
            c->download_mode = DOWNLOAD_X_SENDFILE;
        else if (!strcmp(value, "x-accel-redirect"))
            c->download_mode = DOWNLOAD_X_ACCEL;
        else
            goto bad_value;
        return 0;
    } else {
        snprintf(err, err_size, "unknown key \"%s\"", key);
        return -1;
    }
bad_value:
    snprintf(err, err_size, "%s: invalid value \"%s\"", key, value);
    return -1;
}

const char *const config_keys[] = {
    "data_dir",     "max_file_bytes", "keep_free_bytes", "jsonl_max_depth",
    "batch_checks", "batch_urls",     "key_prefix",      "db_busy_timeout_ms",
    "max_requests", "download_mode",  "x_accel_prefix",  "default_expiry_seconds",
    NULL,
};

int config_get(const struct config *c, const char *key, char *out, size_t out_size)
{
    static const char *const modes[] = {"stream", "x-sendfile", "x-accel-redirect"};
    const struct integer_key *integer = find_integer_key(key);

    if (integer)
        snprintf(out, out_size, "%lld", load_integer(c, integer));
    else if (!strcmp(key, "data_dir"))
        snprintf(out, out_size, "%s", c->data_dir);
    else if (!strcmp(key, "batch_checks"))
        snprintf(out, out_size, "%s", c->batch_checks ? "on" : "off");
    else if (!strcmp(key, "batch_urls")) {
        size_t n = 0;
        out[0] = '\0';
        for (size_t i = 0; i < c->batch_url_count && n < out_size; i++)
            n += (size_t)snprintf(out + n, out_size - n, "%s%s", i ? "," : "", c->batch_urls[i]);
    } else if (!strcmp(key, "key_prefix"))
        snprintf(out, out_size, "%s", c->key_prefix);
    else if (!strcmp(key, "download_mode"))
        snprintf(out, out_size, "%s", modes[c->download_mode]);
    else if (!strcmp(key, "x_accel_prefix"))
        snprintf(out, out_size, "%s", c->x_accel_prefix);
    else
        return -1;
    return 0;
}

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

_Static_assert(sizeof config_keys / sizeof *config_keys - 1 <= 32,
               "config_load_file's seen mask has a bit per key");

int config_load_file(struct config *c, const char *path, char *err, size_t err_size)
{
    char line[CONFIG_MAX_LINE], reason[256];
    unsigned line_number = 0, seen = 0; /* seen: a bit per config_keys entry */
    FILE *f = fopen(path, "r");

    if (!f) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        long before = ftell(f), after;
        char *text, *eq;

        if (!fgets(line, sizeof line, f))
            break;
        line_number++;
        /* fgets reads past a NUL byte that strlen stops at (-1: not a file) */
        after = ftell(f);
        if (before >= 0 && after >= 0 && (size_t)(after - before) != strlen(line)) {
            snprintf(err, err_size, "%s:%u: a NUL byte", path, line_number);
            fclose(f);
            return -1;
        }
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, err_size, "%s:%u: line longer than %d bytes", path, line_number,
                     CONFIG_MAX_LINE - 2);
            fclose(f);
            return -1;
        }
        /* A byte order mark, as some editors write one, is no part of a key. */
        text = trim(line_number == 1 && !memcmp(line, "\xEF\xBB\xBF", 3) ? line + 3 : line);
        if (*text == '\0' || *text == '#')
            continue;
        eq = strchr(text, '=');
        if (!eq) {
            snprintf(err, err_size, "%s:%u: expected \"key = value\"", path, line_number);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        text = trim(text);
        for (size_t k = 0; config_keys[k]; k++) {
            if (strcmp(text, config_keys[k]) != 0)
                continue;
            if (seen & 1u << k) { /* which one was meant? */
                snprintf(err, err_size, "%s:%u: %s is set twice", path, line_number, text);
                fclose(f);
                return -1;
            }
            seen |= 1u << k;
        }
        if (config_set(c, text, trim(eq + 1), reason, sizeof reason) != 0) {
            snprintf(err, err_size, "%s:%u: %s", path, line_number, reason);
            fclose(f);
            return -1;
        }
    }
    if (ferror(f)) { /* a directory opens, then fails to read (EISDIR) */
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

#define ENV_PREFIX "FILES_API_"
#define ENV_PREFIX_LEN (sizeof ENV_PREFIX - 1)

/* The variable that sets key: the prefix and the key in capitals. */
static void environment_name(const char *key, char name[64])
{
    size_t n = (size_t)snprintf(name, 64, ENV_PREFIX);

    for (; *key && n + 1 < 64; key++)
        name[n++] = (char)toupper((unsigned char)*key);
    name[n] = '\0';
}

/* FILES_API_<KEY> (the key in upper case, e.g. FILES_API_DOWNLOAD_MODE) sets
 * that key over the file: the one way to configure workers that a web server
 * starts with an environment but no arguments (lighttpd's bin-environment,
 * FcgidInitialEnv). An empty value counts as unset. */
static int config_from_environment(struct config *c, char *err, size_t err_size)
{
    char name[64], reason[256];

    for (const char *const *key = config_keys; *key; key++) {
        const char *value;
        environment_name(*key, name);
        value = getenv(name);
        if (value && *value && config_set(c, *key, value, reason, sizeof reason) != 0) {
            snprintf(err, err_size, "$%s: %s", name, reason);
            return -1;
        }
    }
    return 0;
}

/* $FILES_API_* names that are not keys: read by serve.sh (CONFIG, BIN,
 * SPOOL_DIR), by the test build's hooks, and by the test runners. */
static const char *const other_environment[] = {
    "CONFIG", "BIN",      "SPOOL_DIR", "CRASH_AT",  "PAUSE_AT",      "SERVER",      "KEEP_TMP",
    "TMP",    "BASE_URL", "KEY",       "KEY_OTHER", "KEY_READ_ONLY", "KEY_REVOKED", NULL};

/* name: the part of a $FILES_API_* variable's name after the prefix. */
static int is_setting_name(const char *name, size_t len)
{
    char known[64];

    for (const char *const *other = other_environment; *other; other++)
        if (strlen(*other) == len && !strncmp(*other, name, len))
            return 1;
    for (const char *const *key = config_keys; *key; key++) {
        environment_name(*key, known);
        if (strlen(known) == ENV_PREFIX_LEN + len && !strncmp(known + ENV_PREFIX_LEN, name, len))
            return 1;
    }
    return 0;
}

size_t config_each_unknown_environment(void (*each)(const char *name, size_t len, void *ctx),
                                       void *ctx)
{
    size_t count = 0;

    for (char **e = environ; *e; e++) {
        const char *name = *e, *equals = strchr(name, '=');
        if (!equals || strncmp(name, ENV_PREFIX, ENV_PREFIX_LEN) != 0 ||
            is_setting_name(name + ENV_PREFIX_LEN, (size_t)(equals - name) - ENV_PREFIX_LEN))
            continue;
        each(name, (size_t)(equals - name), ctx);
        count++;
    }
    return count;
}

struct warning {
    FILE *out;
    const char *program;
};

static void warn_unknown(const char *name, size_t len, void *ctx)
{
    const struct warning *w = ctx;

    fprintf(w->out,
            "%s: warning: $%.*s is not a setting and is ignored (a setting is "
            "FILES_API_ and a config key in capitals)\n",
            w->program, (int)len, name);
}

size_t config_warn_unknown_environment(FILE *out, const char *program)
{
    struct warning w = {out, program};

    return config_each_unknown_environment(warn_unknown, &w);
}

int config_resolve(struct config *c, const char *config_path, const char *data_dir, char *err,
                   size_t err_size)
{
    const char *installed = FILES_API_SYSCONFDIR "/files-api/files-api.conf";

    config_defaults(c);
    if (!config_path) {
        config_path = getenv("FILES_API_CONFIG");
        if (config_path && !*config_path)
            config_path = NULL; /* empty counts as unset, as every $FILES_API_ variable */
    }
    /* There, or perhaps there (a directory the user cannot search), even if
     * it cannot be read: then the error says so (run on the defaults instead,
     * a service would ignore what the operator meant). */
    if (!config_path && (access(installed, F_OK) == 0 || (errno != ENOENT && errno != ENOTDIR)))
        config_path = installed;
    if (config_path && *config_path && config_load_file(c, config_path, err, err_size) != 0)
        return -1;
    if (config_from_environment(c, err, err_size) != 0)
        return -1;
    if (data_dir && *data_dir &&
        set_text(c->data_dir, sizeof c->data_dir, "data_dir", data_dir, err, err_size) != 0)
        return -1;
    return 0;
}
