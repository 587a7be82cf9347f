/* fuzz_ui.c - libFuzzer target: what the status page and the token reader take from the network
 * (SPEC 7): an Authorization header against a password, a Server-Sent Event built from any data,
 * and the exp claim of any access token. The first byte picks the case; the rest is the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "token.h"
#include "ui.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data with every CR LF, lone CR and lone LF made one LF: what the frame's data lines spell. */
static size_t normalise(const char *in, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\r') {
            out[n++] = '\n';
            if (i + 1 < len && in[i + 1] == '\n') i++;
        } else {
            out[n++] = in[i];
        }
    }
    return n;
}

static void sse(const char *d, size_t len)
{
    size_t cap = 7 * len + 64;
    char *buf = malloc(cap), *norm = malloc(len + 1), *back = malloc(len + 1);
    FUZZ_CHECK(buf && norm && back, "oom");
    size_t n = t2m_sse_frame(buf, cap, "device", d, len);
    FUZZ_CHECK(n > 0 && buf[n] == '\0', "no frame for %zu bytes", len);
    FUZZ_CHECK(strncmp(buf, "event: device\n", 14) == 0, "frame does not start with its event");
    FUZZ_CHECK(n >= 16 && buf[n - 1] == '\n' && buf[n - 2] == '\n',
               "frame not ended by a blank line");
    FUZZ_CHECK(!memchr(buf, '\r', n), "a CR in the frame");
    /* every line after the first is a data line, and they spell data again */
    size_t m = 0;
    const char *p = buf + 14, *end = buf + n - 1; /* the final blank line's \n excluded */
    bool first = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        FUZZ_CHECK(nl != NULL, "an unterminated line");
        FUZZ_CHECK(strncmp(p, "data: ", 6) == 0, "a line that is not data");
        if (!first) back[m++] = '\n';
        first = false;
        memcpy(back + m, p + 6, (size_t)(nl - p - 6));
        m += (size_t)(nl - p - 6);
        p = nl + 1;
    }
    size_t nn = normalise(d, len, norm);
    FUZZ_CHECK(m == nn && memcmp(back, norm, m) == 0, "the data lines do not spell the data");
    /* one byte short of the room: nothing, never a cut frame */
    FUZZ_CHECK(t2m_sse_frame(buf, n, "device", d, len) == 0 && buf[0] == '\0', "a cut frame");
    free(buf);
    free(norm);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned mode = data[0] % 3;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    char *s = malloc(len + 1);
    FUZZ_CHECK(s != NULL, "oom");
    memcpy(s, in, len);
    s[len] = '\0';
    if (mode == 0) {
        /* "password\nheader": the header against the password, off loopback */
        char *nl = strchr(s, '\n');
        const char *pw = s, *hdr = NULL;
        if (nl) {
            *nl = '\0';
            hdr = nl + 1;
        }
        enum t2m_ui_access a = t2m_ui_access(true, false, pw, hdr);
        FUZZ_CHECK(a == t2m_ui_access(true, false, pw, hdr), "not deterministic");
        FUZZ_CHECK(t2m_ui_access(true, true, pw, hdr) == T2M_UI_ALLOW, "loopback refused");
        FUZZ_CHECK(t2m_ui_access(false, false, pw, hdr) == T2M_UI_OFF, "off, yet served");
        if (!*pw)
            FUZZ_CHECK(a == T2M_UI_FORBIDDEN, "no password, yet %d", (int)a);
        else
            FUZZ_CHECK(a == T2M_UI_ALLOW || a == T2M_UI_UNAUTHORIZED, "result %d", (int)a);
        if (!hdr && *pw) FUZZ_CHECK(a == T2M_UI_UNAUTHORIZED, "no header, yet allowed");
    } else if (mode == 1) {
        sse(in, len);
    } else {
        int64_t exp = t2m_token_exp(s);
        FUZZ_CHECK(exp >= 0 && exp <= 1099511627776LL, "exp %lld", (long long)exp);
    }
    free(s);
    return 0;
}
