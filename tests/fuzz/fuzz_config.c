/* fuzz_config.c - libFuzzer target: the input as a configuration file through t2m_config_load
 * (libconfig parse, the wide-integer scan, validation), then t2m_config_text of whatever loaded.
 * The file lives in a private temporary directory, so relative @include paths resolve there. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "files.h"
#include "fuzz_common.h"
#include "log.h"
#include "log_stderr.h"

extern char **environ;

static char conf_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The environment overrides the file: clear every T2M_* so the input alone decides. */
static void clear_t2m_env(void)
{
    for (size_t i = 0; environ[i];) {
        if (strncmp(environ[i], "T2M_", 4) == 0) {
            char name[128];
            size_t n = strcspn(environ[i], "=");
            snprintf(name, sizeof name, "%.*s", (int)n, environ[i]);
            unsetenv(name);
            i = 0;
        } else {
            i++;
        }
    }
}

static void remove_dir(void)
{
    unlink(conf_path);
    char *slash = strrchr(conf_path, '/');
    if (slash) *slash = '\0';
    rmdir(conf_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    clear_t2m_env();
    /* validation warnings (a world-readable secret file, ...) are not findings: keep quiet */
    t2m_log_init(T2M_LOG_ERROR, false);
    char dir[] = "/tmp/t2m-fuzz-config-XXXXXX";
    FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp failed");
    snprintf(conf_path, sizeof conf_path, "%s/fuzz.conf", dir);
    atexit(remove_dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0, "cannot write %s", conf_path);
    FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size, "short write");
    close(fd);

    char err[512];
    memset(err, 'x', sizeof err);
    struct t2m_config *cfg = t2m_config_load(conf_path, true, err, sizeof err);
    if (!cfg) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "error message not terminated");
        FUZZ_CHECK(err[0] != '\0', "failure without a message");
        return 0;
    }
    FUZZ_CHECK(cfg->n_instances > 0 && cfg->instances[0].id && cfg->mqtt.url,
               "loaded a config without an instance or MQTT url");
    char *text = t2m_config_text(cfg);
    FUZZ_CHECK(text != NULL, "a loaded configuration that does not print");
    free(text);
    t2m_config_free(cfg);
    return 0;
}
