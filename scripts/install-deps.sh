#!/usr/bin/env bash
# Installs peerlite's build and test dependencies from Debian 12 packages.
# Idempotent and non-interactive; skips apt entirely when everything is already there.
set -euo pipefail

packages=(
  meson ninja-build g++ pkg-config cmake
  libsqlite3-dev sqlite3
  libzmq3-dev cppzmq-dev
  libmsgpack-cxx-dev libboost-dev
  catch2
  libcli11-dev libtomlplusplus-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libxxhash-dev
  python3-django
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
