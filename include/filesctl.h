/* filesctl: the administration tool's commands (src/filesctl*.c). Each command
 * takes its arguments after its name and returns the process exit status:
 * 0 success, 1 failure, 2 usage error. Errors go to stderr. */
#ifndef FILESCTL_H
#define FILESCTL_H

#include <stdint.h>

#include "config.h"

#define FILESCTL_MAX_ARGS 16

/* A command's arguments, parsed against its usage line (main does it). */
struct filesctl_args {
    int options;
    const char *name[FILESCTL_MAX_ARGS];  /* "--account", ... */
    const char *value[FILESCTL_MAX_ARGS]; /* its value; NULL for a flag */
    int positionals;
    const char *positional[FILESCTL_MAX_ARGS];
    int input; /* the PATH|- argument, opened as the caller; else -1 */
};

/* What a command needs from main before it runs (filesctl_command.needs). */
enum filesctl_needs {
    FILESCTL_DATA_DIR = 1,     /* an existing data directory, opened */
    FILESCTL_NEW_DATA_DIR = 2, /* one, made if it is not there yet */
    FILESCTL_INPUT = 4,        /* its PATH|- argument opened (args.input) */
    FILESCTL_ENV_WARNING = 8,  /* the unknown $FILES_API_* variables said */
};

struct filesctl_command {
    const char *group; /* "keys", "files", ... */
    const char *name;  /* "create", ...; NULL for a group that is the command */
    const char *usage; /* arguments and one line of description */
    int (*run)(const struct config *config, const struct filesctl_args *args);
    int needs; /* enum filesctl_needs */
    /* Checks the arguments' values before anything is opened or made: 0, or
     * 2 having said what is wrong. NULL: nothing to check. */
    int (*check)(const struct filesctl_args *args);
};

/* The value given to option name, or NULL. */
const char *filesctl_option(const struct filesctl_args *args, const char *name);

/* 1 if the flag name was given. */
int filesctl_flag(const struct filesctl_args *args, const char *name);

/* Reads option name's number of seconds into *out (left as it is if the
 * option was not given). Returns 0, or -1 having said what is wrong. */
int filesctl_seconds_option(const struct filesctl_args *args, const char *name, long *out);

/* Says on stderr why a database call failed (what: the command's object);
 * returns 1, the exit status. */
int filesctl_db_failure(const char *what, int status);

/* Shows "what: done/total" on stderr, only when stderr is a terminal, at most a few times a second.
 */
void filesctl_progress(const char *what, uint64_t done, uint64_t total);

int filesctl_keys_create(const struct config *config, const struct filesctl_args *args);
int filesctl_keys_create_check(const struct filesctl_args *args);
int filesctl_keys_list(const struct config *config, const struct filesctl_args *args);
int filesctl_keys_revoke(const struct config *config, const struct filesctl_args *args);
int filesctl_files_import(const struct config *config, const struct filesctl_args *args);
int filesctl_files_list(const struct config *config, const struct filesctl_args *args);
int filesctl_files_show(const struct config *config, const struct filesctl_args *args);
int filesctl_files_rm(const struct config *config, const struct filesctl_args *args);
int filesctl_fsck(const struct config *config, const struct filesctl_args *args);
int filesctl_gc(const struct config *config, const struct filesctl_args *args);

#endif
