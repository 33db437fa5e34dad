"""Prints N free TCP ports on 127.0.0.1, distinct, on one line: `python3 scripts/free_ports.py N`.

All N sockets are bound at once before any is closed, so the ports differ from each
other; another process may still take one before the caller binds it.
"""

import socket
import sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
if count < 1:
    sys.exit("free_ports.py: N must be at least 1")
sockets = [socket.socket() for _ in range(count)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
for s in sockets:
    s.close()
