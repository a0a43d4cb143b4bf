#!/usr/bin/env bash
# Sets up (once) the plain, uninstrumented build that scripts/demo.sh and
# scripts/check-install.sh share, and prints its folder. The demo builds only the two
# programs; the install check builds and installs the rest into build-release/stage.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-release
if [ ! -f "$build/build.ninja" ]; then
  # werror off: a user build must not fail on a newer compiler's new warning.
  meson setup "$build" --buildtype=release -Dwerror=false -Dtests=disabled -Dbenchmarks=false \
    --prefix="$PWD/$build/stage" >/dev/null
fi
echo "$build"
