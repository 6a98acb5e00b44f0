#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the supabase-js conformance suite
# against the same debug binary. Installs what the JS tests need (pinned in package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

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
