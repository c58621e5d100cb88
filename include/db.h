/* Metadata in one SQLite database (WAL mode) shared by every worker: accounts,
 * API keys (hashes only) and file rows. One connection per process, statements
 * prepared once at db_open. Deleted files keep a tombstone row (id, account,
 * order) so that a list cursor naming a deleted file still works. */
#ifndef DB_H
#define DB_H

#include <stdint.h>

#include "auth.h"
#include "digest.h"
#include "ids.h"

#define DB_FILENAME "files.db"
#define DB_SCHEMA_VERSION 1

enum db_status {
    DB_OK = 0,
    DB_NOT_FOUND = 1,
    DB_ERROR = -1, /* logged to stderr */
    DB_BUSY = -2,  /* another process held the write lock beyond the busy timeout */
    DB_FULL = -3,  /* the disk (or the quota) is full: logged to stderr */
};

struct file_meta {
    char id[IDS_FILE_LEN + 1];
    int64_t account_id;
    char purpose[32];
    char filename[256];
    int64_t bytes;
    char content_hash[DIGEST_HEX_LEN + 1]; /* digest.h: hex XXH3-128 of the content */
    int64_t created_at;                    /* Unix seconds */
    int64_t expires_at;                    /* Unix seconds; 0 = never */
};

struct key_record {
    char key_id[32];
    int64_t account_id;
    char account[128];
    char scopes[1024]; /* comma-separated; "" = legacy full access */
    char name[256];
    int64_t created_at;
    int64_t revoked_at; /* 0 = active */
};

struct db_list_query {
    int64_t account_id;
    const char *purpose; /* exact filter, or NULL for any */
    const char *after;   /* file id cursor, or NULL */
    int limit;           /* 1..100 */
    int descending;
    int64_t now; /* files that expired by now are hidden */
};

/* Opens (creating if needed) DATA_DIR/files.db, sets WAL and the pragmas,
 * migrates the schema and prepares the statements. Returns DB_OK or DB_ERROR. */
int db_open(const char *data_dir, int busy_timeout_ms);
void db_close(void);

/* 0 once files.db was removed or replaced while this process has it open
 * (writes are then refused, DB_ERROR), else 1. */
int db_in_place(void);

/* 1 if SQLite opened the database for reading only (the file or its mount
 * refused writing: SQLite falls back without an error), else 0. A handle
 * opened so stays so after the cause is gone. */
int db_read_only(void);

/* The reads between these two see one snapshot, under one WAL read lock
 * (two system calls) instead of one lock for each statement. Only for reads,
 * and short ones: an open read transaction holds back checkpoints. Returns
 * DB_OK, or DB_ERROR (logged), after which each read runs on its own. */
int db_read_begin(void);
void db_read_end(void);

/* Finds the active (not revoked) key with this hash. DB_OK, DB_NOT_FOUND, DB_BUSY, DB_ERROR.
 * Between db_read_begin and db_read_end the last key found is kept, and given
 * again without a lookup while no connection has committed since (PRAGMA
 * data_version); a revoked key is never given once its revocation is in the
 * transaction's snapshot. */
int db_key_find(const unsigned char hash[AUTH_HASH_SIZE], struct key_record *out);

/* Inserts a file row in its own write transaction. DB_OK, DB_BUSY, DB_FULL, DB_ERROR.
 * Files are listed in commit order, so created_at must not go backwards along it:
 * if a file committed meanwhile has a later created_at (its upload read the clock
 * later but committed first), file->created_at becomes that one, and
 * file->expires_at moves with it. */
int db_file_insert(struct file_meta *file);

/* Reads a live, unexpired file of the account. DB_OK, DB_NOT_FOUND, ... */
int db_file_get(int64_t account_id, const char *id, int64_t now, struct file_meta *out);

/* Turns a live file of the account into a tombstone. DB_OK, DB_NOT_FOUND, ... */
int db_file_delete(int64_t account_id, const char *id, int64_t now);

/* Calls each() for up to limit files of one page, in order; *has_more tells
 * whether more follow. DB_NOT_FOUND if the after cursor is no file of the
 * account (live or deleted). each() returns 0 to go on, nonzero to stop; the
 * files it gets carry no content_hash (no list shows it). */
int db_file_list(const struct db_list_query *query,
                 int (*each)(void *ctx, const struct file_meta *file), void *ctx, int *has_more);

/* Administration (filesctl). */
int db_account_ensure(const char *name, int64_t *account_id);
int db_account_find(const char *name, int64_t *account_id); /* DB_NOT_FOUND if none */
/* The length of the longest account name (0 if there is none). */
int db_account_name_longest(int64_t *length);

/* Calls each() for every live row of every account (expired ones too), in
 * creation order, with the owning account's name. account_id < 0: all accounts. */
int db_file_each(int64_t account_id,
                 int (*each)(void *ctx, const struct file_meta *file, const char *account),
                 void *ctx);

/* Reads a live row whatever its account or expiry. DB_OK, DB_NOT_FOUND, ... */
int db_file_find(const char *id, struct file_meta *out);

/* 1 if a live row has this id, 0 if not, or a negative db status. */
int db_file_is_live(const char *id);

/* Holds the write lock (BEGIN IMMEDIATE) until db_write_unlock: no other
 * connection commits meanwhile. For filesctl, to act on the disk while a row's
 * absence cannot change. Nothing else may open a write transaction while it is
 * held. DB_OK, DB_BUSY, ... */
int db_write_lock(void);
void db_write_unlock(void);

/* Tombstones a live row whatever its account. DB_OK, DB_NOT_FOUND, ... */
int db_file_remove(const char *id, int64_t now);

/* Finds up to max ids of live rows that expired by now. Returns the count or a negative status. */
int db_expired_ids(int64_t now, char (*ids)[IDS_FILE_LEN + 1], int max);

/* Runs PRAGMA integrity_check; writes its first line ("ok" when sound). A
 * damaged database is marked as such (see db_damaged). */
int db_integrity_check(char *out, size_t out_size);

/* Whether SQLite has found the open database damaged (SQLITE_CORRUPT or
 * SQLITE_NOTADB from a statement, or an integrity check), in any process,
 * since db_damage_clear. (A database that cannot be opened at all is the
 * open's failure, not this.) */
int db_damaged(void);

/* Returns 1 if the database answers a read (one indexed lookup of the key
 * table), is still the file at its path, is writable and is not known to be
 * damaged; else 0. Cheap enough for every health check. */
int db_usable(void);

/* Forgets the damage once an integrity check finds the database whole.
 * Returns 1 if it was marked. */
int db_damage_clear(void);
int db_key_insert(int64_t account_id, const char *key_id, const unsigned char hash[AUTH_HASH_SIZE],
                  const char *scopes, const char *name);
int db_key_revoke(const char *key_id); /* DB_NOT_FOUND if no such active key */
int db_key_each(int (*each)(void *ctx, const struct key_record *key), void *ctx);

#endif
