#include "db.h"
#include "hooks.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nettle/memops.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

enum statement {
    STMT_BEGIN,
    STMT_READ_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_KEY_FIND,
    STMT_FILE_INSERT,
    STMT_FILE_GET,
    STMT_FILE_DELETE,
    STMT_FILE_CURSOR,
    STMT_LAST_CREATED,
    STMT_LIST_DESC,
    STMT_LIST_ASC,
    STMT_LIST_PURPOSE_DESC,
    STMT_LIST_PURPOSE_ASC,
    STMT_ACCOUNT_FIND,
    STMT_ACCOUNT_NAME_LONGEST,
    STMT_ACCOUNT_INSERT,
    STMT_KEY_INSERT,
    STMT_KEY_REVOKE,
    STMT_KEY_EACH,
    STMT_FILE_EACH,
    STMT_FILE_EACH_ACCOUNT,
    STMT_FILE_FIND,
    STMT_FILE_REMOVE,
    STMT_EXPIRED,
    STMT_DATA_VERSION,
    STMT_COUNT
};

#define FILE_COLUMNS                                                                               \
    "id, account_id, purpose, filename, bytes, content_hash, created_at, expires_at"
#define LIVE "deleted_at IS NULL AND (expires_at IS NULL OR expires_at > ?3)"
/* A page reads only what a list writes: not account_id (the query's) nor
 * content_hash (no file object shows it); each column read costs. */
#define LIST_COLUMNS "id, purpose, filename, bytes, created_at, expires_at"
#define LIST_SQL(purpose, cmp, order)                                                              \
    "SELECT " LIST_COLUMNS " FROM files WHERE account_id = ?1 AND " LIVE purpose " AND seq " cmp   \
    " ?2 ORDER BY seq " order " LIMIT ?4"

static const char *const statement_sql[STMT_COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_READ_BEGIN] = "BEGIN",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_KEY_FIND] = "SELECT k.key_id, k.account_id, a.name, k.scopes, k.name, k.created_at, "
                      "k.hash FROM api_keys k JOIN accounts a ON a.id = k.account_id "
                      "WHERE k.hash = ?1 AND k.revoked_at IS NULL",
    [STMT_FILE_INSERT] = "INSERT INTO files (" FILE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                         "?7, ?8)",
    [STMT_FILE_GET] = "SELECT " FILE_COLUMNS " FROM files WHERE id = ?1 AND account_id = ?2 "
                      "AND " LIVE,
    [STMT_FILE_DELETE] = "UPDATE files SET deleted_at = ?3, filename = '' WHERE id = ?1 AND "
                         "account_id = ?2 AND " LIVE,
    [STMT_FILE_CURSOR] = "SELECT seq FROM files WHERE id = ?1 AND account_id = ?2",
    [STMT_LAST_CREATED] = "SELECT created_at FROM files ORDER BY seq DESC LIMIT 1",
    [STMT_LIST_DESC] = LIST_SQL("", "<", "DESC"),
    [STMT_LIST_ASC] = LIST_SQL("", ">", "ASC"),
    [STMT_LIST_PURPOSE_DESC] = LIST_SQL(" AND purpose = ?5", "<", "DESC"),
    [STMT_LIST_PURPOSE_ASC] = LIST_SQL(" AND purpose = ?5", ">", "ASC"),
    [STMT_ACCOUNT_FIND] = "SELECT id FROM accounts WHERE name = ?1",
    [STMT_ACCOUNT_NAME_LONGEST] = "SELECT coalesce(max(length(name)), 0) FROM accounts",
    [STMT_ACCOUNT_INSERT] = "INSERT INTO accounts (name, created_at) VALUES (?1, ?2)",
    [STMT_KEY_INSERT] = "INSERT INTO api_keys (key_id, account_id, hash, scopes, name, "
                        "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [STMT_KEY_REVOKE] = "UPDATE api_keys SET revoked_at = ?2 WHERE key_id = ?1 AND revoked_at "
                        "IS NULL",
    [STMT_KEY_EACH] = "SELECT k.key_id, k.account_id, a.name, k.scopes, k.name, k.created_at, "
                      "k.revoked_at FROM api_keys k JOIN accounts a ON a.id = k.account_id "
                      "ORDER BY k.id",
    [STMT_FILE_EACH] = "SELECT f.id, f.account_id, f.purpose, f.filename, f.bytes, f.content_hash, "
                       "f.created_at, f.expires_at, a.name FROM files f JOIN accounts a ON "
                       "a.id = f.account_id WHERE f.deleted_at IS NULL ORDER BY f.seq",
    [STMT_FILE_EACH_ACCOUNT] =
        "SELECT f.id, f.account_id, f.purpose, f.filename, f.bytes, "
        "f.content_hash, f.created_at, f.expires_at, a.name FROM files f JOIN "
        "accounts a ON a.id = f.account_id WHERE f.account_id = ?1 AND "
        "f.deleted_at IS NULL ORDER BY f.seq",
    [STMT_FILE_FIND] = "SELECT " FILE_COLUMNS " FROM files WHERE id = ?1 AND deleted_at IS NULL",
    [STMT_FILE_REMOVE] = "UPDATE files SET deleted_at = ?2, filename = '' WHERE id = ?1 AND "
                         "deleted_at IS NULL",
    [STMT_EXPIRED] = "SELECT id FROM files WHERE deleted_at IS NULL AND expires_at IS NOT NULL "
                     "AND expires_at <= ?1 LIMIT ?2",
    /* Changes whenever another connection has committed (not for our own commits). */
    [STMT_DATA_VERSION] = "PRAGMA data_version",
};

/* SQLite's own checkpoint after a commit (passive, past 1000 pages) copies
 * only what no reader still needs, and the WAL starts over only once no reader
 * is left in it: under constant reads it can grow without bound. Past that
 * size the committing connection restarts it instead, waiting a little for
 * the readers still in it (a read here lasts milliseconds). A reader that
 * outlasts the wait (fsck, a backup) holds the WAL: the commits after it
 * checkpoint passively, as SQLite would, and the next restart is tried 1000
 * pages later, so that they do not each wait. */
#define WAL_CHECKPOINT_PAGES 1000
#define WAL_RESTART_WAIT_MS 200
/* After a failed restart on a disk short of room (a reader held the WAL),
 * the commits of this many pages more go without one. */
#define WAL_ROOM_RETRY_PAGES 64
/* A WAL frame's header, beside its page. */
#define WAL_FRAME_HEADER 24

/* The per-process connection and all that goes with it; db_close resets it
 * whole. */
static struct connection {
    sqlite3 *db;
    sqlite3_stmt *statements[STMT_COUNT];
    int busy_wait_ms;       /* db_open's busy timeout, restored after a WAL restart's */
    int page_size;          /* the database's, for the WAL's growth in bytes */
    int next_restart_pages; /* the WAL's size at which a restart is tried next */
    int next_room_pages;    /* on a disk short of room for the WAL: likewise (0: at once) */
    /* Inside db_read_begin .. db_read_end: one snapshot, and no writes. */
    int reading;
    /* The last key db_key_find found while reading, and the data version of
     * the snapshot it was found in. While that version holds, no other
     * connection has committed since, and ours has not either (write_end
     * clears the entry), so the key's rows are as they were: a request with
     * the same key takes the record from here instead of two joined index
     * reads (~5% of a list page's instructions). A revocation is seen by the
     * next transaction, as before. */
    struct {
        int valid;
        int64_t version;
        unsigned char hash[AUTH_HASH_SIZE];
        struct key_record key;
    } key_cache;
    /* DATA/files.db.damaged: there while SQLite has found the database
     * damaged, so that every worker's /healthz says so, not only the one that
     * hit it. */
    char damage_marker[PATH_MAX + 16];
} conn = {.next_restart_pages = WAL_CHECKPOINT_PAGES};

/* Schema migrations, applied in order; user_version counts those applied. */
static const char *const migrations[] = {
    "CREATE TABLE accounts ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE api_keys ("
    "  id INTEGER PRIMARY KEY,"
    "  key_id TEXT NOT NULL UNIQUE,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  hash BLOB NOT NULL UNIQUE,"
    "  scopes TEXT NOT NULL,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER);"
    /* seq gives creation order, also within one second; AUTOINCREMENT never reuses it. */
    "CREATE TABLE files ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  purpose TEXT NOT NULL,"
    "  filename TEXT NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  content_hash TEXT NOT NULL," /* XXH3-128, hex */
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER,"
    "  deleted_at INTEGER);"
    /* Partial indexes: a page costs the same however many tombstones there are. */
    "CREATE INDEX files_live ON files(account_id, seq) WHERE deleted_at IS NULL;"
    "CREATE INDEX files_live_purpose ON files(account_id, purpose, seq) WHERE deleted_at IS NULL;"
    "CREATE INDEX files_expiry ON files(expires_at) WHERE deleted_at IS NULL AND expires_at IS "
    "NOT NULL;",
};

static void mark_damaged(const char *why)
{
    int fd;

    if (!conn.damage_marker[0] || access(conn.damage_marker, F_OK) == 0)
        return;
    fd = open(conn.damage_marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd >= 0) {
        dprintf(fd, "%s\n", why);
        close(fd);
        fprintf(stderr,
                "files-api: sqlite: the database is damaged (%s): /healthz answers 503 until "
                "filesctl fsck finds it whole (%s)\n",
                why, conn.damage_marker);
    } else {
        fprintf(stderr,
                "files-api: sqlite: the database is damaged (%s), and cannot be marked so "
                "(%s: %s): /healthz does not report it\n",
                why, conn.damage_marker, strerror(errno));
    }
}

int db_damaged(void)
{
    return conn.damage_marker[0] && access(conn.damage_marker, F_OK) == 0;
}

/* The operating system's reason behind an I/O failure, for the log: SQLite's
 * "disk I/O error" alone does not tell a full disk from a read-only one. */
static const char *os_cause(int rc)
{
    int primary = rc & 0xff, os_errno = conn.db ? sqlite3_system_errno(conn.db) : 0;

    /* (Not for "unable to open": the errno is that of SQLite's last fallback,
     * e.g. ENOENT for a read-only open of a log that is not there. Nor for
     * SQLITE_FULL: SQLite records no errno for it, so the one there is an
     * earlier error's, or 0.) */
    if (os_errno == 0 || primary != SQLITE_IOERR)
        return "";
    return strerror(os_errno);
}

/* Logs a failure as "sqlite: WHAT: message (os cause)". */
static void log_sqlite(const char *what, const char *message, int rc)
{
    const char *cause = os_cause(rc);

    fprintf(stderr, "files-api: sqlite: %s%s%s%s%s%s\n", what, *what ? ": " : "", message,
            *cause ? " (" : "", cause, *cause ? ")" : "");
}

static int status_of(int rc)
{
    const char *message = conn.db ? sqlite3_errmsg(conn.db) : sqlite3_errstr(rc);

    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return DB_BUSY;
    log_sqlite("", message, rc);
    if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB)
        mark_damaged(message);
    return (rc & 0xff) == SQLITE_FULL ? DB_FULL : DB_ERROR;
}

static int exec_sql(const char *sql)
{
    char *message = NULL;
    int rc = sqlite3_exec(conn.db, sql, NULL, NULL, &message);

    if (rc != SQLITE_OK) {
        log_sqlite("", message ? message : sqlite3_errstr(rc), rc);
        sqlite3_free(message);
        return rc == SQLITE_BUSY ? DB_BUSY : DB_ERROR;
    }
    return DB_OK;
}

/* Runs a prepared statement that returns no rows, then resets it. */
static int step_done(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);

    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc == SQLITE_DONE ? DB_OK : status_of(rc);
}

/* Ends a walk over a statement's rows (rc: the last step's): resets the
 * statement; returns DB_OK, or the error that cut the walk short. */
static int rows_end(sqlite3_stmt *stmt, int rc)
{
    int status = rc == SQLITE_ROW || rc == SQLITE_DONE ? DB_OK : status_of(rc);

    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return status;
}

/* Runs a bound statement that returns at most one row: DB_OK with the row
 * given to read_row, DB_NOT_FOUND, or an error. Resets the statement. */
static int step_row(sqlite3_stmt *stmt, void (*read_row)(sqlite3_stmt *stmt, void *out), void *out)
{
    int rc = sqlite3_step(stmt), status = DB_NOT_FOUND;

    if (rc == SQLITE_ROW) {
        read_row(stmt, out);
        status = DB_OK;
    } else if (rc != SQLITE_DONE) {
        status = status_of(rc);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return status;
}

/* Runs a bound UPDATE inside a write transaction: DB_NOT_FOUND if it changed no row. */
static int step_change(sqlite3_stmt *stmt)
{
    int status = step_done(stmt);

    if (status == DB_OK && sqlite3_changes(conn.db) == 0)
        status = DB_NOT_FOUND;
    return status;
}

int db_read_only(void)
{
    return sqlite3_db_readonly(conn.db, "main") == 1;
}

int db_in_place(void)
{
    int moved = 0;

    return sqlite3_file_control(conn.db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
           !moved;
}

/* A database removed or replaced under the running service would go on
 * taking writes into the unlinked file: acknowledged, then lost with the
 * process. One stat() per write transaction refuses them instead. */
static int write_begin(void)
{
    int status = step_done(conn.statements[STMT_BEGIN]);

    if (status == DB_OK && !db_in_place()) {
        step_done(conn.statements[STMT_ROLLBACK]);
        fprintf(stderr,
                "files-api: sqlite: %s is no longer at its path (removed or replaced "
                "while in use): writes are refused until it is back\n",
                sqlite3_db_filename(conn.db, "main"));
        return DB_ERROR;
    }
    return status;
}

/* Commits, or rolls back when status says the work failed. Returns the status of the whole. */
static int write_end(int status)
{
    conn.key_cache.valid = 0; /* our own commits leave the data version as it was */
    if (status == DB_OK || status == DB_NOT_FOUND) {
        int rc = step_done(conn.statements[STMT_COMMIT]);
        if (rc == DB_OK)
            return status;
        status = rc;
    }
    if (!sqlite3_get_autocommit(conn.db)) /* SQLite has already rolled back after some errors */
        step_done(conn.statements[STMT_ROLLBACK]);
    return status;
}

int db_read_begin(void)
{
    int status = step_done(conn.statements[STMT_READ_BEGIN]);

    conn.reading = status == DB_OK;
    return status;
}

void db_read_end(void)
{
    conn.reading = 0;
    /* A failed COMMIT may have rolled back already (a damaged page does). */
    if (!sqlite3_get_autocommit(conn.db) && step_done(conn.statements[STMT_COMMIT]) != DB_OK &&
        !sqlite3_get_autocommit(conn.db))
        step_done(conn.statements[STMT_ROLLBACK]);
}

/* Reads an integer PRAGMA into *value; SQLite's code, SQLITE_ROW once read. */
static int pragma_read(const char *sql, int *value)
{
    sqlite3_stmt *stmt;
    int rc;

    if (sqlite3_prepare_v2(conn.db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return sqlite3_errcode(conn.db);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *value = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return rc;
}

/* Reads an integer PRAGMA (user_version, page_size) into *value. */
static int pragma_int(const char *sql, int *value)
{
    int rc = pragma_read(sql, value);

    return rc == SQLITE_ROW ? DB_OK : status_of(rc);
}

/* Whether DIR (a path) holds anything: 1 if so, or if it cannot be told
 * (held, so as not to take it for new); 0 if it is empty or missing.
 * depth 1: a directory inside it counts only if it holds something itself
 * (the shard directories stay when their last file is deleted). */
static int dir_holds_content(const char *path, int depth)
{
    char sub[PATH_MAX];
    struct dirent *e;
    DIR *dir;
    int found = 0;

    if (!(dir = opendir(path)))
        return errno != ENOENT;
    while (!found && (e = readdir(dir)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (depth == 0 || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
            found = 1;
        else if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub)
            found = 1;
        else
            found = dir_holds_content(sub, 0) != 0; /* (a file there, ENOTDIR too) */
    }
    closedir(dir);
    return found;
}

/* Whether DATA/files/ holds content: stored under a database that is gone,
 * if that database has no schema. */
static int store_holds_content(const char *data_dir)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof path, "%s/" STORE_FILES_DIR, data_dir) >= (int)sizeof path)
        return 1; /* (unknown: held, so as not to take it for new) */
    return dir_holds_content(path, 1);
}

static int schema_version(int *version)
{
    return pragma_int("PRAGMA user_version", version);
}

/* A database without a schema beside stored content: says so, returns 1. */
static int emptied_beside_content(const char *data_dir)
{
    if (!store_holds_content(data_dir))
        return 0;
    fprintf(stderr,
            "files-api: %s/%s has no tables, but %s/" STORE_FILES_DIR " holds content: the "
            "database was emptied or replaced; restore it (a new, empty one would disown "
            "every stored file)\n",
            data_dir, DB_FILENAME, data_dir);
    return 1;
}

/* Brings the schema up to date. Only a database that needs it takes the write
 * lock: a worker or filesctl starting while another process writes does not
 * wait for that. A database without a schema (an empty files.db: emptied, or a
 * restore that wrote nothing) beside stored content is refused, not made new:
 * every file would lose its row, and fsck --repair would remove its content. */
static int migrate(const char *data_dir)
{
    int version = 0;
    size_t count = sizeof migrations / sizeof *migrations;

    if (schema_version(&version) != DB_OK)
        return DB_ERROR;
    if (version == (int)count)
        return DB_OK;
    if (exec_sql("BEGIN IMMEDIATE") != DB_OK)
        return DB_ERROR;
    if (schema_version(&version) != DB_OK) /* another process may have migrated meanwhile */
        goto fail;
    if (version > (int)count) {
        fprintf(stderr, "files-api: database schema %d is newer than this program (%zu)\n", version,
                count);
        goto fail;
    }
    if (version == 0 && emptied_beside_content(data_dir))
        goto fail;
    for (size_t i = (size_t)version; i < count; i++) {
        char pragma[64];
        if (exec_sql(migrations[i]) != DB_OK)
            goto fail;
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %zu", i + 1);
        if (exec_sql(pragma) != DB_OK)
            goto fail;
    }
    return exec_sql("COMMIT") == DB_OK ? DB_OK : DB_ERROR;
fail:
    exec_sql("ROLLBACK");
    return DB_ERROR;
}

/* Whether the database's disk lacks the room for the WAL (pages long now) to
 * grow to WAL_CHECKPOINT_PAGES. */
static int wal_room_short(sqlite3 *handle, const char *name, int pages)
{
    const char *path = sqlite3_db_filename(handle, name);
    unsigned long long growth =
        (unsigned long long)(WAL_CHECKPOINT_PAGES - pages) * (conn.page_size + WAL_FRAME_HEADER);
    struct statvfs disk;

    if (!path || !*path || statvfs(path, &disk) != 0)
        return 0;
    return (unsigned long long)disk.f_bavail * disk.f_frsize < growth;
}

/* The WAL's restart (see WAL_CHECKPOINT_PAGES), from SQLite's commit hook. */
static int restart_wal(void *unused, sqlite3 *handle, const char *name, int pages)
{
    int rc;

    (void)unused;
    if (pages < conn.next_restart_pages - WAL_CHECKPOINT_PAGES)
        conn.next_restart_pages =
            WAL_CHECKPOINT_PAGES; /* it started over since an attempt failed */
    if (pages < WAL_CHECKPOINT_PAGES) {
        /* The disk has no room for the WAL to grow to its restart point: it
         * starts over now. Else, on a disk near full, the commits that
         * follow (deletes, each freeing less than it logs) took the space
         * that keep_free_bytes keeps, to the last block, and then no delete
         * could be recorded. RESTART, not TRUNCATE: the next commits write
         * over the blocks the WAL has, so deletes are still recorded once
         * something else has filled the disk to the last block.
         * A reader that outlasts the wait holds the WAL: the next attempt
         * is WAL_ROOM_RETRY_PAGES later, so that the commits do not each
         * wait for it. */
        if (pages < conn.next_room_pages - WAL_ROOM_RETRY_PAGES)
            conn.next_room_pages = 0; /* it started over since an attempt failed */
        if (pages >= conn.next_room_pages && wal_room_short(handle, name, pages)) {
            sqlite3_busy_timeout(handle, WAL_RESTART_WAIT_MS);
            rc = sqlite3_wal_checkpoint_v2(handle, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
            sqlite3_busy_timeout(handle, conn.busy_wait_ms);
            conn.next_room_pages = rc == SQLITE_OK ? 0 : pages + WAL_ROOM_RETRY_PAGES;
            if (rc != SQLITE_OK)
                fprintf(stderr,
                        "files-api: the WAL (%d pages) cannot start over on a disk short of room "
                        "for it (%s); trying again past %d pages\n",
                        pages,
                        rc == SQLITE_BUSY ? "another connection is in it" : sqlite3_errstr(rc),
                        conn.next_room_pages);
        }
        return SQLITE_OK;
    }
    if (pages < conn.next_restart_pages) {
        sqlite3_wal_checkpoint_v2(handle, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    sqlite3_busy_timeout(handle, WAL_RESTART_WAIT_MS);
    rc = sqlite3_wal_checkpoint_v2(handle, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
    sqlite3_busy_timeout(handle, conn.busy_wait_ms);
    if (rc == SQLITE_OK) {
        conn.next_restart_pages = WAL_CHECKPOINT_PAGES;
    } else {
        conn.next_restart_pages = pages + WAL_CHECKPOINT_PAGES;
        fprintf(
            stderr,
            "files-api: the WAL (%d pages) cannot start over while another connection is in it; "
            "trying again past %d pages\n",
            pages, conn.next_restart_pages);
    }
    return SQLITE_OK;
}

/* SQLITE_OPEN_CREATE if the database may be created: only where there is
 * none, and no write-ahead log either. A log without its database means the
 * database was moved or deleted while in use: a new, empty one would take
 * that log for its own (SQLite reports I/O errors, and what the log held is
 * lost when the database comes back). */
static int create_flag(const char *path)
{
    char wal[PATH_MAX + 4];

    if (access(path, F_OK) == 0 || errno != ENOENT)
        return 0;
    hooks_pause_point("db_open_missing");
    snprintf(wal, sizeof wal, "%s-wal", path);
    if (access(wal, F_OK) != 0)
        return errno == ENOENT ? SQLITE_OPEN_CREATE : 0;
    /* SQLite creates a database before its log: one there now was just made
     * by another process starting at the same time. */
    if (access(path, F_OK) == 0)
        return 0;
    fprintf(stderr,
            "files-api: %s is missing, but its write-ahead log %s is there: the database was "
            "moved or deleted while in use; put it back (a new one would lose what the log "
            "holds)\n",
            path, wal);
    return -1;
}

/* Turning a new database to WAL takes an exclusive lock, which SQLite does
 * not wait for where waiting could deadlock (processes starting together on
 * a new database each hold a shared lock): "database is locked" at once,
 * whatever the busy timeout. So it is tried again, within that timeout. */
static int use_wal(int busy_timeout_ms)
{
    int rc, waited_ms = 0;

    while ((rc = sqlite3_exec(conn.db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL)) ==
               SQLITE_BUSY &&
           waited_ms < busy_timeout_ms) {
        usleep(10 * 1000);
        waited_ms += 10;
    }
    if (rc != SQLITE_OK) {
        log_sqlite("switching to WAL", sqlite3_errmsg(conn.db), rc);
        return DB_ERROR;
    }
    return DB_OK;
}

/* After a failed open: SQLite's "unable to open database file" does not say
 * that the folder or the database is read-only (a read-only mount, whose
 * EROFS even root gets). */
static void log_unwritable(const char *data_dir, const char *path)
{
    const char *name = access(data_dir, W_OK) != 0                          ? data_dir
                       : access(path, F_OK) == 0 && access(path, W_OK) != 0 ? path
                                                                            : NULL;
    if (name)
        fprintf(stderr, "files-api: %s cannot be written: %s\n", name, strerror(errno));
}

int db_open(const char *data_dir, int busy_timeout_ms)
{
    char path[PATH_MAX];
    int create, version = 0;

    if (snprintf(path, sizeof path, "%s/%s", data_dir, DB_FILENAME) >= (int)sizeof path)
        return DB_ERROR;
    if ((create = create_flag(path)) < 0)
        return DB_ERROR;
    if (create && store_holds_content(data_dir)) { /* (refused, as below, making nothing) */
        fprintf(stderr,
                "files-api: %s is missing, but %s/" STORE_FILES_DIR " holds content: the database "
                "was moved or deleted; put it back (a new, empty one would disown every stored "
                "file)\n",
                path, data_dir);
        return DB_ERROR;
    }
    snprintf(conn.damage_marker, sizeof conn.damage_marker, "%s.damaged", path);
    if (db_damaged()) /* else nothing would say why /healthz answers 503 */
        fprintf(stderr,
                "files-api: %s is there: SQLite found the database damaged; /healthz answers "
                "503 until filesctl fsck finds it whole\n",
                conn.damage_marker);
    /* No memory statistics (nothing reads them): to keep them SQLite takes a
     * global mutex around every allocation, ~4% of a metadata request. Only
     * possible before SQLite starts: a later call is refused, harmlessly. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    /* NOMUTEX: only the thread that opened the handle uses it (the upload
     * pipeline's threads never touch the database), so SQLite's per-call
     * locking was pure cost: a tenth of a list request's instructions. */
    if (sqlite3_open_v2(path, &conn.db, SQLITE_OPEN_READWRITE | create | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        status_of(SQLITE_ERROR);
        log_unwritable(data_dir, path);
        db_close();
        return DB_ERROR;
    }
    conn.busy_wait_ms = busy_timeout_ms;
    sqlite3_busy_timeout(conn.db, busy_timeout_ms);
    sqlite3_wal_hook(conn.db, restart_wal, NULL);
    /* Refused before anything writes to it (turning it to WAL writes its
     * first page), so that an emptied files.db stays as it was found. A
     * failure to read it is left to what follows to report (and to mark, if
     * the database is damaged). */
    if (!create && pragma_read("PRAGMA user_version", &version) == SQLITE_ROW && version == 0 &&
        emptied_beside_content(data_dir)) {
        db_close();
        return DB_ERROR;
    }
    /* synchronous=FULL: a committed upload survives power loss, as SPEC promises. */
    if (use_wal(busy_timeout_ms) != DB_OK ||
        exec_sql("PRAGMA synchronous = FULL; "
                 "PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = 67108864; "
                 /* 512 KiB of page cache: the hot pages are few, and a worker's
                  * memory budget is small (16 MiB during a 105 MiB upload). */
                 "PRAGMA cache_size = -512") != DB_OK ||
        migrate(data_dir) != DB_OK || pragma_int("PRAGMA page_size", &conn.page_size) != DB_OK) {
        log_unwritable(data_dir, path);
        db_close();
        return DB_ERROR;
    }
    for (int i = 0; i < STMT_COUNT; i++) {
        if (sqlite3_prepare_v3(conn.db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &conn.statements[i], NULL) != SQLITE_OK) {
            status_of(SQLITE_ERROR);
            db_close();
            return DB_ERROR;
        }
    }
    return DB_OK;
}

void db_close(void)
{
    for (int i = 0; i < STMT_COUNT; i++) {
        sqlite3_finalize(conn.statements[i]);
        conn.statements[i] = NULL;
    }
    sqlite3_close(conn.db);
    /* A database opened next counts data versions (the key cache's) anew. */
    conn = (struct connection){.next_restart_pages = WAL_CHECKPOINT_PAGES};
}

/* Copies a text column into dest, cut to size - 1 bytes (a list page copies
 * three per row: snprintf was a tenth of the request). SQLite's text is
 * NUL-terminated, so the length is found here: sqlite3_column_bytes is one
 * more API call per column, dearer than scanning a short value. */
static void copy_text(char *dest, size_t size, sqlite3_stmt *stmt, int column)
{
    const char *text = (const char *)sqlite3_column_text(stmt, column);
    size_t len = text ? strnlen(text, size - 1) : 0;

    memcpy(dest, text ? text : "", len);
    dest[len] = '\0';
}

static void read_key(sqlite3_stmt *stmt, struct key_record *key)
{
    memset(key, 0, sizeof *key);
    copy_text(key->key_id, sizeof key->key_id, stmt, 0);
    key->account_id = sqlite3_column_int64(stmt, 1);
    copy_text(key->account, sizeof key->account, stmt, 2);
    copy_text(key->scopes, sizeof key->scopes, stmt, 3);
    copy_text(key->name, sizeof key->name, stmt, 4);
    key->created_at = sqlite3_column_int64(stmt, 5);
}

struct key_lookup {
    const unsigned char *hash;
    struct key_record *key;
    int matched;
};

/* The index found the row by its hash; confirm the whole hash in constant time. */
static void read_key_verified(sqlite3_stmt *stmt, void *out)
{
    struct key_lookup *lookup = out;
    const void *stored = sqlite3_column_blob(stmt, 6);

    if (stored && sqlite3_column_bytes(stmt, 6) == AUTH_HASH_SIZE &&
        nettle_memeql_sec(stored, lookup->hash, AUTH_HASH_SIZE)) {
        read_key(stmt, lookup->key);
        lookup->matched = 1;
    }
}

static void read_int64(sqlite3_stmt *stmt, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(stmt, 0);
}

int db_key_find(const unsigned char hash[AUTH_HASH_SIZE], struct key_record *out)
{
    sqlite3_stmt *stmt = conn.statements[STMT_KEY_FIND];
    struct key_lookup lookup = {hash, out, 0};
    int64_t version = -1; /* -1: not reading, or the version is unknown */
    int status;

    /* Reading the version starts the transaction's snapshot: the version is
     * that of the rows this request reads. */
    if (conn.reading && !sqlite3_get_autocommit(conn.db) &&
        step_row(conn.statements[STMT_DATA_VERSION], read_int64, &version) != DB_OK)
        version = -1;
    if (version >= 0 && conn.key_cache.valid && conn.key_cache.version == version &&
        nettle_memeql_sec(conn.key_cache.hash, hash, AUTH_HASH_SIZE)) {
        *out = conn.key_cache.key;
        return DB_OK;
    }
    sqlite3_bind_blob(stmt, 1, hash, AUTH_HASH_SIZE, SQLITE_STATIC);
    status = step_row(stmt, read_key_verified, &lookup);
    if (status == DB_OK && lookup.matched && version >= 0) {
        conn.key_cache.valid = 1;
        conn.key_cache.version = version;
        memcpy(conn.key_cache.hash, hash, AUTH_HASH_SIZE);
        conn.key_cache.key = *out;
    }
    return status == DB_OK && !lookup.matched ? DB_NOT_FOUND : status;
}

static void bind_file_id(sqlite3_stmt *stmt, const char *id, int64_t account_id)
{
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, account_id);
}

int db_file_insert(struct file_meta *file)
{
    sqlite3_stmt *stmt = conn.statements[STMT_FILE_INSERT];
    int64_t last_created = 0;
    int status = write_begin();

    if (status != DB_OK)
        return status;
    status = step_row(conn.statements[STMT_LAST_CREATED], read_int64, &last_created);
    if (status != DB_OK && status != DB_NOT_FOUND)
        return write_end(status);
    if (last_created > file->created_at) {
        if (file->expires_at)
            file->expires_at += last_created - file->created_at;
        file->created_at = last_created;
    }
    bind_file_id(stmt, file->id, file->account_id);
    sqlite3_bind_text(stmt, 3, file->purpose, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, file->filename, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, file->bytes);
    sqlite3_bind_text(stmt, 6, file->content_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 7, file->created_at);
    if (file->expires_at)
        sqlite3_bind_int64(stmt, 8, file->expires_at);
    else
        sqlite3_bind_null(stmt, 8);
    return write_end(step_done(stmt));
}

static void read_file(sqlite3_stmt *stmt, void *out)
{
    struct file_meta *file = out;

    memset(file, 0, sizeof *file);
    copy_text(file->id, sizeof file->id, stmt, 0);
    file->account_id = sqlite3_column_int64(stmt, 1);
    copy_text(file->purpose, sizeof file->purpose, stmt, 2);
    copy_text(file->filename, sizeof file->filename, stmt, 3);
    file->bytes = sqlite3_column_int64(stmt, 4);
    copy_text(file->content_hash, sizeof file->content_hash, stmt, 5);
    file->created_at = sqlite3_column_int64(stmt, 6);
    file->expires_at = sqlite3_column_int64(stmt, 7); /* NULL reads as 0 */
}

int db_file_get(int64_t account_id, const char *id, int64_t now, struct file_meta *out)
{
    sqlite3_stmt *stmt = conn.statements[STMT_FILE_GET];

    bind_file_id(stmt, id, account_id);
    sqlite3_bind_int64(stmt, 3, now);
    return step_row(stmt, read_file, out);
}

int db_file_delete(int64_t account_id, const char *id, int64_t now)
{
    sqlite3_stmt *stmt = conn.statements[STMT_FILE_DELETE];
    int status = write_begin();

    if (status != DB_OK)
        return status;
    bind_file_id(stmt, id, account_id);
    sqlite3_bind_int64(stmt, 3, now);
    return write_end(step_change(stmt));
}

/* Finds the order (seq) of the cursor file, deleted or not. */
static int cursor_seq(int64_t account_id, const char *id, int64_t *seq)
{
    sqlite3_stmt *stmt = conn.statements[STMT_FILE_CURSOR];

    bind_file_id(stmt, id, account_id);
    return step_row(stmt, read_int64, seq);
}

/* Reads a row of a page (LIST_COLUMNS); the content hash stays empty. */
static void read_list_row(sqlite3_stmt *stmt, int64_t account_id, struct file_meta *file)
{
    memset(file, 0, sizeof *file);
    copy_text(file->id, sizeof file->id, stmt, 0);
    file->account_id = account_id;
    copy_text(file->purpose, sizeof file->purpose, stmt, 1);
    copy_text(file->filename, sizeof file->filename, stmt, 2);
    file->bytes = sqlite3_column_int64(stmt, 3);
    file->created_at = sqlite3_column_int64(stmt, 4);
    file->expires_at = sqlite3_column_int64(stmt, 5); /* NULL reads as 0 */
}

int db_file_list(const struct db_list_query *query,
                 int (*each)(void *ctx, const struct file_meta *file), void *ctx, int *has_more)
{
    enum statement which;
    sqlite3_stmt *stmt;
    int64_t cursor = query->descending ? INT64_MAX : 0;
    int rc, rows = 0, status = DB_OK;
    struct file_meta file;

    *has_more = 0;
    if (query->after && (status = cursor_seq(query->account_id, query->after, &cursor)) != DB_OK)
        return status;
    if (query->purpose)
        which = query->descending ? STMT_LIST_PURPOSE_DESC : STMT_LIST_PURPOSE_ASC;
    else
        which = query->descending ? STMT_LIST_DESC : STMT_LIST_ASC;
    stmt = conn.statements[which];
    sqlite3_bind_int64(stmt, 1, query->account_id);
    sqlite3_bind_int64(stmt, 2, cursor);
    sqlite3_bind_int64(stmt, 3, query->now);
    sqlite3_bind_int(stmt, 4, query->limit + 1); /* one more tells whether more follow */
    if (query->purpose)
        sqlite3_bind_text(stmt, 5, query->purpose, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (rows == query->limit) {
            *has_more = 1;
            break;
        }
        rows++;
        read_list_row(stmt, query->account_id, &file);
        if (each(ctx, &file) != 0)
            break;
    }
    return rows_end(stmt, rc);
}

int db_account_ensure(const char *name, int64_t *account_id)
{
    sqlite3_stmt *find = conn.statements[STMT_ACCOUNT_FIND];
    sqlite3_stmt *insert = conn.statements[STMT_ACCOUNT_INSERT];
    int rc, status = write_begin();

    if (status != DB_OK)
        return status;
    sqlite3_bind_text(find, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(find);
    if (rc == SQLITE_ROW)
        *account_id = sqlite3_column_int64(find, 0);
    sqlite3_reset(find);
    sqlite3_clear_bindings(find);
    if (rc == SQLITE_DONE) {
        sqlite3_bind_text(insert, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(insert, 2, (int64_t)time(NULL));
        status = step_done(insert);
        *account_id = sqlite3_last_insert_rowid(conn.db);
    } else if (rc != SQLITE_ROW) {
        status = status_of(rc);
    }
    return write_end(status);
}

int db_key_insert(int64_t account_id, const char *key_id, const unsigned char hash[AUTH_HASH_SIZE],
                  const char *scopes, const char *name)
{
    sqlite3_stmt *stmt = conn.statements[STMT_KEY_INSERT];
    int status = write_begin();

    if (status != DB_OK)
        return status;
    sqlite3_bind_text(stmt, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, account_id);
    sqlite3_bind_blob(stmt, 3, hash, AUTH_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, scopes, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, (int64_t)time(NULL));
    return write_end(step_done(stmt));
}

int db_key_revoke(const char *key_id)
{
    sqlite3_stmt *stmt = conn.statements[STMT_KEY_REVOKE];
    int status = write_begin();

    if (status != DB_OK)
        return status;
    sqlite3_bind_text(stmt, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, (int64_t)time(NULL));
    return write_end(step_change(stmt));
}

int db_key_each(int (*each)(void *ctx, const struct key_record *key), void *ctx)
{
    sqlite3_stmt *stmt = conn.statements[STMT_KEY_EACH];
    struct key_record key;
    int rc;

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        read_key(stmt, &key);
        key.revoked_at = sqlite3_column_int64(stmt, 6);
        if (each(ctx, &key) != 0)
            break;
    }
    return rows_end(stmt, rc);
}

int db_account_find(const char *name, int64_t *account_id)
{
    sqlite3_stmt *stmt = conn.statements[STMT_ACCOUNT_FIND];

    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    return step_row(stmt, read_int64, account_id);
}

int db_account_name_longest(int64_t *length)
{
    return step_row(conn.statements[STMT_ACCOUNT_NAME_LONGEST], read_int64, length);
}

int db_file_each(int64_t account_id,
                 int (*each)(void *ctx, const struct file_meta *file, const char *account),
                 void *ctx)
{
    sqlite3_stmt *stmt = conn.statements[account_id < 0 ? STMT_FILE_EACH : STMT_FILE_EACH_ACCOUNT];
    struct file_meta file;
    int rc;

    if (account_id >= 0)
        sqlite3_bind_int64(stmt, 1, account_id);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        read_file(stmt, &file);
        if (each(ctx, &file, (const char *)sqlite3_column_text(stmt, 8)) != 0)
            break;
    }
    return rows_end(stmt, rc);
}

int db_file_find(const char *id, struct file_meta *out)
{
    sqlite3_stmt *stmt = conn.statements[STMT_FILE_FIND];

    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    return step_row(stmt, read_file, out);
}

int db_file_is_live(const char *id)
{
    struct file_meta unused;
    int status = db_file_find(id, &unused);

    return status == DB_OK ? 1 : status == DB_NOT_FOUND ? 0 : status;
}

int db_write_lock(void)
{
    return write_begin();
}

void db_write_unlock(void)
{
    write_end(DB_OK);
}

int db_file_remove(const char *id, int64_t now)
{
    sqlite3_stmt *stmt = conn.statements[STMT_FILE_REMOVE];
    int status = write_begin();

    if (status != DB_OK)
        return status;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now);
    return write_end(step_change(stmt));
}

int db_expired_ids(int64_t now, char (*ids)[IDS_FILE_LEN + 1], int max)
{
    sqlite3_stmt *stmt = conn.statements[STMT_EXPIRED];
    int rc, status, count = 0;

    sqlite3_bind_int64(stmt, 1, now);
    sqlite3_bind_int(stmt, 2, max);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && count < max)
        copy_text(ids[count++], IDS_FILE_LEN + 1, stmt, 0);
    status = rows_end(stmt, rc);
    return status == DB_OK ? count : status;
}

int db_integrity_check(char *out, size_t out_size)
{
    sqlite3_stmt *stmt;
    int rc;

    if (sqlite3_prepare_v2(conn.db, "PRAGMA integrity_check", -1, &stmt, NULL) != SQLITE_OK)
        return status_of(SQLITE_ERROR);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        copy_text(out, out_size, stmt, 0);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW)
        return status_of(rc);
    if (strcmp(out, "ok") != 0)
        mark_damaged(out);
    return DB_OK;
}

int db_usable(void)
{
    static const unsigned char no_key[AUTH_HASH_SIZE];
    struct key_record unused;
    int status = db_key_find(no_key, &unused);
    const char *path = sqlite3_db_filename(conn.db, "main");

    return (status == DB_OK || status == DB_NOT_FOUND) && db_in_place() && !db_damaged() && path &&
           access(path, W_OK) == 0;
}

int db_damage_clear(void)
{
    return conn.damage_marker[0] && unlink(conn.damage_marker) == 0;
}
