/* filesctl: the administration tool. Keys, accounts and operator file
 * operations are done here, never over HTTP. */
#include "filesctl.h"

#include "db.h"
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static int filesctl_config_show(const struct config *config, const struct filesctl_args *args);
static int filesctl_config_get(const struct config *config, const struct filesctl_args *args);
static int filesctl_config_unknown_env(const struct config *config,
                                       const struct filesctl_args *args);

#define DATA_DIR_COMMAND (FILESCTL_DATA_DIR | FILESCTL_ENV_WARNING)

static const struct filesctl_command commands[] = {
    {"keys", "create",
     "--account NAME --scopes LIST [--name LABEL]\n"
     "    Create a key (and the account if new); prints only the key.\n"
     "    LIST is comma-separated; '' is an empty list (legacy full access).",
     filesctl_keys_create, FILESCTL_NEW_DATA_DIR | FILESCTL_ENV_WARNING,
     filesctl_keys_create_check},
    {"keys", "list", "\n    Key ids, accounts, state, scopes and labels; never secrets.",
     filesctl_keys_list, DATA_DIR_COMMAND, NULL},
    {"keys", "revoke", "ID\n    Revoke the key with this id (key_...).", filesctl_keys_revoke,
     DATA_DIR_COMMAND, NULL},
    {"files", "import",
     "--account NAME --purpose PURPOSE [--filename NAME] PATH|-\n"
     "    Store a file exactly as an upload would (validated, durable) and\n"
     "    print its file object. PURPOSE: batch or batch_output. The filename:\n"
     "    --filename, else PATH's last component (stdin.jsonl for -).",
     filesctl_files_import, DATA_DIR_COMMAND | FILESCTL_INPUT, NULL},
    {"files", "list",
     "[--account NAME] [--purpose PURPOSE]\n    Files not deleted (expired ones too, until gc), "
     "oldest first.",
     filesctl_files_list, DATA_DIR_COMMAND, NULL},
    {"files", "show", "ID\n    One file's object (with its account and hash) as JSON.",
     filesctl_files_show, DATA_DIR_COMMAND, NULL},
    {"files", "rm", "ID\n    Delete a file of any account (as DELETE does).", filesctl_files_rm,
     DATA_DIR_COMMAND, NULL},
    {"fsck", NULL,
     "[--repair] [--grace SECONDS]\n"
     "    Check content against metadata and SQLite's integrity; exit 0 only when\n"
     "    clean. --repair removes strays older than the grace period (default 60 s\n"
     "    more than db_busy_timeout_ms: 65 s as configured by default) and\n"
     "    tombstones rows whose content is missing or damaged.",
     filesctl_fsck, DATA_DIR_COMMAND, NULL},
    {"gc", NULL,
     "[--every SECONDS]\n    Delete expired files: their content and their rows. With --every, "
     "again\n"
     "    each SECONDS until SIGTERM or SIGINT, which end a pass between two files\n"
     "    (serve.sh runs it so, as the systemd timer runs gc).",
     filesctl_gc, DATA_DIR_COMMAND, NULL},
    {"config", "show", "\n    Every configuration key with the value in force.",
     filesctl_config_show, FILESCTL_ENV_WARNING, NULL},
    {"config", "get", "KEY\n    One configuration value.", filesctl_config_get,
     FILESCTL_ENV_WARNING, NULL},
    {"config", "unknown-env",
     "\n    The names of the $FILES_API_* variables that are no setting, one a line\n"
     "    (the warning the other commands print; serve.sh keeps them from the\n"
     "    workers, which would each warn again).",
     filesctl_config_unknown_env, 0, NULL}, /* lists them instead */
};
#define COMMAND_COUNT (sizeof commands / sizeof *commands)

static void print_command(FILE *out, const struct filesctl_command *c)
{
    /* (a usage without arguments starts with its description's line) */
    fprintf(out, "  %s%s%s%s%s\n", c->group, c->name ? " " : "", c->name ? c->name : "",
            c->usage[0] == '\n' ? "" : " ", c->usage);
}

/* What a word of a usage line is: an --option, an argument WORD (such as
 * NAME or PATH|-), or neither. Brackets around it are not part of it. */
static int usage_word(const char *word, size_t len, char *out, size_t out_size)
{
    while (len && (*word == '[' || *word == ']'))
        word++, len--;
    while (len && (word[len - 1] == '[' || word[len - 1] == ']'))
        len--;
    if (len == 0 || len >= out_size)
        return 0;
    memcpy(out, word, len);
    out[len] = '\0';
    return out[0] == '-' ? '-' : 'W';
}

static int is_help(const char *arg)
{
    return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

#define PARSE_HELP 3

/* Parses the arguments against the command's usage line: an --option followed
 * there by a WORD takes a value, any other --option is a flag, and the other
 * WORDs are positional, each required, anywhere among the options. An option
 * given twice, or whose value would be another option, is an error. Done
 * before the data directory is opened, so a mistyped or misplaced option
 * creates nothing. Returns 0, PARSE_HELP for --help or -h where an option may
 * stand, or 2 after saying what is wrong. */
static int parse_args(const struct filesctl_command *c, int argc, char **argv,
                      struct filesctl_args *args)
{
    char words[FILESCTL_MAX_ARGS][64];
    int kinds[FILESCTL_MAX_ARGS], count = 0, positional = 0;
    unsigned seen = 0; /* bit w: option words[w] was given */
    const char *p = c->usage, *end = strchr(c->usage, '\n');

    memset(args, 0, sizeof *args);
    if (!end)
        end = p + strlen(p);
    while (p < end && count < FILESCTL_MAX_ARGS) {
        size_t len = strcspn(p, " \n");
        if (len > (size_t)(end - p))
            len = (size_t)(end - p);
        if ((kinds[count] = usage_word(p, len, words[count], sizeof words[count])) != 0)
            count++;
        p += len + (p + len < end);
    }
    const char *first_positional = NULL;
    for (int w = 0; w < count; w++)
        if (kinds[w] == 'W' && !(w > 0 && kinds[w - 1] == '-') && positional++ == 0)
            first_positional = words[w];
    int options_end = argc; /* "--": what follows is positional, e.g. a file named "-x" */
    for (int i = 0; i < argc; i++) {
        int w = 0;
        if (i < options_end && !strcmp(argv[i], "--")) {
            options_end = i;
            continue;
        }
        if (i > options_end || argv[i][0] != '-' || !argv[i][1]) { /* "-": standard input */
            if (args->positionals >= positional) {
                fprintf(stderr, "filesctl: unexpected argument %s\n", argv[i]);
                return 2;
            }
            args->positional[args->positionals++] = argv[i];
            continue;
        }
        if (is_help(argv[i]))
            return PARSE_HELP;
        while (w < count && !(kinds[w] == '-' && !strcmp(words[w], argv[i])))
            w++;
        if (w == count) {
            fprintf(stderr, "filesctl: unknown option %s (see filesctl %s%s%s --help)\n", argv[i],
                    c->group, c->name ? " " : "", c->name ? c->name : "");
            return 2;
        }
        if (seen & 1u << w) { /* which one was meant is a guess */
            fprintf(stderr, "filesctl: %s given twice\n", argv[i]);
            return 2;
        }
        seen |= 1u << w;
        args->name[args->options] = argv[i]; /* (words dies with this call) */
        if (w + 1 < count && kinds[w + 1] == 'W') {
            int next = i + 1;
            int is_option = next < argc && (is_help(argv[next]) || !strcmp(argv[next], "--"));
            for (int o = 0; next < argc && o < count; o++)
                is_option |= kinds[o] == '-' && !strcmp(words[o], argv[next]);
            if (next == argc || is_option) {
                fprintf(stderr, "filesctl: %s needs a value\n", argv[i]);
                return 2;
            }
            args->value[args->options] = argv[++i];
        }
        args->options++;
    }
    if (args->positionals < positional) {
        fprintf(stderr, "filesctl: %s%s%s needs %s\n", c->group, c->name ? " " : "",
                c->name ? c->name : "", first_positional);
        return 2;
    }
    return 0;
}

/* A command's exit status, made a failure if its output did not reach its
 * file (a full disk, a closed pipe). */
static int output_written(int rc)
{
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        perror("filesctl: writing the output");
        return 1;
    }
    return rc;
}

static int usage(int status)
{
    FILE *out = status ? stderr : stdout;

    fprintf(out, "usage: filesctl [--config PATH] [--data-dir DIR] COMMAND [ARGS]\n"
                 "       filesctl COMMAND --help\n\ncommands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        print_command(out, &commands[i]);
    return status;
}

static int option_index(const struct filesctl_args *args, const char *name)
{
    for (int i = 0; i < args->options; i++)
        if (!strcmp(args->name[i], name))
            return i;
    return -1;
}

const char *filesctl_option(const struct filesctl_args *args, const char *name)
{
    int i = option_index(args, name);

    return i < 0 ? NULL : args->value[i];
}

int filesctl_flag(const struct filesctl_args *args, const char *name)
{
    return option_index(args, name) >= 0;
}

int filesctl_seconds_option(const struct filesctl_args *args, const char *name, long *out)
{
    const char *text = filesctl_option(args, name);
    char *end;
    long value;

    if (!text)
        return 0;
    errno = 0;
    value = strtol(text, &end, 10);
    /* digits only: strtol would also take leading blanks and a sign */
    if (!isdigit((unsigned char)text[0]) || *end || errno == ERANGE) {
        fprintf(stderr, "filesctl: %s takes a number of seconds\n", name);
        return -1;
    }
    *out = value;
    return 0;
}

int filesctl_db_failure(const char *what, int status)
{
    if (status == DB_BUSY)
        fprintf(stderr,
                "filesctl: %s: the database is busy (another process holds its write "
                "lock); try again\n",
                what);
    else if (status == DB_FULL)
        fprintf(stderr, "filesctl: %s: no space left on the disk\n", what);
    else
        fprintf(stderr, "filesctl: %s: database error\n", what);
    return 1;
}

void filesctl_progress(const char *what, uint64_t done, uint64_t total)
{
    static struct timespec last;
    struct timespec now;

    if (!isatty(STDERR_FILENO))
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (done != total &&
        (now.tv_sec - last.tv_sec) * 1000000000L + (now.tv_nsec - last.tv_nsec) < 200000000L)
        return;
    last = now;
    if (total)
        fprintf(stderr, "\r%s: %llu/%llu%s", what, (unsigned long long)done,
                (unsigned long long)total, done == total ? "\n" : "");
    else
        fprintf(stderr, "\r%s: %llu", what, (unsigned long long)done);
}

static int filesctl_config_show(const struct config *config, const struct filesctl_args *args)
{
    char value[CONFIG_MAX_LINE];

    (void)args;
    for (const char *const *key = config_keys; *key; key++) {
        config_get(config, *key, value, sizeof value);
        printf("%s = %s\n", *key, value);
    }
    return 0;
}

static int filesctl_config_get(const struct config *config, const struct filesctl_args *args)
{
    char value[CONFIG_MAX_LINE];

    if (config_get(config, args->positional[0], value, sizeof value) != 0) {
        fprintf(stderr, "filesctl: unknown config key %s\n", args->positional[0]);
        return 2;
    }
    printf("%s\n", value);
    return 0;
}

static void print_name(const char *name, size_t len, void *ctx)
{
    (void)ctx;
    printf("%.*s\n", (int)len, name);
}

static int filesctl_config_unknown_env(const struct config *config,
                                       const struct filesctl_args *args)
{
    (void)config;
    (void)args;
    config_each_unknown_environment(print_name, NULL);
    return 0;
}

/* The command argv names ("keys create", "fsck"); *used: how many words. */
static const struct filesctl_command *find_command(int argc, char **argv, int *used)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        const struct filesctl_command *c = &commands[i];
        if (strcmp(argv[0], c->group) != 0)
            continue;
        if (!c->name) {
            *used = 1;
            return c;
        }
        if (argc > 1 && !strcmp(argv[1], c->name)) {
            *used = 2;
            return c;
        }
    }
    return NULL;
}

/* Says what is wrong with a command line that names no command: exit 2, or 0
 * with the group's commands for "GROUP --help". */
static int no_command(int argc, char **argv)
{
    int group = 0;

    for (size_t i = 0; i < COMMAND_COUNT; i++)
        group |= argc > 0 && !strcmp(argv[0], commands[i].group);
    if (argc == 0 || !group) {
        if (argc > 0)
            fprintf(stderr, "filesctl: unknown command %s\n", argv[0]);
        return usage(2);
    }
    if (argc > 1 && is_help(argv[1])) {
        printf("usage: filesctl [--config PATH] [--data-dir DIR] COMMAND [ARGS]\n");
        for (size_t i = 0; i < COMMAND_COUNT; i++)
            if (!strcmp(argv[0], commands[i].group))
                print_command(stdout, &commands[i]);
        return output_written(0);
    }
    if (argc > 1)
        fprintf(stderr, "filesctl: unknown command %s %s; %s takes:\n", argv[0], argv[1], argv[0]);
    else
        fprintf(stderr, "filesctl: %s needs a command:\n", argv[0]);
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (!strcmp(argv[0], commands[i].group))
            print_command(stderr, &commands[i]);
    return 2;
}

/* Takes the user's identity. The kernel forgets a parent-death signal when
 * the identity changes: the one the caller was started with (serve.sh runs
 * gc --every with one, so that it dies with serve.sh) is set again. */
static int become(uid_t uid, gid_t gid)
{
    int death_signal = 0;
    pid_t parent = getppid();

    prctl(PR_GET_PDEATHSIG, &death_signal);
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
        return -1;
    if (death_signal && prctl(PR_SET_PDEATHSIG, death_signal) == 0 && getppid() != parent)
        raise(death_signal); /* the parent died in between */
    return 0;
}

/* The data directory must be one already (its database exists), except for
 * keys create, which makes the first key of a new one: a mistyped --data-dir
 * is an error, not a new empty store. As root, filesctl works as the
 * service's user, so that what it creates stays the service's. */
static int enter_data_dir(const struct filesctl_command *command, const struct config *config)
{
    const char *data_dir = config->data_dir;
    char db_path[4096];
    struct stat st;
    int creates = (command->needs & FILESCTL_NEW_DATA_DIR) != 0;
    int db_fd, found;

    snprintf(db_path, sizeof db_path, "%s/%s", data_dir, DB_FILENAME);
    /* One look at files.db, through one descriptor: root takes the service's
     * identity from its owner, and a link there (the service's user can make
     * one, even between two looks) would have root open whatever it names. */
    db_fd = open(db_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (db_fd < 0 && errno == ELOOP) {
        fprintf(stderr, "filesctl: %s is a symbolic link: the service's database is a plain file\n",
                db_path);
        return 1;
    }
    if (db_fd < 0 && (errno != ENOENT || !creates)) {
        if (errno == ENOENT)
            fprintf(stderr,
                    "filesctl: %s is not a data directory (it has no files.db); give "
                    "the service's --data-dir\n",
                    data_dir);
        else
            fprintf(stderr, "filesctl: %s: %s\n", db_path, strerror(errno));
        return 1;
    }
    found = db_fd >= 0 ? fstat(db_fd, &st) == 0 : stat(data_dir, &st) == 0;
    if (db_fd >= 0)
        close(db_fd);
    /* The service's identity is its database's owner (the directory may be
     * someone else's: serve.sh leaves one holding other things alone). */
    if (geteuid() == 0 && found && st.st_uid != 0 && become(st.st_uid, st.st_gid) != 0) {
        fprintf(stderr, "filesctl: cannot become the owner of %s (uid %u): %s\n", data_dir,
                (unsigned)st.st_uid, strerror(errno));
        return 1;
    }
    /* The database before the store's folders: one refused (its write-ahead
     * log there without it) leaves nothing made. */
    if (creates && db_fd < 0 && mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "filesctl: cannot create the data directory %s: %s\n", data_dir,
                strerror(errno));
        return 1;
    }
    if (db_open(data_dir, config->db_busy_timeout_ms) != DB_OK) {
        fprintf(stderr, "filesctl: cannot open the data directory %s\n", data_dir);
        return 1;
    }
    /* No sweep of stale temp files: fsck reports them, --repair removes them. */
    if (store_init(data_dir, -1) != 0) {
        fprintf(stderr, "filesctl: cannot use the data directory %s: %s\n", data_dir,
                errno == EXDEV ? "its tmp/ and files/ are on different mounts" : strerror(errno));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *data_dir = NULL;
    const struct filesctl_command *command;
    struct filesctl_args args;
    struct config config;
    char err[512];
    int i = 1, used = 0, rc;

    for (; i < argc && argv[i][0] == '-'; i++) {
        const char **value = !strcmp(argv[i], "--config")     ? &config_path
                             : !strcmp(argv[i], "--data-dir") ? &data_dir
                                                              : NULL;
        if (is_help(argv[i]))
            return output_written(usage(0));
        if (!value) {
            fprintf(stderr, "filesctl: unknown option %s\n", argv[i]);
            return usage(2);
        }
        if (*value) {
            fprintf(stderr, "filesctl: %s given twice\n", argv[i]);
            return 2;
        }
        if (i + 1 == argc || !argv[i + 1][0] || is_help(argv[i + 1]) ||
            !strcmp(argv[i + 1], "--config") || !strcmp(argv[i + 1], "--data-dir")) {
            fprintf(stderr, "filesctl: %s needs a value\n", argv[i]);
            return 2;
        }
        *value = argv[++i];
    }
    if (i >= argc || !(command = find_command(argc - i, argv + i, &used)))
        return no_command(argc - i, argv + i);
    argc -= i + used;
    argv += i + used;
    if ((rc = parse_args(command, argc, argv, &args)) == PARSE_HELP) {
        printf("usage: filesctl [--config PATH] [--data-dir DIR] COMMAND [ARGS]\n");
        print_command(stdout, command);
        return output_written(0);
    }
    if (rc == 0 && command->check) /* e.g. a refused key makes no store */
        rc = command->check(&args);
    if (rc != 0)
        return rc;
    umask(0077); /* whatever filesctl creates in the data directory is private too */
    if (config_resolve(&config, config_path, data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "filesctl: config: %s\n", err);
        return 1;
    }
    if (command->needs & FILESCTL_ENV_WARNING)
        config_warn_unknown_environment(stderr, "filesctl");
    if (!(command->needs & (FILESCTL_DATA_DIR | FILESCTL_NEW_DATA_DIR)))
        return output_written(command->run(&config, &args));
    /* An input file is opened as the caller, before filesctl may become the
     * data directory's owner: root may import a file only root can read. */
    args.input = -1;
    if (command->needs & FILESCTL_INPUT) {
        const char *path = args.positional[0];
        args.input = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
        if (args.input < 0) {
            fprintf(stderr, "filesctl: %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    if ((rc = enter_data_dir(command, &config)) != 0)
        return rc;
    rc = command->run(&config, &args);
    db_close();
    return output_written(rc);
}
