#!/usr/bin/env bash
# Make sure the Rust toolchain for release builds is ready, and print which
# one `make dist` uses:
#   nightly  -> std rebuilt for size (-Zbuild-std, panic=abort): about 40% smaller
#   stable   -> the prebuilt std (bigger, same behaviour)
# DIST_TOOLCHAIN=stable|nightly forces one. Fails with a clear message when
# rustup cannot fetch what is needed.
set -euo pipefail
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
choice=${DIST_TOOLCHAIN:-auto}

if ! command -v rustup >/dev/null 2>&1; then
    echo "dist: rustup is not installed; dockhand needs rustup for the musl targets" >&2; exit 1
fi

have_nightly() { rustup toolchain list 2>/dev/null | grep -q '^nightly'; }

if [[ $choice == auto ]]; then
    if have_nightly; then choice=nightly; else choice=stable; fi
fi

add_targets() { # toolchain
    local tc=$1 missing=()
    local installed; installed=$(rustup target list --toolchain "$tc" --installed 2>/dev/null || true)
    for t in "${targets[@]}"; do grep -qx "$t" <<<"$installed" || missing+=("$t"); done
    if ((${#missing[@]})); then
        echo "dist: adding rustup targets for $tc: ${missing[*]}" >&2
        if ! rustup target add --toolchain "$tc" "${missing[@]}" >&2; then
            echo "dist: rustup could not fetch the targets ${missing[*]} for $tc; check access to the Rust distribution server" >&2
            exit 1
        fi
    fi
}

if [[ $choice == nightly ]]; then
    if ! have_nightly; then echo "dist: DIST_TOOLCHAIN=nightly but no nightly toolchain is installed" >&2; exit 1; fi
    # A nightly's musl std may not be published for every target. Rebuilding
    # std needs only rust-src and the target's musl start files and libc.a;
    # without nightly's rust-std, scripts/dist.sh takes those from the
    # toolchain below (stable), which gets every target.
    for t in "${targets[@]}"; do
        rustup target list --toolchain nightly --installed 2>/dev/null | grep -qx "$t" \
            || rustup target add --toolchain nightly "$t" >/dev/null 2>&1 \
            || echo "dist: nightly has no $t std; std for $t is rebuilt with the musl objects of $(rustup show active-toolchain | cut -d' ' -f1)" >&2
    done
    add_targets "$(rustup show active-toolchain | cut -d' ' -f1)"
    if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
        echo "dist: adding rust-src for nightly (needed to rebuild std for size)" >&2
        if ! rustup component add --toolchain nightly rust-src >&2; then
            if [[ ${DIST_TOOLCHAIN:-auto} == nightly ]]; then
                echo "dist: rustup could not fetch rust-src for nightly; run with DIST_TOOLCHAIN=stable for the larger build" >&2
                exit 1
            fi
            echo "dist: rustup could not fetch rust-src for nightly; building with stable (larger binaries)" >&2
            add_targets "$(rustup show active-toolchain | cut -d' ' -f1)"
            echo stable
            exit 0
        fi
    fi
else
    add_targets "$(rustup show active-toolchain | cut -d' ' -f1)"
fi
echo "$choice"
