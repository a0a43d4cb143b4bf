#!/usr/bin/env bash
# The README's first command: installs dependencies, builds peerlited and peerlite, and
# runs a demo mesh of three daemons on 127.0.0.1 with SQLite files under ./scratch/.
# Writes are made with the plain sqlite3 shell; the output shows the nodes converging,
# a conflict decided, and a node that was offline catching up. Ends by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=build-demo
if [ ! -f "$build/build.ninja" ]; then
  # werror off: a user build must not fail on a newer compiler's new warning.
  meson setup "$build" --buildtype=release -Dwerror=false -Dtests=disabled -Dbenchmarks=false >/dev/null
fi
echo "== building peerlited and peerlite"
meson compile -C "$build" peerlited peerlite >"$build/compile.log" 2>&1 || { cat "$build/compile.log"; exit 1; }
peerlited="$PWD/$build/peer/peerlited"
peerlite="$PWD/$build/peer/peerlite"

work="$PWD/scratch/demo-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$work"
cd "$work"
echo "== scratch folder: $work"

# Every writer of a shared SQLite file needs a busy timeout (the shell's default is 0):
# the daemon takes the write lock for milliseconds at a time.
sql() { sqlite3 -cmd ".timeout 5000" "$@"; }

names=(alpha beta gamma)
declare -A port pid pub
for n in "${names[@]}"; do
  port[$n]=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pub[$n]=$("$peerlited" --keygen "$n")
  sql "$n.db" "CREATE TABLE items(id TEXT PRIMARY KEY NOT NULL, name TEXT, qty INTEGER);"
done
trusted=$(printf '"%s", ' "${pub[@]}")
for n in "${names[@]}"; do
  cat > "$n.toml" <<TOML
# peerlite demo node $n (every key is documented in docs/config.md)
[node]
name = "$n"
secret_key_file = "$n.key"

[mesh]
trusted_keys = [ ${trusted%, } ]
anti_entropy_interval_ms = 500

[[database]]
path = "$n.db"
listen = "tcp://127.0.0.1:${port[$n]}"
seeds = [ { endpoint = "tcp://127.0.0.1:${port[alpha]}", public_key = "${pub[alpha]}" } ]
[[database.table]]
name = "items"
rules = { qty = "counter" }
TOML
done

start() {
  "$peerlited" --config "$1.toml" >> "$1.log" 2>&1 &
  pid[$1]=$!
  for _ in $(seq 100); do grep -q "ready:" "$1.log" 2>/dev/null && return 0; sleep 0.05; done
  echo "peerlited $1 did not start; its log:"; cat "$1.log"; exit 1
}
stop() { kill -TERM "${pid[$1]}"; wait "${pid[$1]}" || { echo "peerlited $1 exited with $?"; exit 1; }; }
cleanup() { for n in "${names[@]}"; do kill -TERM "${pid[$n]:-}" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

show() {
  for n in "${names[@]}"; do
    printf '  %-6s %s\n' "$n" "$(sql -separator ' ' "$n.db" "SELECT group_concat(id || '=' || name || '/' || qty, '  ') FROM (SELECT * FROM items ORDER BY id)")"
  done
}
converge() { # waits until the three files hold the same rows
  for _ in $(seq 200); do
    a=$(sql alpha.db "SELECT * FROM items ORDER BY id"); b=$(sql beta.db "SELECT * FROM items ORDER BY id")
    c=$(sql gamma.db "SELECT * FROM items ORDER BY id")
    if [ "$a" = "$b" ] && [ "$b" = "$c" ]; then echo "  converged"; show; return 0; fi
    sleep 0.05
  done
  echo "  NOT converged after 10 s:"; show; exit 1
}

echo "== starting three daemons on 127.0.0.1 ports ${port[alpha]}, ${port[beta]}, ${port[gamma]}"
for n in "${names[@]}"; do start "$n"; done

echo "== 1. writes with the sqlite3 shell on alpha and beta"
sql alpha.db "INSERT INTO items VALUES ('pen', 'blue pen', 10);"
sql beta.db "INSERT INTO items VALUES ('cup', 'tea cup', 3);"
converge

echo "== 2. the same cell written on beta and gamma at once, and concurrent counter increments"
sql beta.db "UPDATE items SET name = 'red pen (beta)', qty = qty + 5 WHERE id = 'pen';" & w1=$!
sql gamma.db "UPDATE items SET name = 'green pen (gamma)', qty = qty - 2 WHERE id = 'pen';" & w2=$!
wait "$w1" "$w2"
converge
echo "  qty is 10 + 5 - 2 = 13 everywhere: counter increments add up.
  The name was written on two nodes at once; each node lists what it decided (peerlite conflicts):"
for n in "${names[@]}"; do echo "  -- $n"; "$peerlite" conflicts "$n.db" | sed "s/^/    /"; done

echo "== alpha's daemon, as its operator sees it (peerlite status)"
"$peerlite" status --config alpha.toml | sed "s/^/    /"

echo "== 3. gamma goes offline, is written to meanwhile, and comes back"
stop gamma
echo "  gamma stopped (exit status 0)"
sql gamma.db "INSERT INTO items VALUES ('lamp', 'desk lamp (written while gamma was offline)', 1);"
sql alpha.db "UPDATE items SET qty = qty + 100 WHERE id = 'cup'; DELETE FROM items WHERE id = 'pen';"
sleep 0.5
start gamma
converge

echo "== stopping the daemons"
for n in "${names[@]}"; do stop "$n"; done
trap - EXIT
echo "== done: three nodes converged; files, configs and logs are in $work"
