/* test_refresh.c - the pure parts of the RefreshToken call: request body, reply parsing, the
 * atomic write of the rotated refresh token. */
#include <json-c/json.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "refresh.h"
#include "t2m_test.h"

static void test_request_body(void)
{
    char *s = t2m_refresh_render_request("acc.jwt", "ref-1");
    T2M_ASSERT_STR(s, "{\"AccessToken\":\"acc.jwt\",\"RefreshToken\":\"ref-1\"}");
    free(s);
    /* quotes, backslashes and slashes survive as JSON */
    s = t2m_refresh_render_request("a\"b\\c/d", "");
    struct json_object *o = json_tokener_parse(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    struct json_object *v;
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "AccessToken", &v));
    T2M_ASSERT_STR(json_object_get_string(v), "a\"b\\c/d");
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "RefreshToken", &v));
    T2M_ASSERT_STR(json_object_get_string(v), "");
    json_object_put(o);
    free(s);
}

static int parse(const char *body, struct t2m_refresh_result *r, char *err)
{
    return t2m_refresh_parse_reply(body, strlen(body), r, err, 256);
}

static void test_reply_ok(void)
{
    struct t2m_refresh_result r;
    char err[256];
    const char *body = "{\"Result\":{\"AccessToken\":{\"Token\":\"new.jwt\",\"ExpiresIn\":86400},"
                       "\"RefreshToken\":\"ref-2\"},\"Status\":200,\"Title\":\"\",\"Errors\":[]}";
    CU_ASSERT_EQUAL_FATAL(parse(body, &r, err), 0);
    T2M_ASSERT_STR(r.access_token, "new.jwt");
    T2M_ASSERT_STR(r.refresh_token, "ref-2");
    CU_ASSERT_DOUBLE_EQUAL(r.expires_in, 86400, 1e-9);
    t2m_refresh_result_clear(&r);
    CU_ASSERT_PTR_NULL(r.access_token);
    CU_ASSERT_PTR_NULL(r.refresh_token);

    /* ExpiresIn absent or null -> 0; fractional accepted */
    CU_ASSERT_EQUAL(
        parse("{\"Result\":{\"AccessToken\":{\"Token\":\"t\"},\"RefreshToken\":\"r\"}}", &r, err),
        0);
    CU_ASSERT_DOUBLE_EQUAL(r.expires_in, 0, 1e-9);
    t2m_refresh_result_clear(&r);
    CU_ASSERT_EQUAL(parse("{\"Result\":{\"AccessToken\":{\"Token\":\"t\",\"ExpiresIn\":2.5},"
                          "\"RefreshToken\":\"r\"}}",
                          &r, err),
                    0);
    CU_ASSERT_DOUBLE_EQUAL(r.expires_in, 2.5, 1e-9);
    t2m_refresh_result_clear(&r);
}

static void test_reply_bad(void)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{}",
        "{\"Result\":null}",
        "{\"Result\":{\"RefreshToken\":\"r\"}}",
        "{\"Result\":{\"AccessToken\":\"t\",\"RefreshToken\":\"r\"}}",
        "{\"Result\":{\"AccessToken\":{\"Token\":\"\"},\"RefreshToken\":\"r\"}}",
        "{\"Result\":{\"AccessToken\":{\"Token\":\"t\"},\"RefreshToken\":\"\"}}",
        "{\"Result\":{\"AccessToken\":{\"Token\":\"t\"},\"RefreshToken\":7}}",
        "{\"Result\":{\"AccessToken\":{\"Token\":\"t\",\"ExpiresIn\":\"soon\"},"
        "\"RefreshToken\":\"r\"}}",
        "{\"Result\":{\"AccessToken\":{\"Token\":\"t\",\"ExpiresIn\":-1},\"RefreshToken\":\"r\"}}",
        "{\"Result\":{\"AccessToken\":{\"Token\":\"t\"},\"RefreshToken\":\"r\"}} trailing",
        NULL,
    };
    for (const char *const *b = bad; *b; b++) {
        struct t2m_refresh_result r;
        char err[256] = "";
        CU_ASSERT_EQUAL(parse(*b, &r, err), -1);
        CU_ASSERT_TRUE(err[0] != '\0');
        CU_ASSERT_PTR_NULL(r.access_token);
        CU_ASSERT_PTR_NULL(r.refresh_token);
    }
    /* the error text never carries a token */
    struct t2m_refresh_result r;
    char err[256];
    CU_ASSERT_EQUAL(parse("{\"Result\":{\"AccessToken\":{\"Token\":\"SECRET-T\"}}}", &r, err), -1);
    CU_ASSERT_PTR_NULL(strstr(err, "SECRET-T"));
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_atomic_write(void)
{
    char dir[] = "/tmp/t2m-refresh-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/refresh_token", dir);
    FILE *f = fopen(path, "w");
    fputs("old-token\n", f);
    fclose(f);
    chmod(path, 0644);

    char err[512] = "";
    CU_ASSERT_EQUAL(t2m_refresh_write_atomic(path, "rotated-token", err, sizeof(err)), 0);
    T2M_ASSERT_STR(slurp(path), "rotated-token\n");
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);

    /* no temporary file left behind */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 1", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);

    /* a directory that does not exist: error, nothing written */
    char bad[300];
    snprintf(bad, sizeof(bad), "%s/missing/refresh_token", dir);
    CU_ASSERT_EQUAL(t2m_refresh_write_atomic(bad, "x", err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "missing"));

    /* a file with no directory part goes to the working directory */
    char cwd[4096];
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
    CU_ASSERT_EQUAL(chdir(dir), 0);
    CU_ASSERT_EQUAL(t2m_refresh_write_atomic("plain", "p", err, sizeof(err)), 0);
    T2M_ASSERT_STR(slurp("plain"), "p\n");
    CU_ASSERT_EQUAL(chdir(cwd), 0);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"request body", test_request_body},
        {"reply ok", test_reply_ok},
        {"reply bad", test_reply_bad},
        {"atomic write", test_atomic_write},
        {NULL, NULL},
    };
    return t2m_test_run("refresh", cases);
}
