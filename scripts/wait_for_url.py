"""Waits until a URL answers 2xx: `python3 scripts/wait_for_url.py URL SECONDS WHAT`.

Exits 0 once it does; after SECONDS, exits 1 naming WHAT and the last error.
"""

import sys
import time
import urllib.request

url, seconds, what = sys.argv[1], float(sys.argv[2]), sys.argv[3]
deadline = time.time() + seconds
while True:
    try:
        urllib.request.urlopen(url, timeout=2)
        break
    except Exception as error:
        if time.time() > deadline:
            sys.exit(f"{what}: no answer from {url} within {seconds:.0f} s: {error}")
        time.sleep(0.2)
