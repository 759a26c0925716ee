/* SPDX-License-Identifier: BSD-2-Clause
 * The benchmark's floor (bench.py --servers ...,floor): a UDP responder that does no DNS
 * work at all. It reads datagrams in recvmmsg batches of 20 (as libuv does for dnsd) and
 * sends each one straight back with the QR bit set, all of a batch with one sendmmsg, so
 * its QPS per core is what the kernel's per-datagram UDP work alone allows on the machine:
 * a server that parses, looks up and answers cannot beat it. Not part of dnsd.
 * Usage: floor PORT (binds 127.0.0.1:PORT; stop it with SIGTERM). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 20
#define SLOT 4096

int main(int argc, char **argv)
{
    char *end = NULL;
    long port = argc == 2 ? strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "usage: floor PORT\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int rcvbuf = 4 << 20; /* as dnsd's dns.udp_rcvbuf default */
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        fprintf(stderr, "floor: 127.0.0.1:%ld: %s\n", port, strerror(errno));
        return 1;
    }
    static unsigned char buf[BATCH][SLOT];
    struct sockaddr_in from[BATCH];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){.iov_base = buf[i], .iov_len = SLOT};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                              .msg_namelen = sizeof(from[i]),
                                              .msg_iov = &iov[i],
                                              .msg_iovlen = 1};
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            iov[i].iov_len = msgs[i].msg_len;
            if (msgs[i].msg_len >= 3)
                buf[i][2] |= 0x80; /* QR: a response */
        }
        for (int sent = 0; sent < n;) {
            int rc = sendmmsg(fd, msgs + sent, (unsigned)(n - sent), 0);
            if (rc <= 0)
                break; /* a lost answer is dnsperf's to count */
            sent += rc;
        }
    }
}
