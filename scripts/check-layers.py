#!/usr/bin/env python3
"""Checks peerlite's layering (docs/design/layers.md) against the build.

Reads the libraries and their sources from `meson introspect BUILD --targets`, and fails
when a library's source includes a header of a layer it may not use: a public header
(<peerlite/LAYER/...>, <peerlite/status.hpp> being base) or another folder's internal one
("../LAYER/..."). The layers a library may use are the ones its meson.build declares
through declare_dependency(); this table must say the same, and this check keeps both
honest. Usage: check-layers.py BUILD_DIR. Exit status 0 when clean, 1 with a line per
offending include.
"""
import json
import os
import re
import subprocess
import sys

# Each layer and the layers below it that it may use (directly or not).
ALLOWED = {
    "base": set(),
    "crdt": {"base"},
    "wire": {"crdt", "base"},
    "sql": {"crdt", "base"},
    "schema": {"sql", "crdt", "base"},
    "store": {"schema", "sql", "wire", "crdt", "base"},
    "inspect": {"store", "schema", "sql", "wire", "crdt", "base"},
    "operate": {"inspect", "store", "schema", "sql", "wire", "crdt", "base"},
    "transport": {"wire", "crdt", "base"},
    "peer": {"transport", "inspect", "store", "schema", "sql", "wire", "crdt", "base"},
}
# Libraries (meson target names) and the layer each belongs to.
LIBRARIES = {
    "peerlite_base": "base",
    "peerlite_crdt": "crdt",
    "peerlite_wire": "wire",
    "peerlite_sql": "sql",
    "peerlite_schema": "schema",
    "peerlite_store": "store",
    "peerlite_inspect": "inspect",
    "peerlite_operate": "operate",
    "peerlite_transport": "transport",
    "peerlite_peer": "peer",
    "peerlite_config": "peer",
    "peerlite_daemon": "peer",
}
PUBLIC = re.compile(r'^\s*#include <peerlite/(?:(\w+)/)?[\w.]+>')
INTERNAL = re.compile(r'^\s*#include "\.\./(\w+)/')
LOCAL = re.compile(r'^\s*#include "([\w.]+)"')


def layer_of_include(line):
    m = PUBLIC.search(line)
    if m:
        return m.group(1) or "base"
    m = INTERNAL.search(line)
    if m:
        return m.group(1)
    return None


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    targets = json.loads(subprocess.run(
        ["meson", "introspect", sys.argv[1], "--targets"],
        check=True, capture_output=True, text=True).stdout)
    seen, problems = set(), []
    for target in targets:
        layer = LIBRARIES.get(target["name"])
        if layer is None:
            continue
        seen.add(target["name"])
        files = [f for group in target["target_sources"] for f in group["sources"]]
        # The folder's own headers count as its sources too.
        todo, done = list(files), set()
        while todo:
            path = todo.pop()
            if path in done or not os.path.exists(path):
                continue
            done.add(path)
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    used = layer_of_include(line)
                    if used is not None and used != layer and used not in ALLOWED[layer]:
                        problems.append(f"{path}:{number}: layer '{layer}' ({target['name']}) "
                                        f"includes '{used}': {line.strip()}")
                    m = LOCAL.search(line)
                    if m:
                        todo.append(os.path.join(os.path.dirname(path), m.group(1)))
    missing = set(LIBRARIES) - seen
    if missing:
        problems.append("libraries not found in the build: " + ", ".join(sorted(missing)))
    for p in problems:
        print(p)
    if not problems:
        print(f"layers: {len(seen)} libraries, every include within its layer's reach")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
