#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine of this kind (Debian, Python 3.11,
# Node.js): Debian packages, the Python virtualenv, the npm toolchain (solc, OpenZeppelin,
# anvil). Idempotent and quick when nothing changed: each step keeps a stamp of its inputs.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# libzbar0: QR decoding (pyzbar); fonts-noto-cjk: Chinese text on printed invoices;
# postgresql: the tests run the PostgreSQL variant against a real server they start;
# chromium: the browser tests drive it with Playwright (no browser download).
APT_PACKAGES=(nodejs npm libzbar0 fonts-noto-cjk postgresql chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
# node and npm may come from outside Debian (nvm, NodeSource): do not reinstall them then.
if command -v node >/dev/null && command -v npm >/dev/null; then
  keep=()
  for pkg in "${missing[@]}"; do [[ "$pkg" == nodejs || "$pkg" == npm ]] || keep+=("$pkg"); done
  missing=("${keep[@]}")
fi
if ((${#missing[@]})); then
  echo "setup: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

stamp_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

py_stamp=$(stamp_of pyproject.toml)
if [[ ! -x .venv/bin/python || "$(cat .venv/.stamp 2>/dev/null)" != "$py_stamp" ]]; then
  echo "setup: python virtualenv"
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$py_stamp" > .venv/.stamp
fi

npm_stamp=$(stamp_of package.json package-lock.json)
if [[ ! -d node_modules || "$(cat node_modules/.stamp 2>/dev/null)" != "$npm_stamp" ]]; then
  echo "setup: npm ci (solc, OpenZeppelin, anvil: exact versions from package-lock.json)"
  # `npm ci` installs exactly the lock file and never writes it, so setup leaves the tracked
  # tree as it was. The lock file lists anvil's binary for every platform (optional packages;
  # npm installs only this machine's), as `npm install` writes it on any machine.
  npm ci --no-audit --no-fund --loglevel=error
  stamp_of package.json package-lock.json > node_modules/.stamp
fi
