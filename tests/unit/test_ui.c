/* test_ui.c - the status page's rules (SPEC 7): who may see it, how events are framed, which
 * files it serves. */
#include <string.h>

#include "t2m_test.h"
#include "ui.h"

static void test_access(void)
{
    /* admin:pw = YWRtaW46cHc= ; admin:wrong = YWRtaW46d3Jvbmc= ; root:pw = cm9vdDpwdw== */
    CU_ASSERT_EQUAL(t2m_ui_access(false, true, "pw", NULL), T2M_UI_OFF);
    CU_ASSERT_EQUAL(t2m_ui_access(false, false, "pw", "Basic YWRtaW46cHc="), T2M_UI_OFF);
    /* loopback: open, password or not */
    CU_ASSERT_EQUAL(t2m_ui_access(true, true, NULL, NULL), T2M_UI_ALLOW);
    CU_ASSERT_EQUAL(t2m_ui_access(true, true, "pw", NULL), T2M_UI_ALLOW);
    /* elsewhere without a password: forbidden, whatever the request says */
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, NULL, "Basic YWRtaW46cHc="), T2M_UI_FORBIDDEN);
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "", NULL), T2M_UI_FORBIDDEN);
    /* with one: only admin and that password */
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "pw", NULL), T2M_UI_UNAUTHORIZED);
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "pw", "Basic YWRtaW46cHc="), T2M_UI_ALLOW);
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "pw", "basic  YWRtaW46cHc= "), T2M_UI_ALLOW);
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "pw", "Basic YWRtaW46d3Jvbmc="),
                    T2M_UI_UNAUTHORIZED);
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "pw", "Basic cm9vdDpwdw=="), T2M_UI_UNAUTHORIZED);
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "pw", "Bearer YWRtaW46cHc="), T2M_UI_UNAUTHORIZED);
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "pw", "Basic !!!"), T2M_UI_UNAUTHORIZED);
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "pw", "Basic YWRtaW4="), T2M_UI_UNAUTHORIZED);
    /* a password that is a prefix of the sent one, and the other way round */
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "p", "Basic YWRtaW46cHc="), T2M_UI_UNAUTHORIZED);
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "pww", "Basic YWRtaW46cHc="), T2M_UI_UNAUTHORIZED);
    /* a password with a colon: split at the first one */
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "a:b", "Basic YWRtaW46YTpi"), T2M_UI_ALLOW);
    /* a header far too long is refused, not overflowed */
    static char big[4096];
    memcpy(big, "Basic ", 6);
    memset(big + 6, 'A', sizeof(big) - 7);
    CU_ASSERT_EQUAL(t2m_ui_access(true, false, "pw", big), T2M_UI_UNAUTHORIZED);
}

static void test_sse(void)
{
    char buf[256];
    size_t n = t2m_sse_frame(buf, sizeof buf, "device", "{\"a\":1}", 7);
    T2M_ASSERT_STR(buf, "event: device\ndata: {\"a\":1}\n\n");
    CU_ASSERT_EQUAL(n, strlen(buf));
    /* line breaks in data become data lines: data can never end the event or forge a field */
    const char *evil = "x\n\nevent: evil\r\ny\rz";
    t2m_sse_frame(buf, sizeof buf, "state", evil, strlen(evil));
    T2M_ASSERT_STR(buf, "event: state\ndata: x\ndata: \ndata: event: evil\ndata: y\ndata: z\n\n");
    t2m_sse_frame(buf, sizeof buf, "removed", "", 0);
    T2M_ASSERT_STR(buf, "event: removed\ndata: \n\n");
    /* bad event names, no room */
    CU_ASSERT_EQUAL(t2m_sse_frame(buf, sizeof buf, "a b", "x", 1), 0);
    CU_ASSERT_EQUAL(t2m_sse_frame(buf, sizeof buf, "a\nb", "x", 1), 0);
    CU_ASSERT_EQUAL(t2m_sse_frame(buf, sizeof buf, "", "x", 1), 0);
    CU_ASSERT_EQUAL(t2m_sse_frame(buf, 20, "device", "0123456789", 10), 0);
    CU_ASSERT_EQUAL(buf[0], '\0');
    size_t exact = strlen("event: d\ndata: 01\n\n");
    CU_ASSERT_EQUAL(t2m_sse_frame(buf, exact + 1, "d", "01", 2), exact);
    CU_ASSERT_EQUAL(t2m_sse_frame(buf, exact, "d", "01", 2), 0);
}

static void test_assets(void)
{
    const struct t2m_ui_asset *a = t2m_ui_asset("/");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT(a->data && a->len > 100 && !a->file);
    CU_ASSERT(strncmp(a->ctype, "text/html", 9) == 0);
    CU_ASSERT(memmem(a->data, a->len, "leaflet/leaflet.js", 18) != NULL);
    a = t2m_ui_asset("/leaflet/leaflet.js");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT(!a->data && a->file && strcmp(a->file, "leaflet.min.js") == 0);
    CU_ASSERT_PTR_NOT_NULL(t2m_ui_asset("/app.js"));
    CU_ASSERT_PTR_NOT_NULL(t2m_ui_asset("/leaflet/images/marker-icon.png"));
    /* nothing else of the file system */
    CU_ASSERT_PTR_NULL(t2m_ui_asset("/leaflet/../../etc/passwd"));
    CU_ASSERT_PTR_NULL(t2m_ui_asset("/leaflet/leaflet.js.map"));
    CU_ASSERT_PTR_NULL(t2m_ui_asset("/index.html/"));
    CU_ASSERT_PTR_NULL(t2m_ui_asset(""));
    CU_ASSERT_PTR_NULL(t2m_ui_asset(NULL));
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"who may see the page", test_access},
        {"server-sent event framing", test_sse},
        {"the page's files", test_assets},
        {NULL, NULL},
    };
    return t2m_test_run("ui", cases);
}
