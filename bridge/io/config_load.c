/* config_load.c - the configuration over the system's files and environment (files.h). */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "files.h"

static const char *env(const char *name)
{
    return getenv(name);
}

static int can(const char *path, bool write)
{
    return access(path, write ? W_OK | X_OK : R_OK) == 0 ? 0 : errno;
}

const struct t2m_config_io t2m_config_io_system = {
    .read_file = t2m_file_read,
    .read_secret = t2m_config_read_secret,
    .getenv = env,
    .access = can,
    .load_tz = t2m_tz_load,
};

struct t2m_config *t2m_config_load(const char *path, bool explicit_path, char *err, size_t errlen)
{
    return t2m_config_parse(&t2m_config_io_system, path, explicit_path, err, errlen);
}
