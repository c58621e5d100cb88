/* filesctl fsck: content on disk against metadata. */
#include "filesctl.h"

#include "db.h"
#include "digest.h"
#include "hooks.h"
#include "ids.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Longer than an upload's link-to-commit window, which includes waiting for
 * the write lock: 60 s more than the busy timeout. */
#define DEFAULT_GRACE_SECONDS 60

struct fsck {
    const struct config *config;
    int repair;
    long grace;
    time_t now;
    unsigned long problems; /* found and not repaired */
    unsigned long repaired;
    unsigned long pending; /* younger than the grace period: maybe an upload in progress */
    uint64_t checked;
};

static void report(struct fsck *f, int repaired, const char *format, const char *subject,
                   const char *why)
{
    printf("%s: ", repaired ? "repaired" : "problem");
    printf(format, subject, why);
    printf("\n");
    if (repaired)
        f->repaired++;
    else
        f->problems++;
}

/* A stray (file on disk that no row owns) may belong to work in progress: its
 * age counts from its last change, a write or the link into place (ctime),
 * whichever came last, so an upload slow to finish is pending. */
static int pending(struct fsck *f, const char *path, const struct stat *st, const char *kind)
{
    time_t changed = st->st_mtime > st->st_ctime ? st->st_mtime : st->st_ctime;

    if (f->now - changed >= f->grace)
        return 0;
    printf("pending: %s %s (younger than %ld s)\n", kind, path, f->grace);
    f->pending++;
    return 1;
}

static void stray(struct fsck *f, const char *path, const struct stat *st, const char *kind)
{
    if (pending(f, path, st, kind))
        return;
    if (f->repair && unlink(path) == 0)
        report(f, 1, "removed %s (%s)", path, kind);
    else
        report(f, 0, "%s: %s", path, kind);
}

/* A content file whose id has no live row. It is removed holding the write
 * lock, having looked again: an upload that linked it meanwhile cannot commit
 * its row between the look and the removal (and checks, once committed, that
 * its content is still there). */
static void stray_content(struct fsck *f, const char *path, const struct stat *st, const char *id)
{
    const char *kind = "content file without a live row";
    int live = 0;

    if (pending(f, path, st, kind))
        return;
    if (!f->repair) {
        report(f, 0, "%s: %s", path, kind);
        return;
    }
    if (db_write_lock() != DB_OK) {
        report(f, 0, "%s: %s", path, "database busy: not removed");
        return;
    }
    live = db_file_is_live(id);
    hooks_pause_point("fsck_before_unlink");
    if (live == 0 && unlink(path) == 0)
        report(f, 1, "removed %s (%s)", path, kind);
    else if (live == 0 && errno != ENOENT) /* (gone: an upload that failed took it back) */
        report(f, 0, "%s: %s", path, kind);
    else if (live < 0)
        report(f, 0, "%s: %s", path, "database error");
    db_write_unlock();
}

static void check_tmp(struct fsck *f)
{
    char dir_path[2048], path[4096];
    struct dirent *e;
    struct stat st;
    DIR *dir;

    snprintf(dir_path, sizeof dir_path, "%s/" STORE_TMP_DIR, f->config->data_dir);
    if (!(dir = opendir(dir_path))) { /* not clean: what it holds was not looked at */
        report(f, 0, "%s: directory cannot be read (%s; not checked)", dir_path, strerror(errno));
        return;
    }
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir_path, e->d_name);
        if (lstat(path, &st) == 0)
            stray(f, path, &st, "stray temporary file");
    }
    closedir(dir);
}

/* A directory nothing of ours creates: removed only if empty, since fsck
 * never deletes a tree it does not understand. */
static void stray_dir(struct fsck *f, const char *path, const char *kind)
{
    if (f->repair && rmdir(path) == 0)
        report(f, 1, "removed %s (%s)", path, kind);
    else
        report(f, 0, "%s: %s (not removed unless empty)", path, kind);
}

static int is_shard_name(const char *name)
{
    return strlen(name) == 2 && strspn(name, IDS_BASE62) == 2;
}

static void check_shard(struct fsck *f, const char *shard_path, const char *shard)
{
    char path[4096];
    struct dirent *e;
    struct stat st;
    DIR *dir;

    if (!(dir = opendir(shard_path))) {
        report(f, 0, "%s: %s", shard_path, "shard directory cannot be read");
        return;
    }
    while ((e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);
        int live;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", shard_path, e->d_name);
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            stray_dir(f, path, "directory inside a shard");
            continue;
        }
        if (!ids_is_file_id(e->d_name) || strcmp(e->d_name + len - 2, shard)) {
            stray(f, path, &st, "content file without a live row");
            continue;
        }
        live = db_file_is_live(e->d_name);
        if (live < 0)
            report(f, 0, "%s: %s", path, "database error");
        else if (!live)
            stray_content(f, path, &st, e->d_name);
    }
    closedir(dir);
}

/* Every content file must belong to a live row, in its own shard (the
 * directory named by its id's last two characters); anything else is a stray. */
static void check_content_files(struct fsck *f)
{
    char files_dir[2048], shard_path[3072];
    struct dirent *e;
    struct stat st;
    DIR *top;

    snprintf(files_dir, sizeof files_dir, "%s/" STORE_FILES_DIR, f->config->data_dir);
    if (!(top = opendir(files_dir))) {
        report(f, 0, "%s: directory cannot be read (%s; not checked)", files_dir, strerror(errno));
        return;
    }
    while ((e = readdir(top)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(shard_path, sizeof shard_path, "%s/%s", files_dir, e->d_name);
        if (lstat(shard_path, &st) != 0)
            continue;
        if (!S_ISDIR(st.st_mode))
            stray(f, shard_path, &st, "file outside any shard");
        else if (!is_shard_name(e->d_name))
            stray_dir(f, shard_path, "directory that is not a shard");
        else
            check_shard(f, shard_path, e->d_name);
    }
    closedir(top);
}

/* Returns NULL if the content matches the row, else what is wrong; *damaged
 * says whether the content is known bad (missing, wrong size or hash) rather
 * than only unchecked (it could not be opened or read), which no repair touches. */
static const char *content_problem(const struct fsck *f, const struct file_meta *file, int *damaged)
{
    static char buffer[256 * 1024];
    char hex[DIGEST_HEX_LEN + 1];
    struct digest digest;
    struct stat st;
    ssize_t got;
    int fd = store_open(f->config->data_dir, file->id);

    *damaged = 1;
    if (fd < 0 && errno == ENOENT)
        return "content file missing";
    *damaged = 0;
    if (fd < 0)
        return "content file cannot be opened (not checked)";
    if (fstat(fd, &st) != 0) {
        close(fd);
        return "content file cannot be checked";
    }
    if (st.st_size != file->bytes) {
        close(fd);
        *damaged = 1;
        return "size differs from the row";
    }
    if (digest_begin(&digest) != 0) {
        close(fd);
        return "content file cannot be checked";
    }
    while ((got = read(fd, buffer, sizeof buffer)) > 0)
        digest_update(&digest, buffer, (size_t)got);
    digest_hex(&digest, hex);
    digest_end(&digest);
    close(fd);
    if (got < 0)
        return "content file unreadable (not checked)";
    *damaged = 1;
    return strcmp(hex, file->content_hash) ? "content hash differs from the row" : NULL;
}

/* Collects broken rows first: changing rows while iterating them is not allowed. */
struct broken {
    struct broken_row {
        char id[IDS_FILE_LEN + 1];
        const char *why;
        int damaged; /* known bad, not only unchecked: --repair tombstones it */
    } * rows;
    size_t count, capacity;
    struct fsck *f;
};

static int check_row(void *ctx, const struct file_meta *file, const char *account)
{
    struct broken *b = ctx;
    int damaged;
    const char *why;

    hooks_pause_point("fsck_row_read");
    why = content_problem(b->f, file, &damaged);

    (void)account;
    b->f->checked++;
    filesctl_progress("checking", b->f->checked, 0);
    if (!why)
        return 0;
    if (b->count == b->capacity) {
        size_t capacity = b->capacity ? 2 * b->capacity : 64;
        void *rows = realloc(b->rows, capacity * sizeof *b->rows);
        if (!rows)
            return 1;
        b->rows = rows;
        b->capacity = capacity;
    }
    memcpy(b->rows[b->count].id, file->id, sizeof b->rows[0].id);
    b->rows[b->count].why = why;
    b->rows[b->count++].damaged = damaged;
    return 0;
}

static void check_rows(struct fsck *f)
{
    struct broken b = {.f = f};

    if (db_file_each(-1, check_row, &b) != DB_OK)
        report(f, 0, "%s: %s", "files table", "cannot be read");
    if (f->checked && isatty(STDERR_FILENO))
        fputc('\n', stderr);
    for (size_t i = 0; i < b.count; i++) {
        const struct broken_row *row = &b.rows[i];
        /* A row deleted (DELETE, gc) since the scan read it is no problem. */
        if (db_file_is_live(row->id) == 0)
            continue;
        /* A broken row becomes a tombstone: the API answers 404 for it, list
         * cursors naming it still work, and its damaged content is removed. */
        int tried = f->repair && row->damaged;
        int status = tried ? db_file_remove(row->id, (int64_t)f->now) : DB_ERROR;
        if (tried && status == DB_OK) {
            if (store_remove(f->config->data_dir, row->id) != 0 && errno != ENOENT)
                report(f, 0, "%s: %s", row->id, "damaged content could not be removed");
            report(f, 1, "tombstoned row %s (%s)", row->id, row->why);
        } else if (tried && status == DB_NOT_FOUND) { /* deleted since the look above */
            continue;
        } else if (tried) { /* --repair was asked for: say why it was not done */
            char why[512];
            snprintf(why, sizeof why, "%s; not repaired: %s", row->why,
                     status == DB_BUSY   ? "the database is busy (another process holds its "
                                           "write lock); try again"
                     : status == DB_FULL ? "no space left on the disk"
                                         : "database error");
            report(f, 0, "row %s: %s", row->id, why);
        } else {
            report(f, 0, "row %s: %s", row->id, row->why);
        }
    }
    free(b.rows);
}

int filesctl_fsck(const struct config *config, const struct filesctl_args *args)
{
    struct fsck f = {.config = config,
                     .repair = filesctl_flag(args, "--repair"),
                     .grace = DEFAULT_GRACE_SECONDS + config->db_busy_timeout_ms / 1000,
                     .now = store_file_clock()};
    char integrity[512] = "";

    if (filesctl_seconds_option(args, "--grace", &f.grace) != 0)
        return 2;
    check_tmp(&f);
    check_rows(&f);
    check_content_files(&f); /* after check_rows: repaired rows' leftovers are strays now */
    if (db_integrity_check(integrity, sizeof integrity) != DB_OK || strcmp(integrity, "ok"))
        report(&f, 0, "sqlite integrity_check: %s%s", integrity, "");
    else if (db_damage_clear())
        printf("fsck: the database is whole again: /healthz no longer reports it damaged\n");
    printf("fsck: rows checked: %llu, problems: %lu, repaired: %lu, pending: %lu\n",
           (unsigned long long)f.checked, f.problems, f.repaired, f.pending);
    return f.problems ? 1 : 0;
}
