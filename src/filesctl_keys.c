/* filesctl keys create|list|revoke */
#include "filesctl.h"

#include "auth.h"
#include "db.h"
#include "ids.h"
#include "multipart.h"

#include <stdio.h>
#include <string.h>

/* Returns 1 if a scope list other than "" has an empty item (",", "a,,b", a
 * trailing ','): the worker would read "," as the empty list, which is full
 * access, so a typo must not create such a key. */
static int scopes_have_empty_item(const char *scopes)
{
    int item_has_text = 0;

    if (!*scopes)
        return 0; /* "": a legacy full-access key, asked for explicitly */
    for (;; scopes++) {
        if (*scopes == ',' || *scopes == '\0') {
            if (!item_has_text)
                return 1;
            if (*scopes == '\0')
                return 0;
            item_has_text = 0;
        } else if (*scopes != ' ' && *scopes != '\t') {
            item_has_text = 1;
        }
    }
}

/* An account name goes into the access log as account=NAME: one token of
 * letters, digits and . _ @ + : -, so that no name can split or forge a line. */
static int account_name_ok(const char *name)
{
    return strspn(name, IDS_BASE62 "._@+:-") == strlen(name);
}

/* Scopes are words of letters, digits and . _ * : -, separated by commas
 * with spaces around them or not: nothing that could break a keys list line. */
static int scopes_well_formed(const char *scopes)
{
    const char *p = scopes;

    while (*p) {
        p += strspn(p, " ");
        p += strspn(p, IDS_BASE62 "._*:-");
        p += strspn(p, " ");
        if (*p && *p != ',')
            return 0;
        p += *p == ',';
    }
    return 1;
}

int filesctl_keys_create_check(const struct filesctl_args *args)
{
    const char *account = filesctl_option(args, "--account");
    const char *scopes = filesctl_option(args, "--scopes");
    const char *label = filesctl_option(args, "--name");
    const struct key_record *key = NULL; /* for its fields' sizes */
    const char *why;

    if (!account || !*account || !scopes) {
        fprintf(stderr, "filesctl: keys create needs --account NAME and --scopes LIST\n");
        return 2;
    }
    if (strlen(account) >= sizeof key->account || strlen(scopes) >= sizeof key->scopes ||
        (label && strlen(label) >= sizeof key->name)) {
        fprintf(stderr, "filesctl: account (%zu), scopes (%zu) or name (%zu) too long\n",
                sizeof key->account - 1, sizeof key->scopes - 1, sizeof key->name - 1);
        return 2;
    }
    if (!account_name_ok(account)) {
        fprintf(stderr, "filesctl: an account name is letters, digits and . _ @ + : - only\n");
        return 2;
    }
    if (!scopes_well_formed(scopes)) {
        fprintf(stderr, "filesctl: a scope is letters, digits and . _ * : - only "
                        "(comma-separated)\n");
        return 2;
    }
    /* Shown in keys list: the rules of a filename (UTF-8, no C0 or C1 control). */
    if (label && *label && (why = multipart_name_problem(label, strlen(label))) != NULL) {
        fprintf(stderr, "filesctl: bad --name: %s\n", why);
        return 2;
    }
    if (scopes_have_empty_item(scopes)) {
        fprintf(stderr, "filesctl: --scopes has an empty item; list scopes such as inference.* "
                        "(comma-separated), or give '' for a full-access legacy key\n");
        return 2;
    }
    return 0;
}

/* Its arguments passed filesctl_keys_create_check. */
int filesctl_keys_create(const struct config *config, const struct filesctl_args *args)
{
    const char *account = filesctl_option(args, "--account");
    const char *scopes = filesctl_option(args, "--scopes");
    const char *label = filesctl_option(args, "--name");
    char key[128], key_id[32];
    unsigned char hash[AUTH_HASH_SIZE];
    int64_t account_id;
    int status;

    if (auth_new_key(key, sizeof key, config->key_prefix) != 0 ||
        ids_make(key_id, sizeof key_id, IDS_KEY_ID_PREFIX, IDS_KEY_ID_RANDOM) != 0 ||
        auth_hash_key(key, strlen(key), hash) != 0) {
        fprintf(stderr, "filesctl: cannot generate a key\n");
        return 1;
    }
    if ((status = db_account_ensure(account, &account_id)) != DB_OK ||
        (status = db_key_insert(account_id, key_id, hash, scopes, label ? label : "")) != DB_OK)
        return filesctl_db_failure("storing the key", status);
    /* A key nobody could read must not stay usable: revoked if not written. */
    if (printf("%s\n", key) < 0 || fflush(stdout) != 0) {
        perror("filesctl: writing the key");
        if (db_key_revoke(key_id) == DB_OK)
            fprintf(stderr, "filesctl: %s was revoked\n", key_id);
        return 1;
    }
    fprintf(stderr, "filesctl: created %s for account %s\n", key_id, account);
    return 0;
}

/* The widths of the columns that vary, so that each lines up however long
 * an account's name or a key's scopes are. */
struct key_columns {
    int account;
    int scopes;
};

static const char *scopes_shown(const struct key_record *key)
{
    return key->scopes[0] ? key->scopes : "(all: legacy)";
}

static int measure_key(void *ctx, const struct key_record *key)
{
    struct key_columns *width = ctx;
    int account = (int)strlen(key->account), scopes = (int)strlen(scopes_shown(key));

    width->account = account > width->account ? account : width->account;
    width->scopes = scopes > width->scopes ? scopes : width->scopes;
    return 0;
}

static int print_key(void *ctx, const struct key_record *key)
{
    const struct key_columns *width = ctx;

    printf("%-20s  %-*s  %-8s  %-*s  %s\n", key->key_id, width->account, key->account,
           key->revoked_at ? "revoked" : "active", width->scopes, scopes_shown(key), key->name);
    return 0;
}

int filesctl_keys_list(const struct config *config, const struct filesctl_args *args)
{
    struct key_columns width = {.account = 16, .scopes = 24};

    (void)config;
    (void)args;
    if (db_key_each(measure_key, &width) != DB_OK)
        return 1;
    printf("%-20s  %-*s  %-8s  %-*s  %s\n", "ID", width.account, "ACCOUNT", "STATE", width.scopes,
           "SCOPES", "NAME");
    return db_key_each(print_key, &width) == DB_OK ? 0 : 1;
}

int filesctl_keys_revoke(const struct config *config, const struct filesctl_args *args)
{
    const char *key_id = args->positional[0];
    int status;

    (void)config;
    status = db_key_revoke(key_id);
    if (status == DB_NOT_FOUND) {
        fprintf(stderr, "filesctl: no active key %s\n", key_id);
        return 1;
    }
    if (status != DB_OK)
        return filesctl_db_failure(key_id, status);
    fprintf(stderr, "filesctl: revoked %s\n", key_id);
    return 0;
}
