/* files.c - the system's files and environment for the configuration (files.h). */
#include "files.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define MOD "config"
#define MAX_SECRET 65536 /* first line of a secret file */
#define MAX_TZIF (1u << 20)
#define TZ_DIR "/usr/share/zoneinfo/"

int t2m_file_read(const char *path, size_t max, char **text, size_t *len, char *err, size_t errlen)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return e == ENOENT ? 1 : -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    if ((unsigned long long)st.st_size > max) {
        close(fd);
        snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
        return -1;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            close(fd);
            free(buf);
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 0;
}

char *t2m_config_read_secret(const char *path, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (!path || !*path) {
        snprintf(err, errlen, "no secret file given");
        return NULL;
    }
    /* Non-blocking: opening a FIFO for reading would wait for a writer, and the loop with it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s is not a regular file", path);
        return NULL;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        T2M_WARN(MOD, "%s is readable by group or others: chmod 600 it", path);

    char *buf = malloc(MAX_SECRET + 1);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "out of memory reading %s", path);
        return NULL;
    }
    size_t len = 0;
    bool io_error = false, eol = false;
    while (len < MAX_SECRET && !eol) {
        ssize_t r = read(fd, buf + len, MAX_SECRET - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            io_error = true;
            break;
        }
        if (r == 0) break;
        eol = memchr(buf + len, '\n', (size_t)r) != NULL;
        len += (size_t)r;
    }
    int saved = errno;
    close(fd);
    char *result = NULL;
    if (io_error) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(saved));
    } else {
        char *nl = memchr(buf, '\n', len);
        if (!nl && len == MAX_SECRET) {
            snprintf(err, errlen, "%s: first line longer than %d bytes", path, MAX_SECRET);
        } else {
            size_t n = nl ? (size_t)(nl - buf) : len;
            while (n > 0 && isspace((unsigned char)buf[n - 1]))
                n--;
            buf[n] = '\0';
            if (n == 0)
                snprintf(err, errlen, "%s is empty", path);
            else if (strlen(buf) != n)
                snprintf(err, errlen, "%s holds a NUL byte: not a text secret", path);
            else if (!(result = strdup(buf)))
                snprintf(err, errlen, "out of memory reading %s", path);
        }
    }
    explicit_bzero(buf, MAX_SECRET + 1);
    free(buf);
    return result;
}

struct t2m_tz *t2m_tz_load(const char *name)
{
    if (!name || !t2m_tz_name_ok(name)) return NULL;
    if (strcmp(name, "UTC") == 0) return t2m_tz_parse(name, NULL, 0);
    char path[sizeof(TZ_DIR) + 256], err[64];
    int w = snprintf(path, sizeof(path), "%s%s", TZ_DIR, name);
    if (w < 0 || (size_t)w >= sizeof(path)) return NULL;
    char *buf;
    size_t len;
    if (t2m_file_read(path, MAX_TZIF, &buf, &len, err, sizeof(err)) != 0) return NULL;
    struct t2m_tz *tz = t2m_tz_parse(name, (const unsigned char *)buf, len);
    free(buf);
    return tz;
}
