#!/usr/bin/env bash
# Checks Cargo.lock against a RustSec advisory database snapshot with cargo audit (no
# network: CI reaches only the package registries). Fails on any advisory not ignored in
# .cargo/audit.toml, and on an ignored one whose crate the build does use after all.
#
#   bash scripts/audit.sh
#   ADVISORY_DB=/path/to/advisory-db bash scripts/audit.sh
#
# cargo-audit is installed once per machine, outside the clone (AGGREGATOR_TOOLS_DIR, by
# default ~/.cache/order-aggregator/tools; built from crates.io, a few minutes), when it
# is not on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

db=${ADVISORY_DB:-}
if [ -z "$db" ]; then
  for candidate in ../shared/advisory-db /work/shared/advisory-db; do
    if [ -d "$candidate/crates" ]; then db=$candidate; break; fi
  done
fi
if [ -z "$db" ]; then
  echo "audit: no advisory database snapshot (set ADVISORY_DB, or put one at ../shared/advisory-db)" >&2
  exit 1
fi
echo "audit: $(head -n 1 "$db/SNAPSHOT.txt" 2>/dev/null || echo "$db")"

tools=${AGGREGATOR_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/order-aggregator/tools}
audit=$(command -v cargo-audit || true)
if [ -z "$audit" ]; then
  audit=$tools/bin/cargo-audit
  if [ ! -x "$audit" ]; then
    cargo install --quiet --locked --root "$tools" cargo-audit@0.22.2
  fi
fi

# The ignored advisories' crates must stay out of the build.
for crate in rsa; do
  used=$(cargo tree --quiet -i "$crate" --workspace --target all 2>/dev/null || true)
  if [ -n "$used" ]; then
    echo "audit: $crate is built now, so its ignored advisory applies:" >&2
    echo "$used" >&2
    exit 1
  fi
done

"$audit" audit --db "$db" --no-fetch --deny warnings
# The fuzz targets' own lock file (a workspace of their own).
"$audit" audit --db "$db" --no-fetch --deny warnings --file fuzz/Cargo.lock
