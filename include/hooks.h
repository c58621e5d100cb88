/* Test-only fault injection. In builds with -DFILES_API_TEST_HOOKS (the
 * sanitizer build used by `make test`), a worker whose environment has
 * FILES_API_CRASH_AT=<point> dies with _exit(99) when it reaches that point,
 * as a crash or power cut would stop it there. Release builds compile every
 * hook to nothing. Points: upload_after_write, upload_after_fsync,
 * upload_after_link, upload_after_dir_fsync, upload_after_commit,
 * upload_before_response, delete_after_commit, delete_after_unlink.
 * FILES_API_PAUSE_AT=<point> makes it sleep 1 s there instead, so a test can
 * slip another request in. Points: content_after_lookup, upload_before_insert,
 * upload_after_insert, fsck_row_read, fsck_before_unlink, gc_after_listing
 * (filesctl's), db_open_missing (the database file not found, before its
 * write-ahead log is looked for). */
#ifndef HOOKS_H
#define HOOKS_H

#ifdef FILES_API_TEST_HOOKS
void hooks_crash_point(const char *point);
void hooks_pause_point(const char *point);
#else
#define hooks_crash_point(point) ((void)0)
#define hooks_pause_point(point) ((void)0)
#endif

#endif
