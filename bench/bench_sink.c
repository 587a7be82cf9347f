/* bench_sink.c - an MQTT sink for the benchmark: it takes what the bridge publishes and
 * acknowledges it at once, so that the broker is not the limit and the bridge's own ceiling
 * shows (issue 20). Not a broker: CONNECT gets CONNACK, SUBSCRIBE and UNSUBSCRIBE their acks,
 * PINGREQ PINGRESP, a QoS 1 PUBLISH its PUBACK (all acks of one read in one write); a PUBLISH
 * on a topic containing "/readback" is sent back (the bridge's read-back marker). Positions
 * (topics ending in "/position") are counted; at the end one JSON line like bench-sub's:
 * {"count":N,"rate":R,"elapsed":S,"cpu_s":C}.
 *
 *   bench-sink -p PORT [-n EXPECT] [--idle-ms MS]      (loopback only; prints "ready") */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"

#define IN_CAP (4u << 20)

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Remaining Length at buf[1..]: the header's size into *hl, -1 malformed, 0 incomplete. */
static long frame(const uint8_t *buf, size_t len, size_t *hl)
{
    size_t v = 0, mul = 1;
    for (size_t i = 1; i <= 4; i++) {
        if (i >= len) return 0;
        v += (buf[i] & 127u) * mul;
        if (!(buf[i] & 128u)) {
            *hl = i + 1;
            return (long)(i + 1 + v);
        }
        mul *= 128;
    }
    return -1;
}

struct stats {
    unsigned long count, expect;
    double first, last;
};

/* One connection until it closes, the expected count is reached or it idles. Returns 1 when
 * the run is over. */
static int serve(int fd, struct stats *st, int idle_ms)
{
    uint8_t *in = malloc(IN_CAP), *out = malloc(IN_CAP);
    size_t have = 0;
    int version = 4, done = 0;
    while (!done) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, idle_ms);
        if (pr == 0 && st->count) {
            done = 1; /* idle after traffic: what came is what comes */
            break;
        }
        if (pr <= 0) continue;
        ssize_t r = recv(fd, in + have, IN_CAP - have, 0);
        if (r <= 0) break;
        have += (size_t)r;
        size_t off = 0, o = 0;
        for (;;) {
            size_t hl = 0;
            long f = frame(in + off, have - off, &hl);
            if (f < 0) goto out;
            if (f == 0 || (size_t)f > have - off) break;
            const uint8_t *p = in + off;
            const uint8_t *body = p + hl;
            size_t blen = (size_t)f - hl;
            switch (p[0] >> 4) {
            case 1: { /* CONNECT: level after the protocol name */
                size_t nl = (size_t)body[0] << 8 | body[1];
                version = body[2 + nl];
                if (version == 5) {
                    memcpy(out + o, "\x20\x03\x00\x00\x00", 5);
                    o += 5;
                } else {
                    memcpy(out + o, "\x20\x02\x00\x00", 4);
                    o += 4;
                }
                break;
            }
            case 3: { /* PUBLISH */
                int qos = (p[0] >> 1) & 3;
                size_t tl = (size_t)body[0] << 8 | body[1];
                const char *topic = (const char *)body + 2;
                if (tl >= 9 && memcmp(topic + tl - 9, "/position", 9) == 0) {
                    double t = mono_s();
                    if (!st->count) st->first = t;
                    st->last = t;
                    st->count++;
                } else if (memmem(topic, tl, "/readback", 9)) {
                    /* back as QoS 0: header, then topic and payload without the packet id */
                    size_t pl = blen - 2 - tl - (qos ? 2 : 0) - (version == 5 ? 1 : 0);
                    size_t rem = 2 + tl + (version == 5 ? 1 : 0) + pl;
                    if (rem < 128 && o + rem + 2 < IN_CAP) {
                        out[o++] = 0x30;
                        out[o++] = (uint8_t)rem;
                        memcpy(out + o, body, 2 + tl);
                        o += 2 + tl;
                        if (version == 5) out[o++] = 0;
                        memcpy(out + o, body + blen - pl, pl);
                        o += pl;
                    }
                }
                if (qos) {
                    out[o++] = 0x40;
                    out[o++] = 2;
                    out[o++] = body[2 + tl];
                    out[o++] = body[3 + tl];
                }
                break;
            }
            case 8:  /* SUBSCRIBE: one filter per packet from the bridge, granted QoS 0 */
            case 10: /* UNSUBSCRIBE */
                out[o++] = (p[0] >> 4) == 8 ? 0x90 : 0xB0;
                if (version == 5) {
                    out[o++] = 4;
                    out[o++] = body[0];
                    out[o++] = body[1];
                    out[o++] = 0; /* no properties */
                    out[o++] = 0;
                } else {
                    out[o++] = (p[0] >> 4) == 8 ? 3 : 2;
                    out[o++] = body[0];
                    out[o++] = body[1];
                    if ((p[0] >> 4) == 8) out[o++] = 0;
                }
                break;
            case 12: /* PINGREQ */
                out[o++] = 0xD0;
                out[o++] = 0;
                break;
            case 14: /* DISCONNECT */
                done = 0;
                goto out;
            default:
                break;
            }
            off += (size_t)f;
            if (o > IN_CAP - 1024) break; /* the rest after this write */
        }
        memmove(in, in + off, have - off);
        have -= off;
        if (o && send_all(fd, out, o) < 0) break;
        if (st->expect && st->count >= st->expect) done = 1;
    }
out:
    free(in);
    free(out);
    return done;
}

int main(int argc, char **argv)
{
    int port = 0, idle_ms = 3000;
    struct stats st = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-p") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            st.expect = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--idle-ms") && i + 1 < argc)
            idle_ms = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench-sink -p PORT [-n EXPECT] [--idle-ms MS]\n");
            return 2;
        }
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4)) {
        perror("bench-sink: bind");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    double c0 = cpu_s();
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int over = serve(fd, &st, idle_ms);
        close(fd);
        if (over) break;
    }
    double el = st.count > 1 ? st.last - st.first : 0;
    printf("{\"count\":%lu,\"rate\":%.1f,\"elapsed\":%.3f,\"cpu_s\":%.3f}\n", st.count,
           el > 0 ? (double)(st.count - 1) / el : 0.0, el, cpu_s() - c0);
    return 0;
}
