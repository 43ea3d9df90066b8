#!/usr/bin/env bash
# The fleet figure alone (bench/run.sh also runs it after bench.py): 20 services of examples/fleet,
# each probed every second by dockhand's healthcheck, curl -f, then Python urllib, and none (the
# baseline); the CPU their cgroups spend in 60 s, per probe and for the fleet, goes into
# bench/RESULTS.md. Needs root and a Docker engine; builds its images locally (docker/images.sh:
# no registry) and removes its containers. Binaries from $DOCKHAND_BIN_DIR (default dist/x86_64).
#
#   bench/fleet.sh [--quick] [fleet.py options: --services N --seconds S --rounds R]
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'fleet: %s\n' "$*" >&2; }

if [[ $(id -u) != 0 ]]; then
    say "run as root: it reads the containers' cgroups"
    exit 1
fi
docker info >/dev/null 2>&1 || { say "no Docker engine answers 'docker info'"; exit 1; }

args=()
for a in "$@"; do
    if [[ $a == --quick ]]; then args+=(--seconds 10 --services 5); else args+=("$a"); fi
done

bins=${DOCKHAND_BIN_DIR:-dist/x86_64}
toolkit=$(docker/images.sh toolkit "$bins" dockhand-fleet/toolkit:latest)
base=$(docker/images.sh fleet)
prefix=dockhand-fleet/service
for kind in none dockhand curl python; do
    say "building $prefix-$kind"
    docker/images.sh build -q --build-arg "BASE=$base" --build-arg "DOCKHAND=$toolkit" \
        --target "$kind" -t "$prefix-$kind" examples/fleet >/dev/null
done

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
exec /usr/bin/python3 -B bench/fleet.py --image-prefix "$prefix" --commit "$commit" "${args[@]}"
