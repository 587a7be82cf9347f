/* test_metrics.c - the Prometheus text of /metrics (SPEC 7). */
#include <stdlib.h>

#include "metrics.h"
#include "t2m_test.h"

static char out[16384];

static size_t render_default(const struct t2m_stats *st)
{
    static const struct t2m_metrics_instance inst[] = {{"inst-1", 2, 1767225600}, {"inst-2", 4, 0}};
    struct t2m_metrics_snapshot s = {
        .stats = st,
        .mqtt_connected = true,
        .offline_queue_depth = 17,
        .devices = 3,
        .instances = inst,
        .n_instances = 2,
        .broker_node = "[::1]:1883",
    };
    return t2m_metrics_render(out, sizeof(out), &s);
}

/* Every metric of SPEC 7 is there with HELP and TYPE, counters typed counter. */
static void test_families(void)
{
    struct t2m_stats st = {0};
    size_t len = render_default(&st);
    CU_ASSERT(len > 0);
    CU_ASSERT_EQUAL(len, strlen(out));
    static const char *const counters[] = {
        "t2m_updates_received_total", "t2m_messages_published_total",
        "t2m_updates_dropped_total",  "t2m_upstream_reconnects_total",
        "t2m_fields_rejected_total",  "t2m_mqtt_inbound_skipped_total"};
    static const char *const gauges[] = {"t2m_mqtt_connected", "t2m_upstream_state",
                                         "t2m_offline_queue_depth", "t2m_devices",
                                         "t2m_mqtt_broker_node"};
    char line[128];
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        snprintf(line, sizeof(line), "# TYPE %s counter\n", counters[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, line));
        snprintf(line, sizeof(line), "# HELP %s ", counters[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, line));
    }
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
        snprintf(line, sizeof(line), "# TYPE %s gauge\n", gauges[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, line));
        snprintf(line, sizeof(line), "# HELP %s ", gauges[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, line));
    }
    CU_ASSERT_EQUAL(out[len - 1], '\n');
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_mqtt_broker_node{node=\"[::1]:1883\"} 1\n"));
    /* the token's expiry, only for an instance whose token carries one (SPEC 7) */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "# TYPE t2m_token_expiry_timestamp_seconds gauge\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "\nt2m_token_expiry_timestamp_seconds{instance=\"inst-1\"} 1767225600\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "t2m_token_expiry_timestamp_seconds{instance=\"inst-2\""));
}

/* Every drop reason is present, zeros included, each once. */
static void test_every_reason_zero(void)
{
    struct t2m_stats st = {0};
    CU_ASSERT(render_default(&st) > 0);
    const char *names[] = {"invalid_json",   "too_large",     "invalid_token",   "stale",
                           "max_devices",    "offline_queue", "unauthenticated", "broker_too_large",
                           "broker_refused", "removed"};
    CU_ASSERT_EQUAL(sizeof(names) / sizeof(names[0]), T2M_DROP_COUNT);
    char line[128];
    for (int r = 0; r < T2M_DROP_COUNT; r++) {
        snprintf(line, sizeof(line), "\nt2m_updates_dropped_total{reason=\"%s\"} 0\n", names[r]);
        const char *at = strstr(out, line);
        CU_ASSERT_PTR_NOT_NULL(at);
        if (at) CU_ASSERT_PTR_NULL(strstr(at + 1, line));
    }
}

static void test_values(void)
{
    struct t2m_stats st = {
        .updates_received = 12345678901234ULL,
        .messages_published = 42,
        .fields_rejected = 5,
        .upstream_reconnects = 7,
        .mqtt_skipped = 3,
    };
    st.dropped[T2M_DROP_STALE] = 9;
    st.dropped[T2M_DROP_OFFLINE_QUEUE] = 18446744073709551615ULL;
    CU_ASSERT(render_default(&st) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_updates_received_total 12345678901234\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_messages_published_total 42\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_updates_dropped_total{reason=\"stale\"} 9\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(
        out, "\nt2m_updates_dropped_total{reason=\"offline_queue\"} 18446744073709551615\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_updates_dropped_total{reason=\"invalid_json\"} 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_fields_rejected_total 5\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_upstream_reconnects_total 7\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_mqtt_inbound_skipped_total 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_mqtt_connected 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_upstream_state{instance=\"inst-1\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_upstream_state{instance=\"inst-2\"} 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_offline_queue_depth 17\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_devices 3\n"));
}

/* The HELP of t2m_upstream_state names every state number. */
static void test_state_help(void)
{
    struct t2m_stats st = {0};
    CU_ASSERT(render_default(&st) > 0);
    const char *help = strstr(out, "# HELP t2m_upstream_state ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(help);
    const char *eol = strchr(help, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(eol);
    char line[512];
    snprintf(line, sizeof(line), "%.*s", (int)(eol - help), help);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "0 connecting"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "1 authenticating"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "2 subscribed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "3 reconnecting"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "4 auth_failed"));
}

static void test_label_escaping(void)
{
    struct t2m_metrics_instance inst[] = {
        {"a\"b\\c\nd", 1, 0}, {"caf\xc3\xa9", 0, 0}, {"bad\xff\xc3", 3, 0}, {NULL, 0, 0}};
    struct t2m_metrics_snapshot s = {.instances = inst, .n_instances = 4};
    CU_ASSERT(t2m_metrics_render(out, sizeof(out), &s) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_upstream_state{instance=\"a\\\"b\\\\c\\nd\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_upstream_state{instance=\"caf\xc3\xa9\"} 0\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "\nt2m_upstream_state{instance=\"bad\xef\xbf\xbd\xef\xbf\xbd\"} 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_upstream_state{instance=\"\"} 0\n"));
    /* No stats given: every counter still renders, as zero. */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_updates_received_total 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nt2m_mqtt_connected 0\n"));
}

/* A buffer one byte short gives 0 (never a truncated exposition); the exact size works. */
static void test_too_small(void)
{
    struct t2m_stats st = {0};
    size_t len = render_default(&st);
    CU_ASSERT_FATAL(len > 0);
    char *copy = strdup(out);
    struct t2m_metrics_instance inst[] = {{"inst-1", 2, 1767225600}, {"inst-2", 4, 0}};
    struct t2m_metrics_snapshot s = {.stats = &st,
                                     .mqtt_connected = true,
                                     .offline_queue_depth = 17,
                                     .devices = 3,
                                     .instances = inst,
                                     .n_instances = 2,
                                     .broker_node = "[::1]:1883"};
    char *b = malloc(len + 1);
    CU_ASSERT_EQUAL(t2m_metrics_render(b, len + 1, &s), len);
    T2M_ASSERT_STR(b, copy);
    CU_ASSERT_EQUAL(t2m_metrics_render(b, len, &s), 0);
    CU_ASSERT_EQUAL(b[0], '\0');
    for (size_t n = 1; n < len; n += 37)
        CU_ASSERT_EQUAL(t2m_metrics_render(b, n, &s), 0);
    CU_ASSERT_EQUAL(t2m_metrics_render(b, 0, &s), 0);
    CU_ASSERT_EQUAL(t2m_metrics_render(NULL, 100, &s), 0);
    CU_ASSERT_EQUAL(t2m_metrics_render(b, len + 1, NULL), 0);
    free(b);
    free(copy);
}

/* Only comment lines and samples; every sample's family was declared before it. */
static void test_line_grammar(void)
{
    struct t2m_stats st = {0};
    CU_ASSERT(render_default(&st) > 0);
    char *text = strdup(out);
    char declared[32][64];
    size_t nd = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, "# TYPE ", 7) == 0) {
            CU_ASSERT_FATAL(nd < 32);
            sscanf(l + 7, "%63s", declared[nd++]);
            continue;
        }
        if (strncmp(l, "# HELP ", 7) == 0) continue;
        CU_ASSERT_NOT_EQUAL(l[0], '#');
        size_t name_len = strcspn(l, "{ ");
        int found = 0;
        for (size_t i = 0; i < nd; i++)
            found |= strlen(declared[i]) == name_len && strncmp(declared[i], l, name_len) == 0;
        CU_ASSERT(found);
        const char *sp = strrchr(l, ' ');
        CU_ASSERT_PTR_NOT_NULL(sp);
        if (sp) {
            char *end;
            strtod(sp + 1, &end);
            CU_ASSERT(end != sp + 1 && *end == '\0');
        }
    }
    free(text);
}

int main(void)
{
    static const struct t2m_test_case cases[] = {
        {"families with HELP and TYPE", test_families},
        {"every drop reason, zeros too", test_every_reason_zero},
        {"values", test_values},
        {"upstream_state HELP names the states", test_state_help},
        {"label values escaped", test_label_escaping},
        {"buffer too small gives 0", test_too_small},
        {"line grammar", test_line_grammar},
        {NULL, NULL},
    };
    return t2m_test_run("metrics", cases);
}
