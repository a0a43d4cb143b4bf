"""A real ORM beside two daemons (issue 21): the Django shop in examples/django_shop, one
SQLite file per node made by `migrate`, driven through Django's ORM with Debian's
python3-django, synced by two peerlited processes on 127.0.0.1.

Phase 1, what an app gets with Django's defaults (transactions begun deferred): 1,000
operations of every kind on node a, node b only receiving. None may fail with "database
is locked": the daemon does not write to the file in answer to the app's commits.
Phase 2, both nodes writing at once, each app begun IMMEDIATE as docs/beside-your-app.md
tells every multi-writer SQLite app to be: no "database is locked" either, every F()
increment counted on both nodes.
After each phase the nodes must converge (peerlite diff, rows and digests) and
`peerlite verify` must find nothing wrong.

Run by meson with PEERLITED and PEERLITE set; exits 77 (skipped) without Django.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

try:
    import django  # noqa: F401
except ImportError:
    print("python3-django is not installed (scripts/install-deps.sh installs it)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SHOP = os.path.normpath(os.path.join(HERE, "..", "..", "examples", "django_shop"))
PEERLITED = os.environ["PEERLITED"]
PEERLITE = os.environ["PEERLITE"]
NODES = ["a", "b"]

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shop(work, node, *args, begin="deferred", seed=1):
    env = dict(os.environ, SHOP_DB=os.path.join(work, node + ".db"), SHOP_BEGIN=begin,
               SHOP_SEED=str(seed), PYTHONPATH=SHOP, DJANGO_SETTINGS_MODULE="settings")
    return subprocess.Popen([sys.executable, *args], cwd=SHOP, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, what):
    out, err = proc.communicate(timeout=240)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed ({proc.returncode}):\n{err}")
    return out


def converge(work, logs, timeout=30):
    a, b = (os.path.join(work, n + ".db") for n in NODES)
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = subprocess.run([PEERLITE, "diff", a, b], capture_output=True, text=True)
        digests = subprocess.run([PEERLITE, "diff", "--digests", a, b], capture_output=True,
                                 text=True)
        if rows.returncode == 0 and digests.returncode == 0:
            return True
        time.sleep(0.2)
    print(rows.stdout[-2000:], digests.stdout[-2000:])
    for n in NODES:
        print(f"-- {n}.log (last lines)\n" + "".join(open(logs[n]).readlines()[-20:]))
    return False


def main():
    work = tempfile.mkdtemp(prefix="peerlite-django-")
    daemons, logs = {}, {}
    try:
        keys, ports = {}, {}
        for n in NODES:
            finish(shop(work, n, "-m", "django", "migrate", "-v0"), f"migrate on {n}")
            keys[n] = subprocess.run([PEERLITED, "--keygen", n], cwd=work, check=True,
                                     capture_output=True, text=True).stdout.strip()
            ports[n] = free_port()
        trusted = ", ".join(f'"{k}"' for k in keys.values())
        for n in NODES:
            other = "b" if n == "a" else "a"
            with open(os.path.join(work, n + ".toml"), "w") as f:
                f.write(f"""[node]
name = "{n}"
secret_key_file = "{n}.key"
[mesh]
trusted_keys = [{trusted}]
[[database]]
path = "{n}.db"
listen = "tcp://127.0.0.1:{ports[n]}"
seeds = [{{ endpoint = "tcp://127.0.0.1:{ports[other]}", public_key = "{keys[other]}" }}]
[[database.table]]
name = "shop_product"
rules = {{ stock = "counter" }}
[[database.table]]
name = "shop_note"
""")
            logs[n] = os.path.join(work, n + ".log")
            daemons[n] = subprocess.Popen([PEERLITED, "--config", n + ".toml"], cwd=work,
                                          stdout=open(logs[n], "w"), stderr=subprocess.STDOUT)
        for n in NODES:
            deadline = time.time() + 20
            while "ready:" not in open(logs[n]).read():
                if time.time() > deadline or daemons[n].poll() is not None:
                    raise SystemExit(f"peerlited {n} did not start:\n" + open(logs[n]).read())
                time.sleep(0.05)

        print("== phase 1: 1,000 ORM operations on a, Django's default (deferred) transactions")
        report = json.loads(finish(shop(work, "a", "workload.py", "seed", "1000"), "workload"))
        check(report["errors"] == [], f"no other errors ({report['errors'][:3]})")
        check(report["locked"] == 0,
              f"{report['locked']} of {report['ops'] + report['locked']} operations got "
              f"'database is locked' (expected 0; at {report['locked_at']} s)")
        check(converge(work, logs), "a and b converge (rows and digests)")

        print("== phase 2: both nodes at once, 1,000 read-then-increment transactions each, "
              "begun IMMEDIATE")
        runs = {n: shop(work, n, "workload.py", "stock", "1000", begin="immediate",
                        seed=i + 2) for i, n in enumerate(NODES)}
        reports = {n: json.loads(finish(p, f"workload on {n}")) for n, p in runs.items()}
        for n, r in reports.items():
            check(r["errors"] == [], f"{n}: no other errors ({r['errors'][:3]})")
            check(r["locked"] == 0, f"{n}: {r['locked']} 'database is locked' (expected 0)")
        check(converge(work, logs), "a and b converge (rows and digests)")
        expected = {}
        for r in reports.values():
            for pid, n in r["increments"].items():
                expected[pid] = expected.get(pid, 100) + n
        for n in NODES:
            import sqlite3
            db = sqlite3.connect(os.path.join(work, n + ".db"), timeout=5)
            got = {pid: stock for pid, stock in db.execute(
                "SELECT id, stock FROM shop_product WHERE name LIKE 'stable-%'")}
            db.close()
            check(got == expected, f"{n}: every increment counted ({got} vs {expected})")
        for n in NODES:
            verify = subprocess.run([PEERLITE, "verify", os.path.join(work, n + ".db")],
                                    capture_output=True, text=True)
            check(verify.returncode == 0, f"{n}: peerlite verify is clean {verify.stdout[-500:]}")
        for n in NODES:
            daemons[n].terminate()
            check(daemons[n].wait(timeout=20) == 0, f"peerlited {n} stopped cleanly")
    finally:
        for p in daemons.values():
            if p.poll() is None:
                p.kill()
        if failures:
            print("kept for inspection: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
