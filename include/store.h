/* Content files on disk, under the data directory:
 *   tmp/             uploads being received (O_TMPFILE: nameless, gone if the worker dies)
 *   files/XY/<id>    stored content, sharded by the id's last two characters
 * A file becomes visible only through its database row, which is written
 * after the content is durable (fsync, link into place, fsync the directory). */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STORE_TMP_DIR "tmp"
#define STORE_FILES_DIR "files"

/* A flush is asked for every 4 MiB written: a 10 MB upload is then mostly
 * durable before its end too (8 concurrent 10 MB uploads: ~0.73x -> ~0.78x
 * the sink's rate, against 16 MiB; no change for 100 MB). */
#define STORE_SYNC_BYTES (4 << 20)

struct store_upload {
    int fd;           /* the temporary file, open for writing */
    int anonymous;    /* 1: O_TMPFILE (no name); 0: named temp file in tmp/ */
    uint64_t written; /* bytes written so far */
    uint64_t flushed; /* bytes whose flush (fdatasync) has been asked for */
    int flush_asked;  /* the flusher thread may be working on this upload */
    int flush_errno;  /* a flush failed: the commit fails with this */
    char tmp_path[4096];
};

/* Now, in seconds, as file timestamps count it. time() reads the coarse clock,
 * which can be a second behind an mtime or ctime the kernel has just given
 * (Linux >= 6.13, multigrain timestamps); this clock never is. */
time_t store_file_clock(void);

/* Creates the data directory layout (mode 0700) and removes named temp files
 * left by dead workers older than grace_seconds (none if it is negative).
 * Returns 0, or -1 (errno; EXDEV as store_check_layout). */
int store_init(const char *data_dir, int grace_seconds);

/* Returns 0, or -1 (errno): EXDEV if tmp/ and files/ are on different
 * mounts (an upload's file cannot be linked from one into the other). */
int store_check_layout(const char *data_dir);

/* Returns 1 if an upload can be stored: tmp/ and files/ are writable and on
 * one mount (not each shard: cheap enough for every health check); else 0. */
int store_writable(const char *data_dir);

/* Starts a temporary file for an upload. Returns 0, or -1 (errno). */
int store_begin(struct store_upload *upload, const char *data_dir);

/* Opens a nameless scratch file in tmp/ for reading and writing (gone when
 * closed, or when the process dies). Returns the fd, or -1 (errno). */
int store_scratch(const char *data_dir);
/* Writes all of data to fd (a scratch file). Returns 0, or -1 (errno). */
int store_append(int fd, const void *data, size_t len);
/* Reads exactly len bytes at offset of fd. Returns 0, or -1 (errno; EIO if
 * the file is shorter). */
int store_read_at(int fd, uint64_t offset, void *buf, size_t len);
/* Appends to the temporary file. Returns 0, or -1 (errno; ENOSPC/EDQUOT = disk full). */
int store_write(struct store_upload *upload, const void *data, size_t len);

/* All of the content is written (no store_write may follow): starts flushing
 * the rest in the background while the caller goes on with other work.
 * store_commit and store_abort wait for it, and a failed flush fails the
 * commit. Without a flusher thread it does nothing: the commit flushes all. */
void store_flush_start(struct store_upload *upload);

/* Makes the upload durable as the content of id: fsync, link (or rename) it
 * into files/XY/id, fsync the directory. Closes the temp file either way.
 * Returns 0, or -1 (errno) having removed everything. */
int store_commit(struct store_upload *upload, const char *data_dir, const char *id);

/* Drops an upload that failed. Safe to call after a failed commit. */
void store_abort(struct store_upload *upload);

/* Writes "files/XY/<id>" (relative to the data directory) into out. */
int store_relative_path(char *out, size_t size, const char *id);

/* Opens stored content for reading. Returns an fd, or -1 (errno; EINVAL if
 * what is there is not a regular file). */
int store_open(const char *data_dir, const char *id);

/* The bytes free to the service on the filesystems of the database and of
 * the content (the smaller). Returns 0 with *free_bytes, or -1 (errno). */
int store_free_bytes(const char *data_dir, uint64_t *free_bytes);

/* 1 if id's content is in place, 0 if not, -1 if that cannot be told (errno). */
int store_exists(const char *data_dir, const char *id);

/* Removes stored content and fsyncs its directory. Returns 0, or -1 (errno). */
int store_remove(const char *data_dir, const char *id);

#endif
