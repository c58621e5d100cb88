/* filesctl: the administration tool. Keys and accounts are managed here, never over HTTP. */
#include "auth.h"
#include "config.h"
#include "db.h"
#include "ids.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_text[] =
    "usage: filesctl [--config PATH] [--data-dir DIR] COMMAND ...\n"
    "\n"
    "  keys create --account NAME --scopes LIST [--name LABEL]\n"
    "        create a key (and the account if new); prints only the key.\n"
    "        LIST is comma-separated; \"\" is an empty list (full access).\n"
    "  keys list      key ids, accounts, scopes and labels (never secrets)\n"
    "  keys revoke ID revoke a key by its id\n"
    "  config show    every configuration key with its value in force\n"
    "  config get KEY one value\n";

static int usage(int status)
{
    fputs(usage_text, status ? stderr : stdout);
    return status;
}

/* Returns the value following flag in argv, or NULL. */
static const char *option(int argc, char **argv, const char *flag)
{
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], flag))
            return argv[i + 1];
    return NULL;
}

static int keys_create(const struct config *config, int argc, char **argv)
{
    const char *account = option(argc, argv, "--account");
    const char *scopes = option(argc, argv, "--scopes");
    const char *label = option(argc, argv, "--name");
    char key[128], key_id[32];
    unsigned char hash[AUTH_HASH_SIZE];
    int64_t account_id;

    if (!account || !*account || !scopes) {
        fprintf(stderr, "filesctl: keys create needs --account NAME and --scopes LIST\n");
        return 2;
    }
    if (strlen(account) > 127 || strlen(scopes) > 1023 || (label && strlen(label) > 255)) {
        fprintf(stderr, "filesctl: account (127), scopes (1023) or name (255) too long\n");
        return 2;
    }
    if (auth_new_key(key, sizeof key, config->key_prefix) != 0 ||
        ids_make(key_id, sizeof key_id, IDS_KEY_ID_PREFIX, IDS_KEY_ID_RANDOM) != 0 ||
        auth_hash_key(key, strlen(key), hash) != 0) {
        fprintf(stderr, "filesctl: cannot generate a key\n");
        return 1;
    }
    if (db_account_ensure(account, &account_id) != DB_OK ||
        db_key_insert(account_id, key_id, hash, scopes, label ? label : "") != DB_OK) {
        fprintf(stderr, "filesctl: cannot store the key\n");
        return 1;
    }
    printf("%s\n", key);
    fprintf(stderr, "filesctl: created %s for account %s\n", key_id, account);
    return 0;
}

static int print_key(void *ctx, const struct key_record *key)
{
    (void)ctx;
    printf("%-20s  %-16s  %-8s  %-24s  %s\n", key->key_id, key->account,
           key->revoked_at ? "revoked" : "active", key->scopes[0] ? key->scopes : "(all: legacy)",
           key->name);
    return 0;
}

static int keys_list(void)
{
    printf("%-20s  %-16s  %-8s  %-24s  %s\n", "ID", "ACCOUNT", "STATE", "SCOPES", "NAME");
    return db_key_each(print_key, NULL) == DB_OK ? 0 : 1;
}

static int keys_revoke(const char *key_id)
{
    int status = db_key_revoke(key_id);

    if (status == DB_NOT_FOUND) {
        fprintf(stderr, "filesctl: no active key %s\n", key_id);
        return 1;
    }
    return status == DB_OK ? 0 : 1;
}

static int config_command(const struct config *config, int argc, char **argv)
{
    char value[CONFIG_MAX_LINE];

    if (!strcmp(argv[0], "get") && argc == 2) {
        if (config_get(config, argv[1], value, sizeof value) != 0) {
            fprintf(stderr, "filesctl: unknown config key %s\n", argv[1]);
            return 2;
        }
        printf("%s\n", value);
        return 0;
    }
    if (!strcmp(argv[0], "show") && argc == 1) {
        for (const char *const *key = config_keys; *key; key++) {
            config_get(config, *key, value, sizeof value);
            printf("%s = %s\n", *key, value);
        }
        return 0;
    }
    return usage(2);
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *data_dir = NULL;
    struct config config;
    char err[512];
    int i = 1, rc;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config_path = argv[++i];
        else if (!strcmp(argv[i], "--data-dir") && i + 1 < argc)
            data_dir = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage(0);
        else
            return usage(2);
    }
    if (i + 1 >= argc)
        return usage(2);
    if (config_resolve(&config, config_path, data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "filesctl: config: %s\n", err);
        return 1;
    }
    if (!strcmp(argv[i], "config"))
        return config_command(&config, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "keys"))
        return usage(2);
    if (store_init(config.data_dir, 3600) != 0 ||
        db_open(config.data_dir, config.db_busy_timeout_ms) != DB_OK) {
        fprintf(stderr, "filesctl: cannot open the data directory %s\n", config.data_dir);
        return 1;
    }
    argc -= i + 1;
    argv += i + 1;
    if (!strcmp(argv[0], "create"))
        rc = keys_create(&config, argc, argv);
    else if (!strcmp(argv[0], "list"))
        rc = keys_list();
    else if (!strcmp(argv[0], "revoke") && argc == 2)
        rc = keys_revoke(argv[1]);
    else
        rc = usage(2);
    db_close();
    return rc;
}
