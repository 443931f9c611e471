#!/usr/bin/env python3
"""A userspace netem, for kernels built without sch_netem (CONFIG_NET_SCH_NETEM).

    ip netns exec NS python3 impair.py TUN_A TUN_B

Creates two TUN devices in the current network namespace and forwards every IP packet that
one of them emits into the other, after the delay, loss and reordering of its profile, as
`tc qdisc add ... netem delay D J loss L reorder R` would on a link. The test moves one of
the two into another namespace (`ip link set TUN_B netns OTHER`; the device stays attached to
this process) and gives both ends their addresses: then the two namespaces are joined by a
point-to-point link whose packets this process delays, drops and reorders.

Profiles come on stdin, one JSON object a line, each answered by one JSON line on stdout with
the counters so far:

    {"delay_ms": 25, "jitter_ms": 10, "loss": 0.02, "reorder": 0.25, "seed": 7}

- delay_ms, jitter_ms: each packet waits delay_ms +- jitter_ms (uniform), so jitter reorders
  too, as netem's does;
- loss: the share of packets dropped;
- reorder: the share of packets sent at once, overtaking the delayed ones (netem's reorder);
- seed: the dice, for runs that can be replayed.

It prints "ready" once both devices exist, and exits when stdin closes (its parent is gone) or
after --max-seconds (default 600): a loop that ends by itself.
"""

import fcntl
import heapq
import json
import os
import random
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def is_syn(packet):
    """Whether an IPv4 packet is a TCP SYN (not a SYN-ACK)."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != 6:
        return False
    ihl = (packet[0] & 0x0F) * 4
    return len(packet) > ihl + 13 and packet[ihl + 13] & 0x12 == 0x02


def main():
    args = sys.argv[1:]
    max_seconds = 600.0
    if "--max-seconds" in args:
        i = args.index("--max-seconds")
        max_seconds = float(args[i + 1])
        del args[i : i + 2]
    if len(args) != 2:
        sys.exit("usage: impair.py TUN_A TUN_B [--max-seconds N]")
    a, b = open_tun(args[0]), open_tun(args[1])
    other = {a: b, b: a}
    profile = {"delay_ms": 0.0, "jitter_ms": 0.0, "loss": 0.0, "reorder": 0.0}
    rng = random.Random(1)
    # syn: TCP SYNs (connection attempts, retransmitted ones included)
    counts = {"packets": 0, "dropped": 0, "reordered": 0, "delayed": 0, "syn": 0}
    queue = []  # (due, n, fd, packet): a heap by due time
    n = 0
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    pending = b""
    print("ready", flush=True)
    end = time.monotonic() + max_seconds
    while time.monotonic() < end:
        timeout = 0.5
        if queue:
            timeout = max(0.0, min(timeout, queue[0][0] - time.monotonic()))
        readable, _, _ = select.select([a, b, stdin], [], [], timeout)
        for fd in readable:
            if fd == stdin:
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        profile.update(json.loads(line))
                        rng.seed(profile.get("seed", 1))
                        print(json.dumps(counts), flush=True)
                continue
            for _ in range(256):
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                counts["packets"] += 1
                if is_syn(packet):
                    counts["syn"] += 1
                if rng.random() < profile["loss"]:
                    counts["dropped"] += 1
                    continue
                if rng.random() < profile["reorder"]:
                    wait = 0.0
                    counts["reordered"] += 1
                else:
                    jitter = profile["jitter_ms"] * (2.0 * rng.random() - 1.0)
                    wait = max(0.0, profile["delay_ms"] + jitter) / 1000.0
                    if wait > 0:
                        counts["delayed"] += 1
                n += 1
                heapq.heappush(queue, (time.monotonic() + wait, n, other[fd], packet))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, packet = heapq.heappop(queue)
            try:
                os.write(out, packet)
            except OSError:
                pass  # the device is down or gone: the packet is lost, as on a cut link


if __name__ == "__main__":
    main()
