#include "store.h"

#include "hooks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define NAMED_TMP_SUFFIX ".upload"

/* The flusher: a thread that fdatasyncs an upload's temporary file while the
 * upload goes on writing it, so that the disk's flushes overlap with
 * receiving (on a virtual disk only a flush makes data durable, and it takes
 * as long as the data since the last one). It serves one upload (a process
 * stores one at a time): one flush under way, and at most one more queued
 * for the end of the content. Without the thread, the flush is done in the
 * writer's thread. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct store_upload *upload; /* to flush; NULL when none is asked */
    int busy;                    /* a flush is under way */
    int again;                   /* flush upload once more when this one is done */
    int started;                 /* 1 running, -1 could not start */
} flusher = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

static void *flusher_thread(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&flusher.lock);
    for (;;) {
        struct store_upload *upload;
        while (!flusher.upload)
            pthread_cond_wait(&flusher.changed, &flusher.lock);
        upload = flusher.upload;
        flusher.busy = 1;
        flusher.again = 0;
        pthread_mutex_unlock(&flusher.lock);
        int rc = fdatasync(upload->fd), saved = errno;
        pthread_mutex_lock(&flusher.lock);
        if (rc != 0 && !upload->flush_errno)
            upload->flush_errno = saved;
        if (!flusher.again)
            flusher.upload = NULL;
        flusher.busy = 0;
        pthread_cond_broadcast(&flusher.changed);
    }
    return NULL;
}

enum flush_ask {
    FLUSH_IF_IDLE, /* while writing: if the flusher is busy, the next write asks again */
    FLUSH_QUEUED,  /* at the end: if it is busy with this upload, flush once more after */
};

/* Asks for upload's bytes so far to be flushed. Returns 1 if the flusher took
 * (or queued) it, 0 if it is busy and how is FLUSH_IF_IDLE, -1 if there is no
 * flusher thread. */
static int flusher_ask(struct store_upload *upload, enum flush_ask how)
{
    int taken = 0;

    pthread_mutex_lock(&flusher.lock);
    if (flusher.started == 0) {
        sigset_t all, old;
        pthread_t thread;
        pthread_attr_t attr;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* signals are the main thread's */
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        flusher.started = pthread_create(&thread, &attr, flusher_thread, NULL) == 0 ? 1 : -1;
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (flusher.started < 0) {
        taken = -1;
    } else if (!flusher.upload && !flusher.busy) {
        flusher.upload = upload;
        upload->flush_asked = 1;
        pthread_cond_broadcast(&flusher.changed);
        taken = 1;
    } else if (how == FLUSH_QUEUED && flusher.upload == upload) {
        flusher.again = 1;
        upload->flush_asked = 1;
        taken = 1;
    }
    pthread_mutex_unlock(&flusher.lock);
    return taken;
}

/* Waits until the flusher is done with upload (before its fd is closed). */
static void flusher_wait(struct store_upload *upload)
{
    pthread_mutex_lock(&flusher.lock);
    if (upload->flush_asked) /* then the flusher's work, if any, is this upload's */
        while (flusher.upload || flusher.busy)
            pthread_cond_wait(&flusher.changed, &flusher.lock);
    upload->flush_asked = 0;
    pthread_mutex_unlock(&flusher.lock);
}

int store_relative_path(char *out, size_t size, const char *id)
{
    size_t len = strlen(id);

    if (len < 2 || snprintf(out, size, STORE_FILES_DIR "/%s/%s", id + len - 2, id) >= (int)size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int join(char *out, size_t size, const char *dir, const char *name)
{
    if (snprintf(out, size, "%s/%s", dir, name) >= (int)size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Writes DATA/files/XY/<id> into out. Returns 0, or -1 (errno). */
static int content_path(char *out, size_t size, const char *data_dir, const char *id)
{
    char relative[256];

    if (store_relative_path(relative, sizeof relative, id) != 0)
        return -1;
    return join(out, size, data_dir, relative);
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

time_t store_file_clock(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return now.tv_sec;
}

/* Removes named temp files whose writer must be gone (untouched for grace_seconds). */
static void sweep_named_temps(const char *tmp_dir, int grace_seconds)
{
    DIR *dir = opendir(tmp_dir);
    struct dirent *entry;
    time_t now = store_file_clock();

    if (!dir)
        return;
    while ((entry = readdir(dir)) != NULL) {
        char path[4096];
        struct stat st;
        size_t len = strlen(entry->d_name), suffix = sizeof NAMED_TMP_SUFFIX - 1;

        if (len <= suffix || strcmp(entry->d_name + len - suffix, NAMED_TMP_SUFFIX) != 0)
            continue;
        if (join(path, sizeof path, tmp_dir, entry->d_name) != 0 || lstat(path, &st) != 0)
            continue;
        if (S_ISREG(st.st_mode) && now - st.st_mtime >= grace_seconds)
            unlink(path);
    }
    closedir(dir);
}

int store_check_layout(const char *data_dir)
{
    char tmp_dir[4096], files_dir[4096];
    struct statx tmp, content;

    if (join(tmp_dir, sizeof tmp_dir, data_dir, STORE_TMP_DIR) != 0 ||
        join(files_dir, sizeof files_dir, data_dir, STORE_FILES_DIR) != 0 ||
        statx(AT_FDCWD, tmp_dir, 0, STATX_MNT_ID, &tmp) != 0 ||
        statx(AT_FDCWD, files_dir, 0, STATX_MNT_ID, &content) != 0)
        return -1;
    /* A link never crosses a mount, even two of one filesystem (bind mounts):
     * the mount ids where the kernel gives them, else the devices. */
    if (tmp.stx_dev_major != content.stx_dev_major || tmp.stx_dev_minor != content.stx_dev_minor ||
        (tmp.stx_mask & content.stx_mask & STATX_MNT_ID && tmp.stx_mnt_id != content.stx_mnt_id)) {
        errno = EXDEV;
        return -1;
    }
    return 0;
}

int store_writable(const char *data_dir)
{
    char path[4096];

    return join(path, sizeof path, data_dir, STORE_TMP_DIR) == 0 && access(path, W_OK) == 0 &&
           join(path, sizeof path, data_dir, STORE_FILES_DIR) == 0 && access(path, W_OK) == 0 &&
           store_check_layout(data_dir) == 0;
}

int store_init(const char *data_dir, int grace_seconds)
{
    char path[4096];

    if (make_dir(data_dir) != 0)
        return -1;
    if (join(path, sizeof path, data_dir, STORE_FILES_DIR) != 0 || make_dir(path) != 0)
        return -1;
    if (join(path, sizeof path, data_dir, STORE_TMP_DIR) != 0 || make_dir(path) != 0)
        return -1;
    if (store_check_layout(data_dir) != 0)
        return -1;
    if (grace_seconds >= 0)
        sweep_named_temps(path, grace_seconds);
    return 0;
}

/* Opens a new temporary file in tmp/ with the given access mode. */
static int open_temp(struct store_upload *upload, const char *data_dir, int access)
{
    char tmp_dir[4096];

    memset(upload, 0, sizeof *upload);
    if (join(tmp_dir, sizeof tmp_dir, data_dir, STORE_TMP_DIR) != 0)
        return -1;
    upload->fd = open(tmp_dir, O_TMPFILE | access | O_CLOEXEC, 0600);
    if (upload->fd >= 0) {
        upload->anonymous = 1;
        return 0;
    }
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return -1;
    /* Filesystems without O_TMPFILE: a named file that store_init sweeps if we die. */
    for (int attempt = 0; attempt < 100; attempt++) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (snprintf(upload->tmp_path, sizeof upload->tmp_path, "%s/%d-%ld-%d" NAMED_TMP_SUFFIX,
                     tmp_dir, (int)getpid(), (long)now.tv_nsec,
                     attempt) >= (int)sizeof upload->tmp_path) {
            errno = ENAMETOOLONG;
            return -1;
        }
        upload->fd = open(upload->tmp_path, O_CREAT | O_EXCL | access | O_CLOEXEC, 0600);
        if (upload->fd >= 0 || errno != EEXIST)
            break;
    }
    if (upload->fd < 0)
        upload->tmp_path[0] = '\0';
    return upload->fd >= 0 ? 0 : -1;
}

int store_begin(struct store_upload *upload, const char *data_dir)
{
    return open_temp(upload, data_dir, O_WRONLY);
}

int store_scratch(const char *data_dir)
{
    struct store_upload scratch;

    if (open_temp(&scratch, data_dir, O_RDWR) != 0)
        return -1;
    if (!scratch.anonymous && unlink(scratch.tmp_path) != 0) {
        int saved = errno;
        close(scratch.fd);
        errno = saved;
        return -1;
    }
    return scratch.fd;
}

int store_append(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int store_read_at(int fd, uint64_t offset, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* shorter than what was written */
            return -1;
        }
        p += n;
        offset += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int store_write(struct store_upload *upload, const void *data, size_t len)
{
    if (store_append(upload->fd, data, len) != 0)
        return -1;
    upload->written += len;
    /* Make the bytes durable while the upload is still arriving, so the fsync
     * at the end waits for the last few MiB only, not the whole file (starting
     * writeback alone is not enough: a virtual disk flushes only on fsync). */
    if (upload->written - upload->flushed >= STORE_SYNC_BYTES) {
        int taken = flusher_ask(upload, FLUSH_IF_IDLE);
        if (taken < 0 && fdatasync(upload->fd) != 0)
            return -1;
        if (taken != 0)
            upload->flushed = upload->written;
    }
    return 0;
}

void store_flush_start(struct store_upload *upload)
{
    if (upload->written > upload->flushed && flusher_ask(upload, FLUSH_QUEUED) == 1)
        upload->flushed = upload->written;
}

/* Creates files/XY if it is missing, durably. files/ is fsync'd also when XY
 * was there: another worker may have made it and not yet fsync'd its entry.
 * (~20 us alone; while other uploads write, it may wait for a journal commit,
 * as the upload's other two fsyncs do.) */
static int ensure_shard(const char *data_dir, const char *shard_dir)
{
    char files_dir[4096];

    if (mkdir(shard_dir, 0700) != 0 && errno != EEXIST)
        return -1;
    if (join(files_dir, sizeof files_dir, data_dir, STORE_FILES_DIR) != 0)
        return -1;
    return fsync_path(files_dir);
}

int store_commit(struct store_upload *upload, const char *data_dir, const char *id)
{
    char final_path[4096], shard_dir[4096];
    int saved;

    if (content_path(final_path, sizeof final_path, data_dir, id) != 0)
        goto fail;
    snprintf(shard_dir, sizeof shard_dir, "%s", final_path);
    *strrchr(shard_dir, '/') = '\0';
    hooks_crash_point("upload_after_write");
    flusher_wait(upload);
    if (upload->flush_errno) {
        errno = upload->flush_errno;
        goto fail;
    }
    if (fsync(upload->fd) != 0 || ensure_shard(data_dir, shard_dir) != 0)
        goto fail;
    hooks_crash_point("upload_after_fsync");
    if (upload->anonymous) {
        char proc_path[64];
        snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", upload->fd);
        if (linkat(AT_FDCWD, proc_path, AT_FDCWD, final_path, AT_SYMLINK_FOLLOW) != 0)
            goto fail;
    } else {
        if (rename(upload->tmp_path, final_path) != 0)
            goto fail;
        upload->tmp_path[0] = '\0';
    }
    close(upload->fd);
    upload->fd = -1;
    hooks_crash_point("upload_after_link");
    if (fsync_path(shard_dir) != 0) {
        saved = errno;
        unlink(final_path);
        errno = saved;
        return -1;
    }
    hooks_crash_point("upload_after_dir_fsync");
    return 0;
fail:
    saved = errno;
    store_abort(upload);
    errno = saved;
    return -1;
}

void store_abort(struct store_upload *upload)
{
    if (upload->fd >= 0) {
        flusher_wait(upload);
        close(upload->fd);
    }
    upload->fd = -1;
    if (!upload->anonymous && upload->tmp_path[0])
        unlink(upload->tmp_path);
    upload->tmp_path[0] = '\0';
}

int store_open(const char *data_dir, const char *id)
{
    char path[4096];
    struct stat st;
    int fd;

    if (content_path(path, sizeof path, data_dir, id) != 0)
        return -1;
    /* Non-blocking: a FIFO put where content belongs must not hang the reader. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, 0) != 0) {
        close(fd);
        errno = EINVAL; /* not a regular file */
        return -1;
    }
    return fd;
}

int store_free_bytes(const char *data_dir, uint64_t *free_bytes)
{
    char files_dir[4096];
    struct statvfs database, content;

    if (join(files_dir, sizeof files_dir, data_dir, STORE_FILES_DIR) != 0 ||
        statvfs(data_dir, &database) != 0 || statvfs(files_dir, &content) != 0)
        return -1;
    *free_bytes = (uint64_t)database.f_bavail * database.f_frsize;
    if ((uint64_t)content.f_bavail * content.f_frsize < *free_bytes)
        *free_bytes = (uint64_t)content.f_bavail * content.f_frsize;
    return 0;
}

int store_exists(const char *data_dir, const char *id)
{
    char path[4096];
    struct stat st;

    if (content_path(path, sizeof path, data_dir, id) != 0)
        return -1;
    if (stat(path, &st) == 0)
        return 1;
    return errno == ENOENT ? 0 : -1;
}

int store_remove(const char *data_dir, const char *id)
{
    char path[4096];

    if (content_path(path, sizeof path, data_dir, id) != 0)
        return -1;
    if (unlink(path) != 0)
        return -1;
    hooks_crash_point("delete_after_unlink");
    *strrchr(path, '/') = '\0';
    return fsync_path(path);
}
