#!/usr/bin/env bash
# make demo: the tools working together, narrated with timestamps.
#
# With Docker: build the toolkit image and the slim example, run it with a
# restart policy and a 1 s probe interval, then break its health endpoint and
# watch healthcheck signal PID 1 (runas --init) after 3 failures, the
# container exit, the restart policy bring it back, healthy again, with the
# data in its volume intact.
#
# Without Docker (or with DOCKHAND_DEMO=ns): the same story in Linux namespaces
# (unshare + chroot into a busybox-static root with the dist binaries); needs
# root. DOCKHAND_BIN_DIR picks other binaries than dist/.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=${EPOCHREALTIME/./}
elapsed() { local us=$((${EPOCHREALTIME/./} - t0)); printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10)); }
say() { printf '%s %6ss  %s\n' "$(date -u +%H:%M:%S.%3N)" "$(elapsed)" "$*"; }
die() { say "demo: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------
docker_demo() {
    name=dockhand-demo vol=dockhand-demo-data image=dockhand-example-slim events="" dies=""
    cleanup() {
        if [[ -n $events ]]; then kill "$events" 2>/dev/null || true; fi
        docker rm -f "$name" >/dev/null 2>&1 || true
        docker volume rm -f "$vol" >/dev/null 2>&1 || true
        if [[ -n $dies ]]; then rm -f "$dies"; fi
    }
    trap cleanup EXIT
    cleanup

    say "building images (cached after the first run; the first builds a Debian base with debootstrap)"
    local toolkit base
    toolkit=$(docker/images.sh toolkit "${DOCKHAND_BIN_DIR:-dist}" dockhand:latest)
    base=$(docker/images.sh python3)
    docker/images.sh build -q --build-arg "BASE=$base" --build-arg "DOCKHAND=$toolkit" -t "$image" examples/slim >/dev/null
    say "images: $toolkit ($(docker image inspect -f '{{.Size}}' "$toolkit" | numfmt --to=iec) of static tools), $image on $base"

    dies=$(mktemp)
    docker events --filter "container=$name" --filter event=die --format '{{.Actor.Attributes.exitCode}}' >"$dies" &
    events=$!

    say "starting: docker run --restart unless-stopped --health-interval 1s -v $vol:/app/data $image"
    docker run -d --name "$name" --restart unless-stopped --health-interval 1s \
        -v "$vol:/app/data" -p 127.0.0.1::8000 "$image" >/dev/null
    say "  ENTRYPOINT waitfor -- runas --chown /app/data --init app --   CMD ready --when .../health -- python3 app.py"
    wait_health healthy 60
    local port
    port=$(docker port "$name" 8000/tcp | head -1 | sed 's/.*://')
    say "healthy (probe: $(last_probe))"
    docker logs "$name" 2>&1 | grep -E '^(runas|waitfor|ready|app):|APP_READY' | sed 's/^/           log | /' || true
    say "service identity: $(curl -fsS "http://127.0.0.1:$port/")"
    curl -fsS -X POST --data "written before the failure" "http://127.0.0.1:$port/notes" >/dev/null
    say "stored a note in the volume (/app/data/notes.txt)"

    say "failure injected: POST /fail, /health now answers 503"
    curl -fsS -X POST "http://127.0.0.1:$port/fail" >/dev/null
    # Print each probe as Docker records it, until the container is restarted.
    local seen="" start out restarts=0
    while ((restarts == 0)); do
        while IFS=$'\t' read -r start out; do
            [[ -z $start || $seen == *"$start"* ]] && continue
            seen+=" $start"
            out=$(printf '%b' "${out:1:${#out}-2}" | grep -E '^(un)?healthy: ' | head -1)
            say "  probe: $out"
            [[ $out == *"sending SIG"* ]] && say "PID 1 signalled by healthcheck (--kill-pid1: 3 failures in a row, PID 1 older than its 10s start period)"
        done < <(docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}{{.Start}}{{"\t"}}{{json .Output}}{{"\n"}}{{end}}{{end}}' "$name" 2>/dev/null)
        restarts=$(docker inspect -f '{{.RestartCount}}' "$name")
        if ((restarts == 0)); then sleep 0.3; fi
        (((${EPOCHREALTIME/./} - t0) > 120000000)) && die "no restart after 2 minutes (last probe: ${out:-none})"
    done
    local code
    code=$(head -1 "$dies")
    say "container exited with code ${code:-?} (the app shut down on the forwarded SIGTERM)"
    docker logs "$name" 2>&1 | grep -E 'SIGTERM|stopped' | tail -2 | sed 's/^/           log | /' || true
    say "restart policy brought it back (RestartCount $restarts)"
    wait_health healthy 60
    port=$(docker port "$name" 8000/tcp | head -1 | sed 's/.*://')
    say "healthy again (probe: $(last_probe))"
    say "data in the volume intact: notes = $(curl -fsS "http://127.0.0.1:$port/notes" | tr '\n' ' ')| $(curl -fsS "http://127.0.0.1:$port/" | grep -o '"boots": [0-9]*')"
    say "done; removing the demo container and volume"
}

wait_health() {
    local want=$1 limit=$2 end=$((SECONDS + $2)) h
    while :; do
        h=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' dockhand-demo)
        [[ $h == "$want" ]] && return 0
        ((SECONDS < end)) || die "not $want after ${limit}s (now: $h); docker logs dockhand-demo:
$(docker logs dockhand-demo 2>&1 | tail -20)"
        sleep 0.2
    done
}

last_probe() {
    docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}{{.Output}}{{end}}{{end}}' dockhand-demo |
        grep -E '^(un)?healthy: ' | tail -1
}

# ---------------------------------------------------------------------------
# Without Docker: PID + mount namespaces, a chroot, and a loop playing the
# restart policy; healthcheck runs inside the namespace through nsenter.
ns_demo() {
    [[ $(id -u) == 0 ]] || die "the namespace demo needs root (unshare, chroot)"
    local bb=/bin/busybox port restarts=0 bin=${DOCKHAND_BIN_DIR:-dist/$(uname -m)}
    root="" pid=""
    [[ -x $bb ]] || die "needs busybox-static (/bin/busybox): make setup installs it"
    command -v unshare >/dev/null && command -v nsenter >/dev/null || die "needs unshare and nsenter (util-linux)"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    root=$(mktemp -d /tmp/dockhand-demo.XXXXXX)
    chmod 0755 "$root"
    trap 'if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; rm -rf "$root"' EXIT
    mkdir -p "$root"/{bin,etc,tmp,proc,data,www,usr/local/bin}
    chmod 1777 "$root/tmp"
    cp "$bb" "$root/bin/busybox"
    chroot "$root" /bin/busybox --install -s /bin
    cp "$bin"/{runas,healthcheck,waitfor,ready,ldcheck} "$root/usr/local/bin/"
    printf 'root:x:0:0::/root:/bin/sh\napp:x:999:999::/data:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\napp:x:999:\n' >"$root/etc/group"
    say "namespace root: $root (busybox-static + the dist binaries); service: busybox httpd on 127.0.0.1:$port"

    start() {
        say "starting: unshare --pid --mount, chroot, runas --chown /data --chown /www --init app -- ready ... -- httpd"
        unshare --pid --fork --kill-child --mount --propagation private /bin/sh -c "
            mount -t proc proc '$root/proc' && exec chroot '$root' /bin/env -i PATH=/usr/local/bin:/bin /usr/local/bin/waitfor --quiet file:///www -- \
              runas --chown /data --chown /www --init app -- \
              sh -c 'date >>/data/boots; echo ok >/www/health; exec ready --when http://127.0.0.1:$port/health \
                     --file /tmp/ready --print APP_READY -- httpd -f -p 127.0.0.1:$port -h /www'" &
        pid=$!
    }
    probe() { # healthcheck, run inside the namespace as Docker would run it
        local inner
        inner=$(cat /proc/"$pid"/task/*/children 2>/dev/null | awk '{print $1}' | head -1)
        [[ -n $inner ]] || return 1
        nsenter --target "$inner" --pid --mount --root --wd \
            /usr/local/bin/healthcheck --kill-pid1 --kill-after 3 "http://127.0.0.1:$port/health" 2>&1 | grep -v '^healthcheck: '
    }
    start
    local i out
    for i in $(seq 50); do out=$(probe) && break; sleep 0.2; done
    [[ $out == healthy:* ]] || die "the service did not become healthy: $out"
    say "healthy (probe: $out)"
    echo "written before the failure" >"$root/data/note"
    say "stored a note in /data"
    say "failure injected: /www/health removed, httpd answers 404"
    rm -f "$root/www/health"
    while kill -0 "$pid" 2>/dev/null; do
        out=$(probe || true)
        [[ -n $out ]] && say "  probe: $out"
        [[ $out == *"sending SIG"* ]] && say "PID 1 signalled by healthcheck after 3 failures"
        sleep 1
    done
    wait "$pid" && code=0 || code=$?
    say "namespace exited with code $code"
    restarts=$((restarts + 1))
    say "restart policy (this loop) brings it back: restart $restarts"
    start
    for i in $(seq 50); do out=$(probe) && break; sleep 0.2; done
    [[ $out == healthy:* ]] || die "the service did not become healthy again: $out"
    say "healthy again (probe: $out)"
    say "data intact: $(cat "$root/data/note"); boots: $(wc -l <"$root/data/boots")"
    # unshare ignores TERM while it waits: stop the namespace's PID 1, as docker stop would.
    kill -TERM "$(awk '{print $1}' /proc/"$pid"/task/*/children)" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}

if [[ ${DOCKHAND_DEMO:-} == ns ]]; then
    say "DOCKHAND_DEMO=ns: the namespace demo, Docker or not"
    ns_demo
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    docker_demo
else
    say "no Docker engine here (docker info failed): showing the same story in Linux namespaces instead"
    ns_demo
fi
say "total $(elapsed)s"
