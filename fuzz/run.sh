#!/usr/bin/env bash
# `make fuzz`: build every cargo-fuzz target and run each for a bounded time.
#
#   FUZZ_SECONDS=60      seconds per target (default 60)
#   FUZZ_TARGETS="a b"   only these targets (default: all, from `cargo fuzz list`)
#   FUZZ_RSS_MB=1024     libFuzzer -rss_limit_mb: an input that makes a parser use
#                        more memory than this is a crash (unbounded allocation)
#   FUZZ_TIMEOUT=10      libFuzzer -timeout: seconds one input may take (a hang)
#
# The committed seed corpus in fuzz/corpus/<target> is only read. New inputs go
# to a working corpus under fuzz/target/corpus/<target> (gitignored, kept between
# runs so each run starts where the last one stopped), so the repository stays
# small. To fold the interesting ones back into the seeds, minimise by hand:
#   cargo +nightly fuzz cmin --target-dir fuzz/target <target> fuzz/target/corpus/<target>
# and copy a few small files into fuzz/corpus/<target>.
#
# A crash, panic, leak, timeout or out-of-memory fails the run (exit 1) after all
# targets ran; the input is kept under fuzz/artifacts/<target>/ and the command
# to reproduce it is printed. Every crash becomes a regression test with its
# input under tests/fixtures/fuzz/ (see SECURITY.md).
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
RSS_MB=${FUZZ_RSS_MB:-1024}
TIMEOUT=${FUZZ_TIMEOUT:-10}
TD="$PWD/fuzz/target"
unset CARGO_TARGET_DIR

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 1
fi

cd fuzz
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
echo "fuzz: building ${targets//$'\n'/ }"
cargo +nightly fuzz build --target-dir "$TD" >/dev/null

failed=()
summary=()
for t in $targets; do
    work="$TD/corpus/$t"
    mkdir -p "$work" "artifacts/$t"
    log="$TD/$t.log"
    echo "fuzz: $t for ${SECONDS_EACH}s"
    rc=0
    # First corpus dir receives new inputs; the committed seeds are read only.
    seeds=()
    [ -d "corpus/$t" ] && seeds=("corpus/$t")
    cargo +nightly fuzz run --target-dir "$TD" "$t" "$work" "${seeds[@]}" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" \
        -timeout="$TIMEOUT" -print_final_stats=1 >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    summary+=("$(printf '%-10s %10s execs  cov %6s  corpus %5s files  %s' "$t" "${execs:-?}" "${cov:-?}" \
        "$(find "$work" -type f | wc -l)" "$([ "$rc" = 0 ] && echo ok || echo "FAILED rc=$rc")")")
    if [ "$rc" != 0 ]; then
        failed+=("$t")
        echo "fuzz: $t FAILED (exit $rc); the end of its log ($PWD/$log):" >&2
        grep -v '^#[0-9]' "$log" | tail -40 >&2
        for a in $(ls -t "artifacts/$t" 2>/dev/null | head -3); do
            echo "fuzz: input: fuzz/artifacts/$t/$a  reproduce: (cd fuzz && cargo +nightly fuzz run $t artifacts/$t/$a)" >&2
        done
    fi
done

echo
echo "fuzz summary (${SECONDS_EACH}s per target):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all targets ran clean"
