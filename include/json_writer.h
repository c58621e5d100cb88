/* Writes compact JSON text straight into a growing buffer: the responses a
 * worker sends most (file objects and list pages), without building a cJSON
 * tree first. A 20-file list page built and printed with cJSON took most of
 * the worker's CPU for the request. The text is byte for byte what
 * cJSON_PrintUnformatted gives for the same document (same escapes, no
 * spaces), so clients see one format whichever way a response was made;
 * only integers past int's range differ: exact here, cJSON's through %g.
 *
 * The writer owns its buffer. A document is one value; an object's members
 * are json_writer_key then one value, an array's elements values. Misuse
 * (mismatched nesting, a key where no key goes, a value where a key must
 * come) and out of memory make every later call a no-op and
 * json_writer_text return NULL. */
#ifndef JSON_WRITER_H
#define JSON_WRITER_H

#include <stddef.h>
#include <stdint.h>

/* Levels, the top one included: containers nest at most 63 deep. */
#define JSON_WRITER_MAX_DEPTH 64

struct json_writer {
    char *text;
    size_t len, cap;
    int failed; /* out of memory or misuse */
    int depth;
    int after_key;        /* the next value is a member's: no comma */
    uint64_t has_element; /* bit d: level d has an element (level 0: the document) */
    uint64_t in_object;   /* bit d: the container at depth d is an object */
};

void json_writer_init(struct json_writer *w);
/* The document (NUL-terminated; *len without the NUL), or NULL when it is
 * unfinished, after misuse or out of memory. Stays owned by the writer. */
const char *json_writer_text(struct json_writer *w, size_t *len);
void json_writer_free(struct json_writer *w);

void json_writer_begin_object(struct json_writer *w);
void json_writer_end_object(struct json_writer *w);
void json_writer_begin_array(struct json_writer *w);
void json_writer_end_array(struct json_writer *w);
/* Starts a member of the current object: its value comes next. */
void json_writer_key(struct json_writer *w, const char *name);

/* s: a NUL-terminated string, escaped per RFC 8259 §7 (bytes >= 0x80 are
 * copied as they are: the caller gives UTF-8). */
void json_writer_string(struct json_writer *w, const char *s);
void json_writer_int(struct json_writer *w, int64_t value);

/* A whole member of the current object, key and value, in one step: the same
 * text as json_writer_key then the value, written with half the bookkeeping
 * (a file object is eight of them). */
void json_writer_member_string(struct json_writer *w, const char *key, const char *value);
void json_writer_member_int(struct json_writer *w, const char *key, int64_t value);
void json_writer_member_null(struct json_writer *w, const char *key);
void json_writer_bool(struct json_writer *w, int value);
void json_writer_null(struct json_writer *w);

#endif
