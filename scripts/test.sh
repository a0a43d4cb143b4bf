#!/usr/bin/env bash
# The README's test command: installs dependencies, builds peerlite with AddressSanitizer
# and UndefinedBehaviorSanitizer, runs the whole test suite and ends with the line
# "N passed, N failed" (the test programs, plus the install check: the example built
# against the installed library with pkg-config). Exit status 0 only if every test passed.
#
# Usage: scripts/test.sh [extra 'meson test' arguments, e.g. --suite crdt]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

build=build-test
if [ -f "$build/build.ninja" ]; then
  meson setup --reconfigure "$build" >/dev/null
else
  # -O0: instrumented code at -O1 takes three times as long to compile (CLI11, Catch2 and
  # nlohmann-json templates), and the suite is dominated by waiting on sockets, not CPU;
  # benchmarks are built by ordinary builds (README), not instrumented ones.
  meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false -Doptimization=0 \
    -Dbenchmarks=false >/dev/null
fi
meson compile -C "$build"

status=0
meson test -C "$build" --print-errorlogs "$@" || status=$?

# The installed library as an outside application sees it (skipped when a suite is chosen).
install_result=skipped
if [ $# -eq 0 ]; then
  if scripts/check-install.sh; then install_result=passed; else install_result=failed; status=1; fi
fi

python3 - "$build/meson-logs/testlog.json" "$install_result" <<'PY'
import json, sys
passed = failed = skipped = 0
if sys.argv[2] == "passed":
    passed += 1
elif sys.argv[2] == "failed":
    failed += 1
with open(sys.argv[1]) as log:
    for line in log:
        result = json.loads(line)["result"]
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit "$status"
