#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time: CI's short run, or a longer one.
#
#   bash scripts/fuzz.sh                          # every target, 20 s each (CI)
#   SECONDS_PER_TARGET=600 bash scripts/fuzz.sh   # a longer run
#   TARGETS=stock_page bash scripts/fuzz.sh       # one target
#
# Targets (fuzz/fuzz_targets): api_request (any body to the API's write endpoints,
# through the router on in-memory backends: never a panic or a 5xx), stock_page (a
# vendor's stock page, headers and body), settings (arguments and environment of the
# binaries). A finding stops the run and fails; libFuzzer writes the input under
# fuzz/artifacts/<target>/, and `cargo fuzz run <target> <that file>` replays it.
#
# cargo-fuzz is installed once per machine, outside the clone (AGGREGATOR_TOOLS_DIR, by
# default ~/.cache/order-aggregator/tools), when it is not on the PATH. It passes
# nightly-only flags to rustc; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
# The instrumented build goes to one directory per machine too (AGGREGATOR_FUZZ_TARGET_DIR,
# by default ~/.cache/order-aggregator/fuzz-target), so a fresh clone compiles only our
# own crates again, not the third-party ones (cargo's fingerprints decide what is stale).
# The corpus grows under target/fuzz-corpus/<target>, seeded from fuzz/seeds/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SECONDS_PER_TARGET:-20}
targets=${TARGETS:-"api_request stock_page settings"}
sanitizer=${SANITIZER:-none}

cache=${XDG_CACHE_HOME:-$HOME/.cache}/order-aggregator
tools=${AGGREGATOR_TOOLS_DIR:-$cache/tools}
fuzz_target_dir=${AGGREGATOR_FUZZ_TARGET_DIR:-$cache/fuzz-target}
fuzz=$(command -v cargo-fuzz || true)
if [ -z "$fuzz" ]; then
  fuzz=$tools/bin/cargo-fuzz
  if [ ! -x "$fuzz" ]; then
    cargo install --quiet --locked --root "$tools" cargo-fuzz@0.13.2
  fi
fi
export RUSTC_BOOTSTRAP=1

for target in $targets; do
  corpus=target/fuzz-corpus/$target
  mkdir -p "$corpus"
  if [ -d "fuzz/seeds/$target" ]; then
    cp -n fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
  fi
  echo "fuzz: $target for ${seconds}s"
  log=target/fuzz-$target.log
  set +e
  "$fuzz" run --fuzz-dir fuzz --target-dir "$fuzz_target_dir" --sanitizer "$sanitizer" "$target" "$corpus" -- \
    -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" || true
  if [ "$status" != 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target found a failing input (exit $status); see fuzz/artifacts/$target/ and $log" >&2
    exit "$status"
  fi
done
echo "fuzz: every target ran ${seconds}s with no finding"
