/* sim_hostile.c - the --handshake modes of telematics-sim (sim_hostile.h). A plain poll() loop
 * over raw sockets: lws as a server would answer an upgrade correctly, which is exactly what
 * these modes must not do.
 *
 *   silent       accept, read the request, never answer
 *   half-status  answer "HTTP/1.1 10" (half a status line), then nothing
 *   redirect     answer 302 with Location: --redirect-to, then close
 *   extension    answer 101 with a permessage-deflate extension the client did not offer
 *   rsv1         answer a proper 101, then a text frame with RSV1 set (no extension agreed)
 *   reset        read the request, then reset the connection (RST)
 *
 * Each connection is reported on stderr as "telematics-sim: hostile connection N (MODE)", and
 * whether its request carried an Authorization or token is never printed. */
#include "sim_hostile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 256
#define REQ_MAX 8192

static const char *const modes[] = {"silent",    "half-status", "redirect",
                                    "extension", "rsv1",        "reset"};

int sim_hostile_mode_known(const char *mode)
{
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (mode && strcmp(mode, modes[i]) == 0) return 0;
    return -1;
}

struct client {
    int fd;
    char req[REQ_MAX + 1];
    size_t len;
    bool answered;
};

static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* The Sec-WebSocket-Accept for the request's Sec-WebSocket-Key (RFC 6455 section 4.2.2). */
static int accept_key(const char *req, char *out, int outlen)
{
    const char *k = strcasestr(req, "\nsec-websocket-key:");
    if (!k) return -1;
    k += strlen("\nsec-websocket-key:");
    while (*k == ' ')
        k++;
    size_t kl = strcspn(k, "\r\n ");
    char buf[128];
    if (kl > 64) return -1;
    int n = snprintf(buf, sizeof(buf), "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (int)kl, k);
    unsigned char md[20];
    lws_SHA1((const unsigned char *)buf, (size_t)n, md);
    return lws_b64_encode_string((const char *)md, 20, out, outlen) < 0 ? -1 : 0;
}

/* Returns true when the connection is to be closed now. */
static bool answer(struct client *c, const char *mode, const char *redirect_to)
{
    char buf[1024], acc[64];
    c->answered = true;
    if (!strcmp(mode, "silent")) return false;
    if (!strcmp(mode, "half-status")) {
        write_all(c->fd, "HTTP/1.1 10", 11);
        return false;
    }
    if (!strcmp(mode, "redirect")) {
        int n = snprintf(buf, sizeof(buf),
                         "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n",
                         redirect_to ? redirect_to : "ws://127.0.0.1:9/elsewhere");
        write_all(c->fd, buf, (size_t)n);
        return true;
    }
    if (!strcmp(mode, "reset")) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        return true;
    }
    if (accept_key(c->req, acc, sizeof(acc)) < 0) return true;
    bool ext = !strcmp(mode, "extension");
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                     acc, ext ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "");
    write_all(c->fd, buf, (size_t)n);
    if (!ext) { /* rsv1: FIN + RSV1 + text, unmasked, as a server sends */
        static const char msg[] = "{\"type\":\"authenticated\"}";
        char frame[2 + sizeof(msg)];
        frame[0] = (char)0xc1;
        frame[1] = (char)(sizeof(msg) - 1);
        memcpy(frame + 2, msg, sizeof(msg) - 1);
        write_all(c->fd, frame, 2 + sizeof(msg) - 1);
    }
    return false;
}

int sim_hostile_run(const char *host, int port, const char *mode, const char *redirect_to,
                    volatile sig_atomic_t *stop)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (ls < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 64) < 0) {
        fprintf(stderr, "telematics-sim: cannot listen on %s:%d: %s\n", host, port,
                strerror(errno));
        if (ls >= 0) close(ls);
        return 1;
    }
    socklen_t sl = sizeof(sa);
    getsockname(ls, (struct sockaddr *)&sa, &sl);
    printf("telematics-sim: listening on %s:%d\n", host, ntohs(sa.sin_port));
    fflush(stdout);

    static struct client cl[MAX_CLIENTS];
    size_t ncl = 0;
    unsigned long total = 0;
    struct pollfd pf[MAX_CLIENTS + 1];
    while (!*stop) {
        pf[0] = (struct pollfd){.fd = ls, .events = POLLIN};
        for (size_t i = 0; i < ncl; i++)
            pf[i + 1] = (struct pollfd){.fd = cl[i].fd, .events = POLLIN};
        int r = poll(pf, ncl + 1, 200);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        for (size_t i = ncl; i-- > 0;) {
            if (!pf[i + 1].revents) continue;
            struct client *c = &cl[i];
            char tmp[4096];
            ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
            bool close_now = n <= 0;
            if (n > 0 && !c->answered) {
                size_t take = (size_t)n < REQ_MAX - c->len ? (size_t)n : REQ_MAX - c->len;
                memcpy(c->req + c->len, tmp, take);
                c->len += take;
                c->req[c->len] = '\0';
                if (strstr(c->req, "\r\n\r\n") || c->len == REQ_MAX)
                    close_now = answer(c, mode, redirect_to);
            }
            if (close_now) {
                close(c->fd);
                cl[i] = cl[--ncl];
            }
        }
        if (pf[0].revents & POLLIN) {
            int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0 && ncl < MAX_CLIENTS) {
                cl[ncl].fd = fd;
                cl[ncl].len = 0;
                cl[ncl].answered = false;
                ncl++;
                fprintf(stderr, "telematics-sim: hostile connection %lu (%s)\n", ++total, mode);
            } else if (fd >= 0) {
                close(fd);
            }
        }
    }
    for (size_t i = 0; i < ncl; i++)
        close(cl[i].fd);
    close(ls);
    fprintf(stderr, "telematics-sim: totals: hostile connections=%lu\n", total);
    return 0;
}
