#!/usr/bin/env bash
# make bench: measure dockhand against the tools it replaces, side by side, on this machine.
# Installs the peers from Debian's packages when missing, fetches the opencv-python wheel once
# (into /var/cache/dockhand/wheels, outside the repo), then runs bench/bench.py, which writes
# bench/RESULTS.md and bench/results.svg. Binaries come from $DOCKHAND_BIN_DIR (default
# dist/x86_64, what `make dist` leaves). Arguments go to bench.py (--quick, --only SECTIONS). Then,
# on a full run, bench/fleet.sh adds the fleet figure (CPU spent on health probes) to RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'bench: %s\n' "$*" >&2; }

if [[ $(id -u) != 0 ]]; then
    say "run as root: the benchmark installs packages, chowns a test tree and drops privileges"
    exit 1
fi

# package and a file it installs; only missing packages are installed.
peers=(
    gosu:/usr/sbin/gosu
    util-linux:/usr/bin/setpriv
    tini:/usr/bin/tini-static
    dumb-init:/usr/bin/dumb-init
    catatonit:/usr/bin/catatonit
    busybox-static:/bin/busybox
    curl:/usr/bin/curl
    openssl:/usr/bin/openssl
    wget:/usr/bin/wget
    python3:/usr/bin/python3
    python3-pip:/usr/lib/python3/dist-packages/pip
    wait-for-it:/usr/bin/wait-for-it
    pax-utils:/usr/bin/lddtree
    python3-pyelftools:/usr/lib/python3/dist-packages/elftools
    libtree:/usr/bin/libtree
    hyperfine:/usr/bin/hyperfine
    findutils:/usr/bin/find
)
need=()
for p in "${peers[@]}"; do
    pkg=${p%%:*} file=${p#*:}
    # busybox (dynamic) also installs /bin/busybox: insist on the static package.
    if [[ ! -e $file ]] || ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        need+=("$pkg")
    fi
done
if ((${#need[@]})); then
    say "installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
        # One at a time, so one missing package costs only its own rows (reported as missing).
        for pkg in "${need[@]}"; do
            apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null || say "could not install $pkg"
        done
    fi
fi

wheels=/var/cache/dockhand/wheels
if ! compgen -G "$wheels/opencv_python-[0-9]*.whl" >/dev/null; then
    say "downloading the opencv-python wheel into $wheels (once)"
    mkdir -p "$wheels"
    /usr/bin/python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" opencv-python ||
        say "could not download opencv-python: its ldcheck rows will say so"
fi

# torch and the NVIDIA CUDA wheels it pulls in (about 2.8 GB, once), pinned so that every run
# measures the same install: ldcheck's "torch + CUDA install in under 1 s" target.
torch_wheels=/var/cache/dockhand/wheels-torch
torch_pin=torch==2.5.1
if [[ ! -f $torch_wheels/.complete ]] || [[ $(cat "$torch_wheels/.complete") != "$torch_pin" ]]; then
    say "downloading $torch_pin and its CUDA wheels into $torch_wheels (once, about 2.8 GB)"
    rm -rf "$torch_wheels"
    mkdir -p "$torch_wheels"
    if /usr/bin/python3 -m pip download --quiet --only-binary=:all: --python-version 3.11 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        --dest "$torch_wheels" "$torch_pin"; then
        echo "$torch_pin" >"$torch_wheels/.complete"
    else
        rm -rf "$torch_wheels"
        say "could not download $torch_pin: its ldcheck rows will say so"
    fi
fi

/usr/bin/python3 -B bench/bench.py "$@"

# The fleet figure (Docker: 20 containers, 4 x 60 s), a section of its own in RESULTS.md; on its own:
# bench/fleet.sh. A partial run (--only) leaves it out.
only=0 quick=()
for a in "$@"; do
    case $a in
        --only*) only=1 ;;
        --quick) quick=(--quick) ;;
    esac
done
if ((only == 0)); then
    if docker info >/dev/null 2>&1; then
        bench/fleet.sh "${quick[@]}"
    else
        say "no Docker engine: the fleet figure is left out"
    fi
fi
