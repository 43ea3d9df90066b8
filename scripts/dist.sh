#!/usr/bin/env bash
# Release builds of the five tools for x86_64 and aarch64 musl: static,
# stripped, size-optimised; copied to dist/<arch>/ and shown in a size table
# against the budgets.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=(runas healthcheck waitfor ready ldcheck)
declare -A budget=([runas]=450 [healthcheck]=700 [waitfor]=700 [ready]=700 [ldcheck]=900)

tc=$(scripts/toolchain.sh)
declare -A used
pkgs=(); for t in "${tools[@]}"; do pkgs+=(-p "$t"); done

for arch in x86_64 aarch64; do
    triple=$arch-unknown-linux-musl
    use=$tc
    if [[ $tc == nightly ]] && ! rustup target list --toolchain nightly --installed | grep -qx "$triple"; then
        use=stable
    fi
    used[$arch]=$use
    if [[ $use == nightly ]]; then
        # Rebuild std with the same size settings as our code; keep panic
        # messages (panic=abort, not immediate-abort) so a bug says where.
        RUSTFLAGS="-Zlocation-detail=none -Ctarget-feature=+crt-static" \
        cargo +nightly build --quiet --release --locked -Zbuild-std=std,panic_abort \
            -Zbuild-std-features=optimize_for_size --target "$triple" --target-dir target/dist-nightly "${pkgs[@]}"
        out=target/dist-nightly/$triple/release
    else
        cargo build --quiet --release --locked --target "$triple" --target-dir target/dist-stable "${pkgs[@]}"
        out=target/dist-stable/$triple/release
    fi
    mkdir -p "dist/$arch"
    for t in "${tools[@]}"; do
        install -m 0755 "$out/$t" "dist/$arch/$t.tmp" && mv -f "dist/$arch/$t.tmp" "dist/$arch/$t"
    done
done

# Fully static: no program interpreter, no needed libraries.
fail=0
for arch in x86_64 aarch64; do
    for t in "${tools[@]}"; do
        f=dist/$arch/$t
        if readelf -lW "$f" | grep -q 'INTERP' || readelf -dW "$f" 2>/dev/null | grep -q '(NEEDED)'; then
            echo "dist: $f is not fully static" >&2; fail=1
        fi
    done
done

printf '\ndist, bytes (x86_64: %s std, aarch64: %s std)\n' "${used[x86_64]}" "${used[aarch64]}"
printf '  %-20s %10s %10s %10s\n' tool x86_64 aarch64 budget
for t in "${tools[@]}"; do
    x=$(stat -c %s "dist/x86_64/$t"); a=$(stat -c %s "dist/aarch64/$t"); b=$((budget[$t] * 1000))
    mark=ok; ((x <= b)) || mark="OVER BUDGET"
    printf '  %-20s %10d %10d %10d  %s\n' "$t" "$x" "$a" "$b" "$mark"
done
echo
exit $fail
