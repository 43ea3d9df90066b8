#!/usr/bin/env bash
# `make audit`: check Cargo.lock (and fuzz/Cargo.lock) against the RustSec
# advisory database with cargo-audit. Exit 0 clean, 1 advisories found,
# 3 the database could not be had (never reported as clean).
#
#   AUDIT_DB=DIR   a local copy of https://github.com/rustsec/advisory-db
#                  (used with --no-fetch); default: cargo-audit's own
#                  ~/.cargo/advisory-db, fetched from GitHub.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo audit --version >/dev/null 2>&1; then
    echo "audit: installing cargo-audit from crates.io" >&2
    cargo install cargo-audit --locked
fi

args=()
if [ -n "${AUDIT_DB:-}" ]; then
    args+=(--db "$AUDIT_DB" --no-fetch)
fi

rc=0
for lock in Cargo.lock fuzz/Cargo.lock; do
    [ -f "$lock" ] || continue
    echo "audit: $lock"
    log=$(mktemp)
    if cargo audit "${args[@]}" --file "$lock" 2>&1 | tee "$log"; then
        :
    elif grep -qiE "couldn't fetch|failed to fetch|error fetching|resolve host|unable to access|git operation failed|error loading advisory database|network" "$log"; then
        echo "audit: the advisory database could not be fetched (it lives on GitHub); $lock was NOT checked." >&2
        echo "audit: set AUDIT_DB to a local copy of github.com/rustsec/advisory-db to check offline." >&2
        rm -f "$log"
        exit 3
    else
        rc=1
    fi
    rm -f "$log"
done
[ "$rc" = 0 ] && echo "audit: no advisories"
exit "$rc"
