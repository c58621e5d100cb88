/* filesctl files import|list|show|rm: operator access to any account's files. */
#include "filesctl.h"

#include "api.h"
#include "db.h"
#include "ingest.h"
#include "multipart.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IMPORT_CHUNK (256 * 1024)

/* Purposes a file can be stored under; only "batch" can also be uploaded over HTTP. */
static int purpose_known(const char *purpose)
{
    return !strcmp(purpose, "batch") || !strcmp(purpose, "batch_output");
}

static void print_json(struct json_writer *w)
{
    size_t len;
    const char *text = json_writer_text(w, &len);

    if (text)
        printf("%s\n", text);
    json_writer_free(w);
}

/* Reads fd into the ingest. Returns 0 or -1 with *error set. */
static int import_stream(struct ingest *in, int fd, uint64_t total, struct api_error *error)
{
    static char chunk[IMPORT_CHUNK];
    uint64_t done = 0;

    for (;;) {
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            error_set(error, ERR_INTERNAL, NULL, "reading the input: %s", strerror(errno));
            return -1;
        }
        if (got == 0)
            break;
        if (ingest_write(in, chunk, (size_t)got, error) != 0)
            return -1;
        done += (uint64_t)got;
        filesctl_progress("importing", done, total);
    }
    return ingest_end(in, error);
}

_Static_assert(sizeof((struct file_meta *)0)->filename > MULTIPART_MAX_NAME,
               "a file_meta holds every filename the name check lets through");

int filesctl_files_import(const struct config *config, const struct filesctl_args *args)
{
    const char *account = filesctl_option(args, "--account");
    const char *purpose = filesctl_option(args, "--purpose");
    const char *filename = filesctl_option(args, "--filename");
    const char *path = args->positional[0];
    struct file_meta file = {0};
    struct api_error error = {0};
    struct ingest in = {0};
    struct stat st;
    uint64_t size;
    const char *why, *hint = "";
    int fd, rc = 1;

    if (!account || !purpose) {
        fprintf(stderr, "filesctl: files import needs --account NAME --purpose PURPOSE PATH|-\n");
        return 2;
    }
    if (!purpose_known(purpose)) {
        fprintf(stderr, "filesctl: purpose must be batch or batch_output\n");
        return 2;
    }
    if (!filename) {
        filename =
            strcmp(path, "-") ? strrchr(path, '/') ? strrchr(path, '/') + 1 : path : "stdin.jsonl";
        hint = " (the path's last component: give one with --filename)";
    }
    /* The rules an upload's filename meets (SPEC): API clients read it back. */
    why = multipart_name_problem(filename, strlen(filename));
    if (!why && strpbrk(filename, "/\\"))
        why = "it holds '/' or '\\' (a name, not a path)";
    if (why) {
        fprintf(stderr, "filesctl: bad filename: %s%s\n", why, hint);
        return 2;
    }
    if (db_account_find(account, &file.account_id) != DB_OK) {
        fprintf(stderr, "filesctl: no account %s (make one with keys create)\n", account);
        return 1;
    }
    fd = args->input;
    snprintf(file.purpose, sizeof file.purpose, "%s", purpose);
    snprintf(file.filename, sizeof file.filename, "%s", filename);
    file.created_at = (int64_t)time(NULL);
    if (!strcmp(purpose, "batch") && config->default_expiry_seconds)
        file.expires_at = file.created_at + config->default_expiry_seconds;
    size = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    if (ingest_begin(&in, config, !strcmp(purpose, "batch") && config->batch_checks, size,
                     &error) == 0 &&
        import_stream(&in, fd, size, &error) == 0 && ingest_commit(&in, &file, &error) == 0) {
        struct json_writer w;

        json_writer_init(&w);
        api_write_file(&w, &file);
        print_json(&w);
        rc = 0;
        /* A file whose object nobody could read is undone, as a retry would
         * store it again: the import failed. */
        if (fflush(stdout) != 0 || ferror(stdout)) {
            perror("filesctl: writing the file object");
            if (db_file_remove(file.id, (int64_t)time(NULL)) == DB_OK &&
                (store_remove(config->data_dir, file.id) == 0 || errno == ENOENT))
                fprintf(stderr, "filesctl: %s was deleted again\n", file.id);
            rc = 1;
        }
    } else {
        fprintf(stderr, "filesctl: import failed: %s %s\n", error_code(error.kind), error.message);
    }
    ingest_release(&in);
    error_clear(&error);
    if (fd != STDIN_FILENO)
        close(fd);
    return rc;
}

/* What files list prints: the purpose asked for (NULL: any), and the account
 * column's width, so that the columns line up. */
struct file_rows {
    const char *purpose;
    int account_width;
};

static int print_row(void *ctx, const struct file_meta *file, const char *account)
{
    const struct file_rows *rows = ctx;
    char created[32];
    time_t t = (time_t)file->created_at;

    if (rows->purpose && strcmp(file->purpose, rows->purpose))
        return 0;
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    printf("%-29s  %-*s  %-12s  %12lld  %s  %s\n", file->id, rows->account_width, account,
           file->purpose, (long long)file->bytes, created, file->filename);
    return 0;
}

int filesctl_files_list(const struct config *config, const struct filesctl_args *args)
{
    const char *account = filesctl_option(args, "--account");
    struct file_rows rows = {.purpose = filesctl_option(args, "--purpose"), .account_width = 16};
    int64_t account_id = -1, longest;

    (void)config;
    /* A misspelled purpose listed nothing, as if there were no such files. */
    if (rows.purpose && !purpose_known(rows.purpose)) {
        fprintf(stderr, "filesctl: purpose must be batch or batch_output\n");
        return 2;
    }
    if (account && db_account_find(account, &account_id) != DB_OK) {
        fprintf(stderr, "filesctl: no account %s\n", account);
        return 1;
    }
    if (db_account_name_longest(&longest) != DB_OK)
        return 1;
    if (longest > rows.account_width)
        rows.account_width = (int)longest;
    printf("%-29s  %-*s  %-12s  %12s  %-20s  %s\n", "ID", rows.account_width, "ACCOUNT", "PURPOSE",
           "BYTES", "CREATED", "FILENAME");
    return db_file_each(account_id, print_row, &rows) == DB_OK ? 0 : 1;
}

int filesctl_files_show(const struct config *config, const struct filesctl_args *args)
{
    struct file_meta file;
    struct json_writer w;

    (void)config;
    if (db_file_find(args->positional[0], &file) != DB_OK) {
        fprintf(stderr, "filesctl: no file %s\n", args->positional[0]);
        return 1;
    }
    json_writer_init(&w);
    json_writer_begin_object(&w);
    api_write_file_members(&w, &file);
    json_writer_key(&w, "account_id");
    json_writer_int(&w, file.account_id);
    json_writer_key(&w, "content_hash");
    json_writer_string(&w, file.content_hash);
    json_writer_end_object(&w);
    print_json(&w);
    return 0;
}

int filesctl_files_rm(const struct config *config, const struct filesctl_args *args)
{
    const char *file_id = args->positional[0];
    int status;

    status = db_file_remove(file_id, (int64_t)time(NULL));
    if (status == DB_NOT_FOUND) {
        fprintf(stderr, "filesctl: no file %s\n", file_id);
        return 1;
    }
    if (status != DB_OK)
        return filesctl_db_failure(file_id, status);
    if (store_remove(config->data_dir, file_id) != 0 && errno != ENOENT) {
        fprintf(stderr,
                "filesctl: deleted %s, but removing its content failed: %s (fsck --repair "
                "removes it later)\n",
                file_id, strerror(errno));
        return 1;
    }
    fprintf(stderr, "filesctl: deleted %s\n", file_id);
    return 0;
}
