"""Prints N free TCP ports, distinct, on one line: `python3 scripts/free_ports.py N`.

The ports lie below the kernel's ephemeral range (net.ipv4.ip_local_port_range), so no
outgoing connection is ever given one as its local port: a container published on such a
port can stop and start again (the compose and cluster tests restart them under load)
without finding its port taken by a client's connection in the meantime. Each port is
free on every address (bound on 0.0.0.0) when printed; all N are held at once, so they
differ; another process may still take one before the caller binds it.
"""

import random
import socket
import sys

LOWEST = 10000


def ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as file:
            low, high = (int(part) for part in file.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def main():
    try:
        count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    except ValueError:
        sys.exit("free_ports.py: N must be a whole number")
    if count < 1:
        sys.exit("free_ports.py: N must be at least 1")
    low, high = ephemeral_range()
    # Below the ephemeral range if it leaves room, else above it.
    if low - LOWEST >= 1000:
        candidates = range(LOWEST, low)
    elif 65535 - high >= 1000:
        candidates = range(high + 1, 65536)
    else:
        sys.exit(f"free_ports.py: no room outside the ephemeral range {low}-{high}")
    held = []
    for port in random.sample(candidates, min(len(candidates), 2000)):
        if len(held) == count:
            break
        candidate = socket.socket()
        try:
            candidate.bind(("0.0.0.0", port))
        except OSError:
            candidate.close()
            continue
        held.append(candidate)
    if len(held) < count:
        sys.exit(f"free_ports.py: found only {len(held)} of {count} free ports")
    print(" ".join(str(s.getsockname()[1]) for s in held))
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
