/* Unit tests: content files on disk (src/store.c). Its fdatasync calls go
 * through test_fdatasync, which counts them and can hold the flusher thread
 * in one; its fsync calls through test_fsync, which notes what was synced;
 * its open calls through test_open, which can play a filesystem without
 * O_TMPFILE. */
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>
static int test_fdatasync(int fd);
static int test_fsync(int fd);
static int test_open(const char *path, int flags, ...);
#define fdatasync test_fdatasync
#define fsync test_fsync
#define open test_open
#include "../../src/store.c"
#undef fdatasync
#undef fsync
#undef open

#include "testlib.h"

#include <stdlib.h>

static char data_dir[] = "/tmp/files-api-test-store.XXXXXX";

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int calls;   /* fdatasync calls so far */
    int hold;    /* the next call waits until this is cleared */
    int holding; /* a call is waiting */
} syncs = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

static int test_fdatasync(int fd)
{
    pthread_mutex_lock(&syncs.lock);
    syncs.calls++;
    if (syncs.hold) {
        syncs.holding = 1;
        pthread_cond_broadcast(&syncs.changed);
        while (syncs.hold)
            pthread_cond_wait(&syncs.changed, &syncs.lock);
        syncs.holding = 0;
    }
    pthread_mutex_unlock(&syncs.lock);
    return fdatasync(fd);
}

static struct {
    ino_t inode[64];
    int count;
    ino_t fail; /* an fsync of this inode fails with EIO (0: none) */
} fsynced;

static int test_fsync(int fd)
{
    struct stat st;

    if (fstat(fd, &st) == 0) {
        if (fsynced.fail && st.st_ino == fsynced.fail) {
            errno = EIO;
            return -1;
        }
        if (fsynced.count < 64)
            fsynced.inode[fsynced.count++] = st.st_ino;
    }
    return fsync(fd);
}

static int was_fsynced(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return 0;
    for (int i = 0; i < fsynced.count; i++)
        if (fsynced.inode[i] == st.st_ino)
            return 1;
    return 0;
}

static int count_entries(const char *dir_path)
{
    DIR *dir = opendir(dir_path);
    struct dirent *e;
    int n = 0;

    if (!dir)
        return -1;
    while ((e = readdir(dir)) != NULL)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(dir);
    return n;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : 0;
}

static void test_commit_and_read(void)
{
    struct store_upload up;
    char path[4096], relative[256], buf[32];
    const char *id = "file_AAAAAAAAAAAAAAAAAAAAAAxy";
    int fd;

    CHECK(store_begin(&up, data_dir) == 0);
    CHECK(up.anonymous == 1); /* /tmp supports O_TMPFILE */
    snprintf(path, sizeof path, "%s/tmp", data_dir);
    CHECK(count_entries(path) == 0); /* nameless while being written */
    CHECK(store_write(&up, "hello ", 6) == 0);
    CHECK(store_write(&up, "world\n", 6) == 0);
    CHECK(store_commit(&up, data_dir, id) == 0);
    CHECK(store_relative_path(relative, sizeof relative, id) == 0);
    CHECK_STR(relative, "files/xy/file_AAAAAAAAAAAAAAAAAAAAAAxy");
    snprintf(path, sizeof path, "%s/%s", data_dir, relative);
    CHECK(mode_of(path) == 0600);
    *strrchr(path, '/') = '\0';
    CHECK(mode_of(path) == 0700);
    fd = store_open(data_dir, id);
    CHECK(fd >= 0);
    CHECK(read(fd, buf, sizeof buf) == 12 && memcmp(buf, "hello world\n", 12) == 0);
    close(fd);
    /* An id is stored once: a second commit of the same id fails and leaves the first. */
    CHECK(store_begin(&up, data_dir) == 0);
    CHECK(store_write(&up, "x", 1) == 0);
    CHECK(store_commit(&up, data_dir, id) == -1 && errno == EEXIST);
    fd = store_open(data_dir, id);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 12);
    close(fd);
    CHECK(store_remove(data_dir, id) == 0);
    CHECK(store_open(data_dir, id) == -1 && errno == ENOENT);
    CHECK(store_remove(data_dir, id) == -1 && errno == ENOENT);
    /* Not a regular file where the content belongs: refused at once (a FIFO
     * without a writer would block an open for reading forever). */
    snprintf(path, sizeof path, "%s/%s", data_dir, relative);
    CHECK(mkfifo(path, 0600) == 0);
    alarm(10); /* a hang fails the test */
    CHECK(store_open(data_dir, id) == -1 && errno == EINVAL);
    alarm(0);
    CHECK(unlink(path) == 0 && mkdir(path, 0700) == 0);
    CHECK(store_open(data_dir, id) == -1 && errno == EINVAL);
    CHECK(rmdir(path) == 0);
}

/* A shard another worker has just made may not be durable yet: the commit
 * fsyncs files/ whether it made the shard or found it. */
static void test_found_shard_made_durable(void)
{
    struct store_upload up;
    char files_dir[1024], shard[1100];
    const char *id = "file_AAAAAAAAAAAAAAAAAAAAAAzq";

    snprintf(files_dir, sizeof files_dir, "%s/files", data_dir);
    snprintf(shard, sizeof shard, "%s/zq", files_dir);
    CHECK(mkdir(shard, 0700) == 0); /* as another worker would, just before */
    CHECK(store_begin(&up, data_dir) == 0);
    CHECK(store_write(&up, "x\n", 2) == 0);
    fsynced.count = 0;
    CHECK(store_commit(&up, data_dir, id) == 0);
    CHECK(was_fsynced(files_dir));
    CHECK(was_fsynced(shard));
    {
        /* and the content itself (one inode, from tmp/ to its shard) */
        char content[1200];
        snprintf(content, sizeof content, "%s/%s", shard, id);
        CHECK(was_fsynced(content));
    }
    CHECK(store_exists(data_dir, id) == 1);
    CHECK(store_remove(data_dir, id) == 0);
    CHECK(store_exists(data_dir, id) == 0);
    CHECK(rmdir(shard) == 0);
}

/* The shard's fsync after the link fails: the commit fails, and the content
 * it linked is gone again (no file the caller was told was not stored). */
static void test_failed_shard_fsync_unlinks_the_content(void)
{
    struct store_upload up;
    struct stat st;
    char shard[1100];
    const char *id = "file_AAAAAAAAAAAAAAAAAAAAAAzr";

    snprintf(shard, sizeof shard, "%s/files/zr", data_dir);
    CHECK(mkdir(shard, 0700) == 0 && stat(shard, &st) == 0);
    CHECK(store_begin(&up, data_dir) == 0);
    CHECK(store_write(&up, "x\n", 2) == 0);
    fsynced.fail = st.st_ino;
    errno = 0;
    CHECK(store_commit(&up, data_dir, id) == -1 && errno == EIO);
    fsynced.fail = 0;
    CHECK(store_exists(data_dir, id) == 0);
    CHECK(rmdir(shard) == 0);
}

static int no_tmpfile; /* open refuses O_TMPFILE, as some filesystems do */

static int test_open(const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode = 0;
    int tmpfile = (flags & O_TMPFILE) == O_TMPFILE;

    if (no_tmpfile && tmpfile) {
        errno = EOPNOTSUPP;
        return -1;
    }
    if (tmpfile || (flags & O_CREAT)) { /* only then is there a mode */
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    return open(path, flags, mode);
}

static void test_abort_leaves_nothing(void)
{
    char path[4096];

    for (no_tmpfile = 0; no_tmpfile <= 1; no_tmpfile++) {
        struct store_upload up;

        CHECK(store_begin(&up, data_dir) == 0);
        CHECK(up.anonymous == !no_tmpfile); /* else a named file in tmp/ */
        CHECK(store_write(&up, "partial", 7) == 0);
        store_abort(&up);
        snprintf(path, sizeof path, "%s/tmp", data_dir);
        CHECKF(count_entries(path) == 0, "no_tmpfile %d", no_tmpfile);
    }
    no_tmpfile = 0;
    snprintf(path, sizeof path, "%s/files", data_dir);
    CHECK(count_entries(path) == 1); /* only the shard made by the first test */
}

/* Without O_TMPFILE the named temporary file becomes the content: tmp/ is
 * left empty and the content is whole in its shard. */
static void test_named_temp_commit(void)
{
    struct store_upload up;
    char path[4096], buf[8];
    const char *id = "file_AAAAAAAAAAAAAAAAAAAAAAnt";
    int fd;

    no_tmpfile = 1;
    CHECK(store_begin(&up, data_dir) == 0 && !up.anonymous);
    CHECK(store_write(&up, "named\n", 6) == 0);
    CHECK(store_commit(&up, data_dir, id) == 0);
    no_tmpfile = 0;
    snprintf(path, sizeof path, "%s/tmp", data_dir);
    CHECK(count_entries(path) == 0);
    fd = store_open(data_dir, id);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 6 && memcmp(buf, "named\n", 6) == 0);
    if (fd >= 0)
        close(fd);
    CHECK(store_remove(data_dir, id) == 0);
    snprintf(path, sizeof path, "%s/files/nt", data_dir);
    CHECK(rmdir(path) == 0);
}

static void test_layout_and_sweep(void)
{
    char path[4096];
    FILE *f;
    struct timespec two_hours_ago[2] = {{.tv_sec = time(NULL) - 7200},
                                        {.tv_sec = time(NULL) - 7200}};

    CHECK(mode_of(data_dir) == 0700);
    snprintf(path, sizeof path, "%s/files", data_dir);
    CHECK(mode_of(path) == 0700);
    snprintf(path, sizeof path, "%s/tmp", data_dir);
    CHECK(mode_of(path) == 0700);
    /* A named temp file left by a dead worker is swept once older than the grace period. */
    snprintf(path, sizeof path, "%s/tmp/123-1-0" NAMED_TMP_SUFFIX, data_dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    CHECK(store_init(data_dir, 3600) == 0);
    CHECK(access(path, F_OK) == 0);
    /* Aged by setting its mtime, not by a grace of 0: time() reads the coarse
     * clock, which can be a second behind a new file's mtime (Linux >= 6.13,
     * multigrain timestamps, after any fine-grained ctime in the system). */
    CHECK(utimensat(AT_FDCWD, path, two_hours_ago, 0) == 0 && store_init(data_dir, -1) == 0);
    CHECK(access(path, F_OK) == 0); /* a negative grace sweeps nothing (filesctl) */
    CHECK(store_init(data_dir, 3600) == 0);
    CHECK(access(path, F_OK) != 0);
}

/* Spins until the fine clock is in a second time() has not reached; 0 if that
 * does not happen within 3 s. */
static int into_first_tick_of_a_second(void)
{
    struct timespec fine, start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        clock_gettime(CLOCK_REALTIME, &fine);
        if (fine.tv_sec > time(NULL))
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - start.tv_sec < 3);
    return 0;
}

/* A file made just now is 0 seconds old, never -1: a grace of 0 sweeps it. The
 * kernel stamps a new file from the fine clock once any fine-grained ctime has
 * been taken, so in the first tick of a second its mtime is already the new
 * second while time() still says the old one. */
static void test_sweep_grace_0_in_the_first_tick_of_a_second(void)
{
    char path[4096], bump[4096];
    struct stat st;
    int fd;

    snprintf(path, sizeof path, "%s/tmp/124-1-0" NAMED_TMP_SUFFIX, data_dir);
    snprintf(bump, sizeof bump, "%s/tmp/bump", data_dir);
    for (int attempt = 0; attempt < 3; attempt++) { /* the window is one tick: try thrice */
        fd = open(bump, O_CREAT | O_WRONLY, 0600);
        CHECK(fd >= 0);
        if (!into_first_tick_of_a_second()) {
            close(fd);
            unlink(bump);
            break; /* time() is not the coarse clock here: nothing to test */
        }
        /* a fine-grained ctime: a write, a stat that looks at it, a write */
        CHECK(pwrite(fd, "x", 1, 0) == 1 && fstat(fd, &st) == 0 && pwrite(fd, "x", 1, 0) == 1);
        close(fd);
        fd = open(path, O_CREAT | O_WRONLY, 0600);
        CHECK(fd >= 0);
        close(fd);
        CHECK(store_init(data_dir, 0) == 0);
        CHECKF(access(path, F_OK) != 0, "attempt %d: a new file was not swept", attempt);
        unlink(path);
        unlink(bump);
    }
}

/* A flush that fails in the flusher thread fails the commit: /dev/null takes
 * writes but refuses fdatasync (EINVAL). */
static void test_failed_flush_fails_the_commit(void)
{
    static char block[1 << 20];
    struct store_upload up = {.fd = open("/dev/null", O_WRONLY)};
    char path[4096];

    CHECK(up.fd >= 0);
    up.anonymous = 1;
    for (int i = 0; i < (STORE_SYNC_BYTES >> 20); i++)
        CHECK(store_write(&up, block, sizeof block) == 0); /* the writer is not held up */
    CHECK(up.flushed == STORE_SYNC_BYTES && up.flush_asked == 1);
    errno = 0;
    CHECK(store_commit(&up, data_dir, "file_AAAAAAAAAAAAAAAAAAAAAAzz") == -1);
    CHECK(errno == EINVAL);
    CHECK(up.fd == -1 && up.flush_asked == 0);
    snprintf(path, sizeof path, "%s/files/zz/file_AAAAAAAAAAAAAAAAAAAAAAzz", data_dir);
    CHECK(access(path, F_OK) != 0);
}

static void test_scratch(void)
{
    char path[4096], back[6] = {0};
    int fd = store_scratch(data_dir);

    CHECK(fd >= 0);
    CHECK(store_append(fd, "hello", 5) == 0);
    CHECK(store_read_at(fd, 0, back, 5) == 0 && strcmp(back, "hello") == 0);
    CHECK(store_read_at(fd, 1, back, 4) == 0); /* up to the end exactly */
    errno = 0;
    CHECK(store_read_at(fd, 1, back, 5) == -1 && errno == EIO); /* one byte past it */
    snprintf(path, sizeof path, "%s/tmp", data_dir);
    CHECK(count_entries(path) == 0); /* nameless */
    close(fd);
}

static void test_synced_while_writing(void)
{
    static char block[1 << 20];
    struct store_upload up;

    CHECK(store_begin(&up, data_dir) == 0);
    for (int i = 0; i < (STORE_SYNC_BYTES >> 20) - 1; i++)
        CHECK(store_write(&up, block, sizeof block) == 0);
    CHECK(up.flushed == 0);
    CHECK(store_write(&up, block, sizeof block - 1) == 0);
    CHECK(up.flushed == 0); /* one byte short */
    CHECK(store_write(&up, block, 2) == 0);
    CHECK(up.flushed == STORE_SYNC_BYTES + 1); /* fdatasync'd through the bytes written */
    CHECK(up.written == STORE_SYNC_BYTES + 1);
    store_abort(&up);
}

/* At the end of the content the rest is flushed in the background, even when
 * the flusher is still busy with the last periodic flush: it then flushes once
 * more. The commit waits for it; a failed final flush fails the commit. */
static void test_flush_started_at_the_end(void)
{
    static char block[1 << 20];
    struct store_upload up;
    char path[4096];
    int calls;

    CHECK(store_begin(&up, data_dir) == 0);
    CHECK(store_write(&up, block, sizeof block) == 0);
    CHECK(up.flushed == 0);
    store_flush_start(&up);
    CHECK(up.flushed == up.written && up.flush_asked == 1);
    CHECK(store_commit(&up, data_dir, "file_AAAAAAAAAAAAAAAAAAAAAAyy") == 0);
    snprintf(path, sizeof path, "%s/files/yy/file_AAAAAAAAAAAAAAAAAAAAAAyy", data_dir);
    CHECK(access(path, F_OK) == 0);

    /* The periodic flush held under way: the final one is queued behind it. */
    CHECK(store_begin(&up, data_dir) == 0);
    pthread_mutex_lock(&syncs.lock);
    syncs.hold = 1;
    calls = syncs.calls;
    pthread_mutex_unlock(&syncs.lock);
    for (int i = 0; i < (STORE_SYNC_BYTES >> 20); i++)
        CHECK(store_write(&up, block, sizeof block) == 0);
    pthread_mutex_lock(&syncs.lock);
    while (!syncs.holding)
        pthread_cond_wait(&syncs.changed, &syncs.lock);
    pthread_mutex_unlock(&syncs.lock);
    CHECK(store_write(&up, block, 3) == 0);
    CHECK(up.flushed == STORE_SYNC_BYTES);
    store_flush_start(&up);
    CHECK(up.flushed == up.written);
    pthread_mutex_lock(&syncs.lock);
    syncs.hold = 0;
    pthread_cond_broadcast(&syncs.changed);
    pthread_mutex_unlock(&syncs.lock);
    flusher_wait(&up);
    pthread_mutex_lock(&syncs.lock);
    CHECKF(syncs.calls - calls == 2, "%d fdatasync calls", syncs.calls - calls);
    pthread_mutex_unlock(&syncs.lock);
    CHECK(up.flush_errno == 0);
    store_abort(&up);

    /* /dev/null takes writes but refuses fdatasync (EINVAL). */
    up = (struct store_upload){.fd = open("/dev/null", O_WRONLY), .anonymous = 1};
    CHECK(store_write(&up, block, 1) == 0);
    store_flush_start(&up);
    errno = 0;
    CHECK(store_commit(&up, data_dir, "file_AAAAAAAAAAAAAAAAAAAAAAyx") == -1 && errno == EINVAL);
}

int main(void)
{
    char command[256];

    if (!mkdtemp(data_dir))
        return 1;
    CHECK(store_init(data_dir, 3600) == 0);
    test_commit_and_read();
    test_found_shard_made_durable();
    test_failed_shard_fsync_unlinks_the_content();
    test_abort_leaves_nothing();
    test_named_temp_commit();
    test_layout_and_sweep();
    test_sweep_grace_0_in_the_first_tick_of_a_second();
    test_synced_while_writing();
    test_failed_flush_fails_the_commit();
    test_flush_started_at_the_end();
    test_scratch();
    snprintf(command, sizeof command, "rm -rf %s", data_dir);
    CHECK(system(command) == 0);
    TEST_MAIN_END();
}
