#!/usr/bin/env bash
# The README's first command: installs dependencies, builds peerlited and peerlite, and
# runs a demo mesh of three daemons on 127.0.0.1 with SQLite files under ./scratch/.
# Writes are made with the plain sqlite3 shell; the output shows the nodes converging,
# a conflict decided, and a node that was offline catching up. Ends by itself.
# Every step is checked: a mesh that does not converge to the expected rows, a daemon that
# dies or exits non-zero, or a conflict nobody lists makes it exit 1 (CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# One plain (uninstrumented) build, shared with scripts/check-install.sh.
build=$(scripts/plain-build.sh)
echo "== building peerlited and peerlite"
# Path-qualified target names: the CLI executable and the shared library are both named
# "peerlite", and a bare name is ambiguous to meson.
meson compile -C "$build" peer/peerlited:executable peer/peerlite:executable \
  >"$build/compile.log" 2>&1 || { cat "$build/compile.log"; exit 1; }
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
  fail "peerlited $1 did not start within 5 s"
}
stop() { kill -TERM "${pid[$1]}"; local rc=0; wait "${pid[$1]}" || rc=$?; pid[$1]=""
  [ "$rc" -eq 0 ] || fail "peerlited $1 exited with status $rc"; }
cleanup() { for n in "${names[@]}"; do [ -n "${pid[$n]:-}" ] && kill -TERM "${pid[$n]}" 2>/dev/null; done; wait 2>/dev/null || true; }
trap cleanup EXIT
fail() {
  echo "DEMO FAILED: $*"
  for n in "${names[@]}"; do echo "-- $n.log (last lines)"; tail -n 20 "$n.log" 2>/dev/null; done
  exit 1
}
alive() { for n in "${names[@]}"; do
  [ -z "${pid[$n]:-}" ] || kill -0 "${pid[$n]}" 2>/dev/null || fail "peerlited $n died"; done; }
expect() { # expect NODE SQL VALUE: the query's result on that node must be VALUE
  local got; got=$(sql "$1.db" "$2"); [ "$got" = "$3" ] || fail "$1: '$2' gave '$got', expected '$3'"; }

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
    alive
    sleep 0.05
  done
  show; fail "the three nodes did not converge within 10 s"
}

echo "== starting three daemons on 127.0.0.1 ports ${port[alpha]}, ${port[beta]}, ${port[gamma]}"
for n in "${names[@]}"; do start "$n"; done

echo "== 1. writes with the sqlite3 shell on alpha and beta"
sql alpha.db "INSERT INTO items VALUES ('pen', 'blue pen', 10);"
sql beta.db "INSERT INTO items VALUES ('cup', 'tea cup', 3);"
converge
for n in "${names[@]}"; do expect "$n" "SELECT count(*) FROM items" 2; done

echo "== 2. the same cell written on beta and gamma concurrently, and concurrent counter increments"
# Concurrent: neither node has seen the other's write when it makes its own. Two shells
# started "at once" can still run one after the other (then there is no conflict), so gamma
# is taken offline for its write, and beta's write comes first in wall time.
stop gamma
sql beta.db "UPDATE items SET name = 'red pen (beta)', qty = qty + 5 WHERE id = 'pen';"
sleep 0.01
sql gamma.db "UPDATE items SET name = 'green pen (gamma)', qty = qty - 2 WHERE id = 'pen';"
start gamma
converge
for n in "${names[@]}"; do expect "$n" "SELECT qty FROM items WHERE id = 'pen'" 13; done
echo "  qty is 10 + 5 - 2 = 13 everywhere: counter increments add up.
  The name was written on two nodes at once; each node lists what it decided (peerlite conflicts):"
listed=0
for n in "${names[@]}"; do
  echo "  -- $n"
  out=$("$peerlite" conflicts "$n.db") || fail "peerlite conflicts $n.db failed"
  echo "$out" | sed "s/^/    /"
  # A node that met the winner before the loser only sees the loser as superseded and
  # records nothing; at least one node decided between the two and lists it.
  if grep -qF "items[pen].name" <<<"$out"; then listed=1; fi
done
[ "$listed" -eq 1 ] || fail "no node lists the conflict on items.name"

echo "== alpha's daemon, as its operator sees it (peerlite status)"
status_out=$("$peerlite" status --config alpha.toml) || fail "peerlite status failed"
echo "$status_out" | sed "s/^/    /"
grep -q "alive" <<<"$status_out" || fail "alpha's status lists no live member"

echo "== 3. gamma goes offline, is written to meanwhile, and comes back"
stop gamma
echo "  gamma stopped (exit status 0)"
sql gamma.db "INSERT INTO items VALUES ('lamp', 'desk lamp (written while gamma was offline)', 1);"
sql alpha.db "UPDATE items SET qty = qty + 100 WHERE id = 'cup'; DELETE FROM items WHERE id = 'pen';"
sleep 0.5
start gamma
converge
for n in "${names[@]}"; do
  expect "$n" "SELECT count(*) FROM items WHERE id = 'pen'" 0
  expect "$n" "SELECT qty FROM items WHERE id = 'cup'" 103
  expect "$n" "SELECT qty FROM items WHERE id = 'lamp'" 1
done

echo "== stopping the daemons"
for n in "${names[@]}"; do stop "$n"; done
trap - EXIT
echo "== done: three nodes converged; files, configs and logs are in $work"
