/* files.h - the files and the environment the configuration reads: core/ opens none itself, it
 * is handed a struct t2m_config_io (config.h) and this module supplies the system's. */
#ifndef T2M_FILES_H
#define T2M_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "units.h"

/* Reads a whole regular file into *text (NUL-terminated, *len bytes). Non-blocking: a FIFO named
 * as the file must not hang the start. 0; 1 when it does not exist (err says so); -1 with err
 * ("PATH: cannot open: ...", "PATH: not a regular file", "PATH: larger than MAX bytes"). */
int t2m_file_read(const char *path, size_t max, char **text, size_t *len, char *err, size_t errlen);

/* Reads a secret file (first line, trailing whitespace stripped) into a new string. NULL and
 * err filled on failure. Warns (once per call) when the file is readable by group or others. */
char *t2m_config_read_secret(const char *path, char *err, size_t errlen);

/* Loads an IANA zone ("UTC", "America/New_York") from the system tz database
 * (/usr/share/zoneinfo). NULL when the name is unknown or unsafe. Free with t2m_tz_free. */
struct t2m_tz *t2m_tz_load(const char *name);

/* The system's files and environment, for t2m_config_parse. */
extern const struct t2m_config_io t2m_config_io_system;

/* t2m_config_parse over the system's files and environment (see there). */
struct t2m_config *t2m_config_load(const char *path, bool explicit_path, char *err, size_t errlen);

#endif
