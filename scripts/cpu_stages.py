#!/usr/bin/env python3
"""Splits a CPU profile of the aggregator into the stages of an order.

    python3 scripts/cpu_stages.py PROFILE.data [--us-per-order N] [--top K]

PROFILE.data is what `aggregator-load --perf DIR` records for one step (`perf record`
with call graphs of the aggregator process). Each sample is put in one stage by its
call stack: the innermost frame of our own code that names a stage decides (a
placement's SQL encoding counts as the store, not as JSON); a stack with none of our
frames goes by the innermost library frame (hyper: HTTP, sqlx: the store, lapin: AMQP,
tokio: the runtime). With --us-per-order (the aggregator's CPU per taken order that
`aggregator-load` printed for the same step) the shares become microseconds per order.
"""

import argparse
import collections
import re
import subprocess
import sys

# Our own code, by module: the stage a frame of it belongs to. Checked innermost frame
# first; the first rule a frame matches names its stage.
OWN = [
    ("vendor call", r"aggregator_http::vendor_client|mock_vendors"),
    ("worker (processing)", r"aggregator_core::service::(processor|sweeper|consumer)"),
    ("AMQP publish / consume", r"aggregator_rabbitmq"),
    ("outbox relay", r"aggregator_core::service::(relay|commit_feed)"),
    ("event log, streams, webhooks", r"aggregator_core::service::(event_follower|webhook)|aggregator_http::webhooks"),
    ("stock sync", r"aggregator_core::service::sync|aggregator_core::service::sync_consumer"),
    ("store: placement batch SQL", r"aggregator_postgres"),
    ("group commit (batcher)", r"aggregator_core::service::(batcher|group_commit)"),
    ("planning (catalog reads)", r"aggregator_core::service::(planning|recent_reads|cached_catalog|catalog)|aggregator_core::domain::(reserving|planned)"),
    ("order service (checks, ids)", r"aggregator_core::service::orders|aggregator_core::domain"),
    ("cache: rate limit, Redis", r"aggregator_core::service::rate_limiter|aggregator_redis"),
    ("telemetry, metrics", r"aggregator_core::service::telemetry|aggregator_http::ops"),
    ("HTTP: middleware", r"aggregator_http::api::(middleware|admission|access_log|request_id|drain)"),
    ("HTTP: handler, JSON", r"aggregator_http::api"),
]

# Libraries, when no frame of our own code names a stage. Innermost frame first.
LIBRARIES = [
    ("HTTP: hyper, axum", r"\bhyper|\baxum|\bhttparse|\btower|\bh2::|\bhttp::"),
    ("HTTP: handler, JSON", r"\bserde_json"),
    ("store: placement batch SQL", r"\bsqlx"),
    ("AMQP publish / consume", r"\blapin|\bamq_protocol"),
    ("cache: rate limit, Redis", r"\bredis::"),
    ("telemetry, metrics", r"\bmetrics|\btracing"),
    ("tokio runtime (scheduling, timers, I/O driver)", r"\btokio::|\bmio::"),
    ("allocator", r"\bmi_|mimalloc|\bmalloc|\bfree\b"),
]

OWN = [(stage, re.compile(pattern)) for stage, pattern in OWN]
LIBRARIES = [(stage, re.compile(pattern)) for stage, pattern in LIBRARIES]


def samples(path):
    """Yields each sample's frames, innermost first, as symbol names."""
    command = ["perf", "script", "-i", path, "--no-inline", "-F", "comm,tid,ip,sym,dso"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, errors="replace") as perf:
        frames = None
        for line in perf.stdout:
            if not line.strip():
                # The blank line after a sample's stack.
                if frames is not None:
                    yield frames
                frames = None
            elif line[0].isspace():
                # One frame: address, symbol (and the object it is in).
                if frames is not None:
                    parts = line.strip().split(None, 1)
                    frames.append(parts[1] if len(parts) > 1 else parts[0])
            else:
                # A sample's header line (command and thread).
                if frames is not None:
                    yield frames
                frames = []
        if frames is not None:
            yield frames
        if perf.wait() != 0:
            sys.exit(f"perf script failed on {path}")


def stage_of(frames):
    for frame in frames:
        for stage, pattern in OWN:
            if pattern.search(frame):
                return stage
    for frame in frames:
        for stage, pattern in LIBRARIES:
            if pattern.search(frame):
                return stage
    return "other"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile")
    parser.add_argument("--us-per-order", type=float, default=None)
    parser.add_argument("--top", type=int, default=0, help="also list the K commonest innermost frames of 'other'")
    args = parser.parse_args()
    counts = collections.Counter()
    unplaced = collections.Counter()
    total = 0
    for frames in samples(args.profile):
        if not frames:
            continue
        total += 1
        stage = stage_of(frames)
        counts[stage] += 1
        if stage == "other":
            unplaced[frames[0]] += 1
    if total == 0:
        sys.exit(f"no samples in {args.profile}")
    header = "| stage | share of the aggregator's CPU |"
    rule = "|---|---:|"
    if args.us_per_order is not None:
        header += " µs per order |"
        rule += "---:|"
    print(header)
    print(rule)
    for stage, count in counts.most_common():
        row = f"| {stage} | {100.0 * count / total:.1f}% |"
        if args.us_per_order is not None:
            row += f" {args.us_per_order * count / total:.0f} |"
        print(row)
    print(f"\n{total} samples")
    if args.top:
        print("\ncommonest innermost frames of 'other':")
        for frame, count in unplaced.most_common(args.top):
            print(f"  {count:6d}  {frame}")


if __name__ == "__main__":
    main()
