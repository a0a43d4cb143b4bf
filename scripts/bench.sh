#!/usr/bin/env bash
# The benchmark command: installs dependencies, builds a release build, runs every
# benchmark program and prints each one's summary table; every figure stands beside a
# baseline measured in the same run (plain SQLite, a raw ZeroMQ round trip, a bare
# compare). The full run takes 6-8 minutes on 2 vCPU, --quick about 2 (plus the first
# build, ~10 minutes with one compiler process). The whole output is
# also kept in build-bench/bench-<time>.log.
#
# Usage: scripts/bench.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
case "${1:-}" in
  --quick) quick=true ;;
  "") ;;
  *) echo "usage: scripts/bench.sh [--quick]" >&2; exit 2 ;;
esac

scripts/install-deps.sh
build=build-bench
if [ ! -f "$build/build.ninja" ]; then
  # werror off: a user build must not fail on a newer compiler's new warning.
  meson setup "$build" --buildtype=release -Dwerror=false -Dtests=disabled -Dbenchmarks=true >/dev/null
fi
echo "== building (release)"
# BENCH_JOBS=1 keeps the build from crowding a shared machine.
meson compile -C "$build" ${BENCH_JOBS:+-j "$BENCH_JOBS"} >"$build/compile.log" 2>&1 || { cat "$build/compile.log"; exit 1; }

if $quick; then
  store_rows=20000 mesh_writes=100 catchup_rows=100000 bootstrap_rows=200000 wal_seconds=30
  neighbour_transactions=2000
else
  store_rows=100000 mesh_writes=200 catchup_rows=100000 bootstrap_rows=1000000 wal_seconds=180
  neighbour_transactions=10000
fi
log="$PWD/$build/bench-$(date -u +%Y%m%d-%H%M%S).log"
export PEERLITED="$PWD/$build/peer/peerlited"
b="$build/benchmarks"
{
  echo "== peerlite benchmarks $($quick && echo '(quick)') $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "   machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
  echo "   SQLite $(sqlite3 --version | cut -d' ' -f1); other work on the machine changes absolute rates, not the ratios"
  echo
  echo "== crdt_merge_bench"; "$b/crdt_merge_bench"; echo
  echo "== store_bench $store_rows"; "$b/store_bench" "$store_rows"; echo
  echo "== mesh_bench $mesh_writes $catchup_rows"; "$b/mesh_bench" "$mesh_writes" "$catchup_rows"; echo
  echo "== bootstrap_bench --rows $bootstrap_rows"; "$b/bootstrap_bench" --rows "$bootstrap_rows"; echo
  echo "== wal_bench --seconds $wal_seconds"; "$b/wal_bench" --seconds "$wal_seconds"; echo
  echo "== neighbour_bench --transactions $neighbour_transactions"; "$b/neighbour_bench" --transactions "$neighbour_transactions"; echo
  echo "== done $(date -u '+%H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg); output kept in $log"
} 2>&1 | tee "$log"
