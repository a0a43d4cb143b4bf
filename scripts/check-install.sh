#!/usr/bin/env bash
# Installs peerlite into a staging prefix and builds examples/offline_todo against the
# installed library with pkg-config, as an application outside this tree would; then runs
# two copies of it that must sync a to-do item each way. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

build=$(scripts/plain-build.sh) # shared with scripts/demo.sh; its prefix is the stage
stage="$PWD/$build/stage"
rm -rf "$stage"
meson install -C "$build" --quiet >/dev/null

export PKG_CONFIG_PATH="$(dirname "$(find "$stage" -name peerlite.pc)")"
export LD_LIBRARY_PATH="$(dirname "$(find "$stage" -name 'libpeerlite.so' | head -1)")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "check-install: c++ -std=c++20 examples/offline_todo/todo.cpp \$(pkg-config --cflags --libs peerlite)"
c++ -std=c++20 examples/offline_todo/todo.cpp $(pkg-config --cflags --libs peerlite) -o "$work/todo"
for tool in peerlited peerlite; do
  "$stage/bin/$tool" --help >/dev/null
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cd "$work"
printf 'add milk\nsleep 4000\nlist\nquit\n' | ./todo --db a.db --listen "tcp://127.0.0.1:$port" >a.out 2>a.err &
sleep 0.3
printf 'add bread\nsleep 3500\nlist\nquit\n' | ./todo --db b.db --peer "tcp://127.0.0.1:$port" >b.out 2>b.err
wait
for f in a.out b.out; do
  if ! grep -q "milk" "$f" || ! grep -q "bread" "$f"; then
    echo "check-install: the two todo copies did not sync ($f):"; cat a.out a.err b.out b.err
    exit 1
  fi
done
echo "check-install: installed library, headers, pkg-config file and tools work; two todo copies synced"
