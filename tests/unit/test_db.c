/* Unit tests: the SQLite metadata layer (src/db.c) on a real database file. */
#include "../../src/db.c"

#include "testlib.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static char data_dir[] = "/tmp/files-api-test-db.XXXXXX";

static void make_file(struct file_meta *f, int64_t account, const char *purpose, int64_t expires)
{
    memset(f, 0, sizeof *f);
    ids_make(f->id, sizeof f->id, IDS_FILE_PREFIX, IDS_FILE_RANDOM);
    f->account_id = account;
    snprintf(f->purpose, sizeof f->purpose, "%s", purpose);
    snprintf(f->filename, sizeof f->filename, "in.jsonl");
    f->bytes = 10;
    memset(f->content_hash, 'a', DIGEST_HEX_LEN);
    f->created_at = 1000;
    f->expires_at = expires;
}

struct page {
    int count;
    char ids[101][IDS_FILE_LEN + 1];
};

static int collect(void *ctx, const struct file_meta *f)
{
    struct page *p = ctx;
    strcpy(p->ids[p->count++], f->id);
    return 0;
}

static int list(int64_t account, const char *purpose, const char *after, int limit, int desc,
                struct page *page, int *has_more)
{
    struct db_list_query q = {account, purpose, after, limit, desc, 2000};
    page->count = 0;
    return db_file_list(&q, collect, page, has_more);
}

struct each_count {
    int64_t account; /* the account asked for */
    int rows, foreign;
};

/* Counts the rows db_file_each visits, and those of another account. */
static int count_each(void *ctx, const struct file_meta *f, const char *account)
{
    struct each_count *c = ctx;
    (void)account;
    c->rows++;
    c->foreign += f->account_id != c->account;
    return 0;
}

static void test_keys(int64_t *acme, int64_t *other)
{
    unsigned char hash[AUTH_HASH_SIZE], missing[AUTH_HASH_SIZE];
    struct key_record key;

    CHECK(db_account_ensure("acme", acme) == DB_OK);
    CHECK(db_account_ensure("other", other) == DB_OK);
    {
        int64_t again;
        CHECK(db_account_ensure("acme", &again) == DB_OK && again == *acme);
    }
    CHECK(*acme != *other);
    auth_hash_key("sk-test", 7, hash);
    auth_hash_key("sk-none", 7, missing);
    CHECK(db_key_insert(*acme, "key_1", hash, "inference.*", "label") == DB_OK);
    CHECK(db_key_insert(*acme, "key_2", hash, "", "") == DB_ERROR); /* hash is unique */
    CHECK(db_key_find(hash, &key) == DB_OK);
    CHECK_STR(key.account, "acme");
    CHECK_STR(key.scopes, "inference.*");
    CHECK(key.account_id == *acme);
    CHECK(db_key_find(missing, &key) == DB_NOT_FOUND);
    CHECK(db_key_revoke("key_1") == DB_OK);
    CHECK(db_key_revoke("key_1") == DB_NOT_FOUND);
    CHECK(db_key_find(hash, &key) == DB_NOT_FOUND);
}

static void test_files(int64_t acme, int64_t other)
{
    struct file_meta files[7], got;
    struct page page;
    int has_more;

    for (int i = 0; i < 5; i++) {
        make_file(&files[i], acme, "batch", 0);
        CHECK(db_file_insert(&files[i]) == DB_OK);
    }
    make_file(&files[5], other, "batch", 0);
    CHECK(db_file_insert(&files[5]) == DB_OK);
    make_file(&files[6], acme, "batch_output", 1500); /* expired at now=2000 */
    CHECK(db_file_insert(&files[6]) == DB_OK);

    CHECK(db_file_get(acme, files[0].id, 2000, &got) == DB_OK);
    CHECK_STR(got.id, files[0].id);
    CHECK(got.bytes == 10 && got.created_at == 1000 && got.expires_at == 0);
    CHECK(db_file_get(other, files[0].id, 2000, &got) == DB_NOT_FOUND);
    CHECK(db_file_get(acme, files[6].id, 2000, &got) == DB_NOT_FOUND);
    CHECK(db_file_get(acme, files[6].id, 1499, &got) == DB_OK);
    /* expires_at is the first second the file is gone: not live then, and gc's */
    CHECK(db_file_get(acme, files[6].id, 1500, &got) == DB_NOT_FOUND);
    {
        char expired[4][IDS_FILE_LEN + 1];
        CHECK(db_expired_ids(1499, expired, 4) == 0);
        CHECK(db_expired_ids(1500, expired, 4) == 1);
        CHECK_STR(expired[0], files[6].id);
    }

    /* Same created_at: order is creation order. */
    CHECK(list(acme, NULL, NULL, 100, 1, &page, &has_more) == DB_OK);
    CHECK(page.count == 5 && !has_more);
    for (int i = 0; i < 5 && page.count == 5; i++)
        CHECK_STR(page.ids[i], files[4 - i].id);
    CHECK(list(acme, NULL, NULL, 2, 0, &page, &has_more) == DB_OK);
    CHECK(page.count == 2 && has_more);
    CHECK_STR(page.ids[0], files[0].id);
    CHECK(list(acme, NULL, files[1].id, 2, 0, &page, &has_more) == DB_OK);
    CHECK(page.count == 2 && has_more);
    CHECK_STR(page.ids[0], files[2].id);
    CHECK(list(acme, NULL, files[3].id, 2, 0, &page, &has_more) == DB_OK);
    CHECK(page.count == 1 && !has_more);
    /* Exactly limit rows left: has_more is false. */
    CHECK(list(acme, NULL, files[2].id, 2, 0, &page, &has_more) == DB_OK);
    CHECK(page.count == 2 && !has_more);
    CHECK(list(acme, "batch_output", NULL, 10, 1, &page, &has_more) == DB_OK);
    CHECK(page.count == 0);
    CHECK(list(acme, "batch", NULL, 10, 1, &page, &has_more) == DB_OK);
    CHECK(page.count == 5);
    /* The purpose filter in both orders, and its keyset cursor in both. */
    CHECK(list(acme, "batch_output", NULL, 10, 0, &page, &has_more) == DB_OK);
    CHECK(page.count == 0);
    CHECK(list(acme, "batch", files[3].id, 10, 1, &page, &has_more) == DB_OK);
    CHECK(page.count == 3 && !has_more);
    CHECK_STR(page.ids[0], files[2].id);
    CHECK(list(acme, "batch", files[1].id, 10, 0, &page, &has_more) == DB_OK);
    CHECK(page.count == 3 && !has_more);
    CHECK_STR(page.ids[0], files[2].id);
    /* filesctl files list --account: that account's rows only */
    {
        struct each_count counted = {.account = other};
        CHECK(db_file_each(other, count_each, &counted) == DB_OK);
        CHECK(counted.rows == 1 && counted.foreign == 0);
    }

    /* A deleted cursor still pages on; another account's id is no cursor. */
    CHECK(db_file_delete(acme, files[2].id, 2000) == DB_OK);
    CHECK(db_file_delete(acme, files[2].id, 2000) == DB_NOT_FOUND);
    CHECK(db_file_delete(other, files[3].id, 2000) == DB_NOT_FOUND);
    CHECK(db_file_get(acme, files[2].id, 2000, &got) == DB_NOT_FOUND);
    CHECK(list(acme, NULL, files[2].id, 10, 0, &page, &has_more) == DB_OK);
    CHECK(page.count == 2);
    CHECK_STR(page.ids[0], files[3].id);
    CHECK(list(acme, NULL, files[5].id, 10, 0, &page, &has_more) == DB_NOT_FOUND);
    CHECK(list(acme, NULL, NULL, 100, 1, &page, &has_more) == DB_OK);
    CHECK(page.count == 4);
}

/* Inside read transactions a key found once is taken from the cache while no
 * connection has committed since; a revocation, by another connection or by
 * ours, is seen by the next transaction. */
static void test_key_cache(int64_t acme)
{
    unsigned char hash[AUTH_HASH_SIZE];
    struct key_record key;
    sqlite3_stmt *find = conn.statements[STMT_KEY_FIND];
    char path[256];
    sqlite3 *other;
    int runs;

    auth_hash_key("sk-cached", 9, hash);
    CHECK(db_key_insert(acme, "key_cached", hash, "inference.*", "") == DB_OK);
    snprintf(path, sizeof path, "%s/%s", data_dir, DB_FILENAME);
    CHECK(sqlite3_open(path, &other) == SQLITE_OK);

    CHECK(db_read_begin() == DB_OK);
    CHECK(db_key_find(hash, &key) == DB_OK && key.account_id == acme);
    db_read_end();
    runs = sqlite3_stmt_status(find, SQLITE_STMTSTATUS_RUN, 0);
    CHECK(db_read_begin() == DB_OK);
    CHECK(db_key_find(hash, &key) == DB_OK && key.account_id == acme);
    CHECK_STR(key.account, "acme");
    CHECK_STR(key.scopes, "inference.*");
    db_read_end();
    CHECK(sqlite3_stmt_status(find, SQLITE_STMTSTATUS_RUN, 0) == runs); /* from the cache */

    /* another connection commits something else: looked up again, still found */
    CHECK(sqlite3_exec(other, "INSERT INTO accounts (name, created_at) VALUES ('cache-other', 1)",
                       NULL, NULL, NULL) == SQLITE_OK);
    CHECK(db_read_begin() == DB_OK);
    CHECK(db_key_find(hash, &key) == DB_OK);
    db_read_end();
    CHECK(sqlite3_stmt_status(find, SQLITE_STMTSTATUS_RUN, 0) == runs + 1);

    /* revoked by another connection (filesctl) */
    CHECK(sqlite3_exec(other, "UPDATE api_keys SET revoked_at = 1 WHERE key_id = 'key_cached'",
                       NULL, NULL, NULL) == SQLITE_OK);
    CHECK(db_read_begin() == DB_OK);
    CHECK(db_key_find(hash, &key) == DB_NOT_FOUND);
    db_read_end();

    /* revoked by this connection: its own commits leave the data version */
    auth_hash_key("sk-cached-2", 11, hash);
    CHECK(db_key_insert(acme, "key_cached_2", hash, "inference.*", "") == DB_OK);
    CHECK(db_read_begin() == DB_OK);
    CHECK(db_key_find(hash, &key) == DB_OK);
    db_read_end();
    CHECK(db_key_revoke("key_cached_2") == DB_OK);
    CHECK(db_read_begin() == DB_OK);
    CHECK(db_key_find(hash, &key) == DB_NOT_FOUND);
    db_read_end();
    sqlite3_close(other);
}

/* The list queries use the partial indexes: no scan of the account's rows. */
static void test_query_plans(void)
{
    const enum statement lists[] = {STMT_LIST_DESC, STMT_LIST_ASC, STMT_LIST_PURPOSE_DESC,
                                    STMT_LIST_PURPOSE_ASC};

    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        char sql[1024];
        sqlite3_stmt *plan;
        int uses_index = 0;

        snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", statement_sql[lists[i]]);
        CHECK(sqlite3_prepare_v2(conn.db, sql, -1, &plan, NULL) == SQLITE_OK);
        while (sqlite3_step(plan) == SQLITE_ROW) {
            const char *detail = (const char *)sqlite3_column_text(plan, 3);
            if (strstr(detail, "USING INDEX files_live") && strstr(detail, "seq"))
                uses_index = 1;
            CHECKF(!strstr(detail, "TEMP B-TREE"), "%s: %s", statement_sql[lists[i]], detail);
        }
        sqlite3_finalize(plan);
        CHECKF(uses_index, "%s", statement_sql[lists[i]]);
    }
}

static void test_reopen(void)
{
    sqlite3_stmt *stmt;
    int version = -1;
    char mode[16] = "";

    db_close();
    CHECK(db_open(data_dir, 1000) == DB_OK); /* migrations are not applied twice */
    CHECK(sqlite3_prepare_v2(conn.db, "PRAGMA user_version", -1, &stmt, NULL) == SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    CHECK(version == DB_SCHEMA_VERSION);
    CHECK(sqlite3_prepare_v2(conn.db, "PRAGMA journal_mode", -1, &stmt, NULL) == SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        snprintf(mode, sizeof mode, "%s", sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    CHECK_STR(mode, "wal");
}

/* A write-ahead log without its database: the database was moved away while
 * in use. No new one is created beside the log; with neither, one is. */
static void test_no_database_beside_an_orphaned_log(void)
{
    char dir[] = "/tmp/files-api-test-db-wal.XXXXXX", path[256], command[300];
    FILE *f;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/%s-wal", dir, DB_FILENAME);
    CHECK((f = fopen(path, "w")) != NULL);
    if (f)
        fclose(f);
    db_close();
    CHECK(db_open(dir, 1000) == DB_ERROR);
    snprintf(path, sizeof path, "%s/%s", dir, DB_FILENAME);
    CHECK(access(path, F_OK) != 0); /* not created */
    snprintf(path, sizeof path, "%s/%s-wal", dir, DB_FILENAME);
    CHECK(unlink(path) == 0);
    CHECK(db_open(dir, 1000) == DB_OK);
    db_close();
    snprintf(path, sizeof path, "%s/%s", dir, DB_FILENAME);
    CHECK(access(path, F_OK) == 0);
    snprintf(command, sizeof command, "rm -rf %s", dir);
    CHECK(system(command) == 0);
    CHECK(db_open(data_dir, 1000) == DB_OK);
}

/* Processes starting at the same moment on a new data directory all open
 * it: the switch to WAL waits for the others instead of failing at once. */
static void test_processes_starting_together_on_a_new_database(void)
{
    int failed = 0;

    db_close();
    for (int round = 0; round < 30; round++) {
        char dir[] = "/tmp/files-api-test-db-start.XXXXXX", command[300];
        int gate[2];
        CHECK(mkdtemp(dir) != NULL && pipe(gate) == 0);
        for (int i = 0; i < 4; i++) {
            if (fork() == 0) {
                char go;
                close(gate[1]);
                _exit(read(gate[0], &go, 1) == 0 && db_open(dir, 5000) == DB_OK ? 0 : 1);
            }
        }
        close(gate[0]);
        usleep(2000);
        close(gate[1]); /* all four start now */
        for (int i = 0; i < 4; i++) {
            int status;
            if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                failed++;
        }
        snprintf(command, sizeof command, "rm -rf %s", dir);
        CHECK(system(command) == 0);
    }
    CHECKF(failed == 0, "%d of 120 opens failed", failed);
    CHECK(db_open(data_dir, 1000) == DB_OK);
}

/* Another connection holding the write lock: writes give DB_BUSY after the
 * timeout, reads still work (WAL). */
static void test_busy(int64_t acme)
{
    char path[256];
    sqlite3 *other;
    struct file_meta f, got;
    struct page page;
    int has_more;

    db_close();
    CHECK(db_open(data_dir, 50) == DB_OK);
    snprintf(path, sizeof path, "%s/%s", data_dir, DB_FILENAME);
    CHECK(sqlite3_open(path, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    make_file(&f, acme, "batch", 0);
    CHECK(db_file_insert(&f) == DB_BUSY);
    CHECK(list(acme, NULL, NULL, 10, 1, &page, &has_more) == DB_OK && page.count == 4);
    CHECK(db_file_get(acme, f.id, 2000, &got) == DB_NOT_FOUND);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    CHECK(db_file_insert(&f) == DB_OK);
}

/* db_write_lock (fsck's) keeps every other connection from writing until
 * db_write_unlock, and reading in between works. */
static void test_write_lock(void)
{
    char path[256];
    sqlite3 *other;

    snprintf(path, sizeof path, "%s/%s", data_dir, DB_FILENAME);
    CHECK(sqlite3_open(path, &other) == SQLITE_OK);
    CHECK(db_write_lock() == DB_OK);
    CHECK(db_file_is_live("file_AAAAAAAAAAAAAAAAAAAAAAAA") == 0);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_BUSY);
    db_write_unlock();
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(db_write_lock() == DB_BUSY); /* and the other way round */
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    CHECK(db_write_lock() == DB_OK);
    db_write_unlock();
    sqlite3_close(other);
}

/* An upload that read the clock before another one committed keeps the list
 * order (commit order) and created_at in step: it takes the later created_at,
 * and its expiry moves with it. */
static void test_created_at_follows_commit_order(int64_t acme)
{
    struct file_meta late, early, got;
    struct page page;
    int has_more;

    make_file(&late, acme, "batch", 0);
    late.created_at = 5000;
    CHECK(db_file_insert(&late) == DB_OK);
    make_file(&early, acme, "batch", 4990 + 3600);
    early.created_at = 4990;
    CHECK(db_file_insert(&early) == DB_OK);
    CHECK(early.created_at == 5000 && early.expires_at == 5000 + 3600);
    CHECK(db_file_get(acme, early.id, 5001, &got) == DB_OK);
    CHECK(got.created_at == 5000 && got.expires_at == 5000 + 3600);
    CHECK(list(acme, NULL, NULL, 2, 1, &page, &has_more) == DB_OK && page.count == 2);
    CHECK_STR(page.ids[0], early.id); /* newest first: the later commit */
    CHECK_STR(page.ids[1], late.id);
}

/* A database that cannot grow (a full disk; here its page limit) gives
 * DB_FULL, which the API answers 507, not DB_ERROR; the failed write is
 * rolled back and writes work again once there is room. */
static void test_full(int64_t acme)
{
    struct file_meta f, got;
    sqlite3_stmt *stmt;
    int status = DB_OK, inserted = 0;

    CHECK(sqlite3_prepare_v2(conn.db, "PRAGMA page_count", -1, &stmt, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(stmt) == SQLITE_ROW);
    int pages = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %d", pages);
    CHECK(sqlite3_exec(conn.db, sql, NULL, NULL, NULL) == SQLITE_OK);
    while (status == DB_OK && inserted < 10000) {
        make_file(&f, acme, "batch", 0);
        status = db_file_insert(&f);
        inserted += status == DB_OK;
    }
    CHECKF(status == DB_FULL, "status %d after %d inserts", status, inserted);
    CHECK(db_file_get(acme, f.id, 2000, &got) == DB_NOT_FOUND);
    CHECK(sqlite3_get_autocommit(conn.db)); /* no transaction left open */
    CHECK(sqlite3_exec(conn.db, "PRAGMA max_page_count = 1073741823", NULL, NULL, NULL) ==
          SQLITE_OK);
    CHECK(db_file_insert(&f) == DB_OK);
}

int main(void)
{
    int64_t acme = 0, other = 0;
    char command[256];

    if (!mkdtemp(data_dir))
        return 1;
    CHECK(db_open(data_dir, 1000) == DB_OK);
    test_keys(&acme, &other);
    test_files(acme, other);
    test_key_cache(acme);
    test_query_plans();
    test_reopen();
    test_no_database_beside_an_orphaned_log();
    test_processes_starting_together_on_a_new_database();
    test_busy(acme);
    test_write_lock();
    test_created_at_follows_commit_order(acme);
    test_full(acme);
    db_close();
    snprintf(command, sizeof command, "rm -rf %s", data_dir);
    CHECK(system(command) == 0);
    TEST_MAIN_END();
}
