#!/usr/bin/env bash
# make reproduce: two checkouts of this commit, in directories with different
# paths, build bit-identical binaries for both architectures (and the same
# SBOM and OCI image). Prints the sha256 of each file side by side; fails on
# any difference.
#
# When this checkout is clean (no change to a tracked file), it is the first
# of the two and one fresh clone is built besides it; otherwise two fresh
# clones of HEAD are built. The clones live under $REPRODUCE_DIR (default: a
# new directory in /tmp) and are removed afterwards unless REPRODUCE_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
tools=(runas healthcheck waitfor ready ldcheck)
say() { printf 'reproduce: %s\n' "$*" >&2; }

head=$(git rev-parse HEAD)
work=${REPRODUCE_DIR:-$(mktemp -d /tmp/dockhand-reproduce.XXXXXX)}
mkdir -p "$work"
[[ ${REPRODUCE_KEEP:-0} == 1 ]] || trap 'rm -rf "$work"' EXIT

clone() { # DIR
    say "cloning ${head:0:7} into $1"
    git clone -q --no-checkout "$here" "$1"
    git -C "$1" checkout -q --detach "$head"
}

build() { # DIR
    say "building in $1"
    (cd "$1" && scripts/dist.sh) >"$work/$(basename "$1").log" 2>&1 \
        || { cat "$work/$(basename "$1").log" >&2; say "the build in $1 failed"; exit 1; }
}

if [[ -z $(git status --porcelain --untracked-files=no) ]]; then
    a=$here
else
    say "this checkout has changes to tracked files: building two clean clones of HEAD"
    a=$work/a
    clone "$a"
fi
# A different path, of a different length, from the first.
b=$work/second-checkout/b
mkdir -p "$(dirname "$b")"
clone "$b"
build "$a"
build "$b"

files=()
for arch in x86_64 aarch64; do for t in "${tools[@]}"; do files+=("dist/$arch/$t"); done; done
files+=(dist/sbom.cdx.json dist/oci/index.json)
fail=0
printf '\nreproduce: %s, sha256 of each file\n  A: %s\n  B: %s\n' "${head:0:7}" "$a" "$b"
printf '  %-24s %-64s %-64s\n' file A B
for f in "${files[@]}"; do
    x=$(sha256sum <"$a/$f" | cut -d' ' -f1); y=$(sha256sum <"$b/$f" | cut -d' ' -f1)
    mark=same; [[ $x == "$y" ]] || { mark=DIFFERENT; fail=1; }
    printf '  %-24s %s %s %s\n' "$f" "$x" "$y" "$mark"
done
echo
if ((fail)); then
    say "the two checkouts built different files (set REPRODUCE_KEEP=1 to keep them for diffoscope)"
    exit 1
fi
say "both checkouts built the same ${#files[@]} files"
