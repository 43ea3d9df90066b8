#!/usr/bin/env bash
# Release builds of the five tools for x86_64 and aarch64 musl: static,
# stripped, size-optimised, with their dependency list embedded
# (cargo-auditable); copied to dist/<arch>/ and shown in a size table against
# the budgets in scripts/budgets, which every binary of both architectures
# must meet. Then the SBOM (dist/sbom.cdx.json, scripts/sbom.py) and the
# multi-arch toolkit image as an OCI layout (dist/oci, scripts/oci.py).
#
# With nightly, std is rebuilt with our size settings (-Zbuild-std) for both
# targets. Rebuilding needs only rust-src plus the target's musl start files
# and libc.a: nightly's own when its rust-std for the target is installed,
# else the ones the stable toolchain ships for the target (its
# lib/self-contained directory), passed to the linker with -L.
#
# Each binary's --version names the commit, the target and the std used
# (DOCKHAND_BUILD_* below). Nothing depends on the checkout's path, so two
# clones of the same commit build the same bytes (make reproduce checks).
#
#   DIST_TOOLCHAIN=stable|nightly   force a toolchain (scripts/toolchain.sh)
#   DIST_AUDITABLE=0                build without the embedded dependency list
#                                   (to measure what it costs; not a release)
set -euo pipefail
cd "$(dirname "$0")/.."
tools=(runas healthcheck waitfor ready ldcheck)
archs=(x86_64 aarch64)

declare -A budget
while read -r t b _; do
    [[ -z $t || $t == \#* ]] && continue
    budget[$t]=$b
done <scripts/budgets
for t in "${tools[@]}"; do
    [[ ${budget[$t]:-} =~ ^[0-9]+$ ]] || { echo "dist: scripts/budgets has no budget for $t" >&2; exit 1; }
done

tc=$(scripts/toolchain.sh)

build=(build)
if [[ ${DIST_AUDITABLE:-1} != 0 ]]; then
    if ! cargo auditable --version >/dev/null 2>&1; then
        echo "dist: cargo-auditable is not installed; run make setup" >&2; exit 1
    fi
    build=(auditable build)
fi

# The commit, as `git describe` would not guarantee: the first 7 hex digits,
# "-dirty" when tracked files differ from it.
commit=unknown
if head=$(git rev-parse HEAD 2>/dev/null); then
    commit=${head:0:7}
    [[ -z $(git status --porcelain --untracked-files=no 2>/dev/null) ]] || commit+=-dirty
fi

# ring (the crypto under rustls, in healthcheck, waitfor and ready) compiles
# C and assembly for the target: Debian's gcc for x86_64 and its aarch64 cross
# gcc (gcc-aarch64-linux-gnu, from make setup) for aarch64. ring's C needs no
# libc headers, so a glibc cross compiler builds it for musl. Build paths are
# mapped away so the objects do not depend on the checkout's path.
for t in x86_64:gcc:ar aarch64:aarch64-linux-gnu-gcc:aarch64-linux-gnu-ar; do
    IFS=: read -r a cc ar <<<"$t"
    command -v "$cc" >/dev/null 2>&1 || { echo "dist: $cc is not installed (needed to build ring for $a); run make setup" >&2; exit 1; }
    export "CC_${a}_unknown_linux_musl=$cc" "AR_${a}_unknown_linux_musl=$ar" \
        "CFLAGS_${a}_unknown_linux_musl=-ffile-prefix-map=$PWD=. -ffile-prefix-map=${CARGO_HOME:-$HOME/.cargo}=/cargo"
done

declare -A used
pkgs=(); for t in "${tools[@]}"; do pkgs+=(-p "$t"); done

for arch in "${archs[@]}"; do
    triple=$arch-unknown-linux-musl
    use=$tc flags=""
    if [[ $tc == nightly ]] && ! rustup target list --toolchain nightly --installed | grep -qx "$triple"; then
        # No nightly rust-std for this target: take the musl objects from
        # the toolchain scripts/toolchain.sh added the target to.
        crt=$(rustc --print sysroot)/lib/rustlib/$triple/lib/self-contained
        if [[ -f $crt/crt1.o && -f $crt/libc.a ]]; then
            flags="-Clink-self-contained=yes -Lnative=$crt"
        else
            echo "dist: no musl start files for $triple in $crt; $arch builds with the prebuilt std (larger)" >&2
            use=stable
        fi
    fi
    if [[ $use == nightly ]]; then
        used[$arch]=rebuilt
        # Rebuild std with the same size settings as our code; keep panic
        # messages (panic=abort, not immediate-abort) so a bug says where.
        # No unwind tables: with panic=abort nothing unwinds, and .eh_frame
        # was about 10% of each binary (a panic still prints its message,
        # without a backtrace).
        DOCKHAND_BUILD_COMMIT=$commit DOCKHAND_BUILD_TARGET=$triple DOCKHAND_BUILD_STD=rebuilt \
        RUSTFLAGS="-Zlocation-detail=none -Cforce-unwind-tables=no -Ctarget-feature=+crt-static $flags" \
        cargo +nightly "${build[@]}" --quiet --release --locked -Zbuild-std=std,panic_abort \
            -Zbuild-std-features=optimize_for_size --target "$triple" --target-dir target/dist-nightly "${pkgs[@]}"
        out=target/dist-nightly/$triple/release
    else
        used[$arch]=prebuilt
        DOCKHAND_BUILD_COMMIT=$commit DOCKHAND_BUILD_TARGET=$triple DOCKHAND_BUILD_STD=prebuilt \
        cargo "${build[@]}" --quiet --release --locked --target "$triple" --target-dir target/dist-stable "${pkgs[@]}"
        out=target/dist-stable/$triple/release
    fi
    mkdir -p "dist/$arch"
    for t in "${tools[@]}"; do
        install -m 0755 "$out/$t" "dist/$arch/$t.tmp" && mv -f "dist/$arch/$t.tmp" "dist/$arch/$t"
    done
done

# The SBOM, and the multi-arch image as an OCI layout (dist/oci) from the
# binaries and the SBOM: both deterministic, both cheap.
scripts/sbom.py dist/sbom.cdx.json
scripts/oci.py dist dist/oci

# Fully static: no program interpreter, no needed libraries.
fail=0
for arch in "${archs[@]}"; do
    for t in "${tools[@]}"; do
        f=dist/$arch/$t
        if readelf -lW "$f" | grep -q 'INTERP' || readelf -dW "$f" 2>/dev/null | grep -q '(NEEDED)'; then
            echo "dist: $f is not fully static" >&2; fail=1
        fi
    done
done

printf '\ndist, bytes (git %s; std: x86_64 %s, aarch64 %s; dependency list: %s)\n' "$commit" \
    "${used[x86_64]}" "${used[aarch64]}" "$([[ ${build[0]} == auditable ]] && echo embedded || echo NOT embedded)"
printf '  %-14s %10s %10s %10s\n' tool x86_64 aarch64 budget
for t in "${tools[@]}"; do
    b=${budget[$t]} line=$(printf '  %-14s' "$t") over=()
    for arch in "${archs[@]}"; do
        s=$(stat -c %s "dist/$arch/$t")
        line+=$(printf ' %10d' "$s")
        ((s <= b)) || over+=("$arch")
    done
    line+=$(printf ' %10d' "$b")
    if ((${#over[@]})); then line+="  OVER BUDGET (${over[*]})"; fail=1; else line+="  ok"; fi
    echo "$line"
done
echo
((fail == 0)) || echo "dist: failed (see above); budgets are in scripts/budgets" >&2
exit $fail
