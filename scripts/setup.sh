#!/usr/bin/env bash
# Install what building and testing dockhand needs on a fresh Debian machine:
# the Rust musl targets (through rustup) and Debian packages. Idempotent:
# only what is missing is installed.
set -euo pipefail

say() { printf 'setup: %s\n' "$*" >&2; }

need_pkgs=()
want() { # want PACKAGE [COMMAND-OR-FILE]
    local pkg=$1 probe=${2:-}
    if [[ -n $probe ]]; then
        if [[ $probe == /* ]]; then [[ -e $probe ]] && return 0; else command -v "$probe" >/dev/null 2>&1 && return 0; fi
    fi
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' && [[ -n $probe ]] && return 0
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' && [[ -z $probe ]] && return 0
    need_pkgs+=("$pkg")
}

want qemu-user-static /usr/bin/qemu-aarch64-static
want busybox-static /bin/busybox
want debootstrap debootstrap
want binutils readelf
want gcc gcc
want libcap2-bin capsh
want util-linux setpriv
want procps ps
want redis-server redis-server
want postgresql /usr/lib/postgresql
want python3 /usr/bin/python3
want iproute2 ip
want nftables nft
want curl curl
want bsdutils script
want tini tini
want time /usr/bin/time
want strace strace
want python3-pip /usr/lib/python3/dist-packages/pip
want docker-compose docker-compose
want nginx-light nginx
want openssl openssl
want skopeo skopeo
want musl /lib/ld-musl-x86_64.so.1
want musl-tools musl-gcc
want mariadb-server /usr/sbin/mariadbd
want rabbitmq-server /usr/sbin/rabbitmq-server
want nats-server /usr/sbin/nats-server
# ring (rustls's crypto provider for https://) compiles C for each target:
# the aarch64 musl build uses Debian's cross gcc (scripts/dist.sh) and the
# C headers ring includes (assert.h, string.h: declarations only, nothing of
# glibc is linked).
want gcc-aarch64-linux-gnu aarch64-linux-gnu-gcc
want libc6-dev-arm64-cross /usr/aarch64-linux-gnu/include/assert.h

if ((${#need_pkgs[@]})); then
    if [[ $(id -u) != 0 ]]; then
        say "missing Debian packages: ${need_pkgs[*]} (run as root, or install them)"; exit 1
    fi
    say "installing Debian packages: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
    # Debian's postgresql package starts a cluster; the tests run their own.
    if command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
            pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
        done
    fi
    # mariadb-server, rabbitmq-server (with epmd) and nats-server start and
    # enable their services; the tests run their own on free loopback ports.
    for svc in mariadb rabbitmq-server nats-server epmd.socket epmd; do
        if [[ -d /run/systemd/system ]]; then
            systemctl disable --now "$svc" >/dev/null 2>&1 || true
        elif [[ -x /etc/init.d/$svc ]]; then
            service "$svc" stop >/dev/null 2>&1 || true
            update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    done
    if command -v epmd >/dev/null 2>&1; then epmd -kill >/dev/null 2>&1 || true; fi
fi

# Offline validators for the orchestrator examples (tests/it/manifests.rs):
# the Kubernetes schemas (kubernetes-validate) and the ECS API model that
# ships in botocore, pinned, in a virtual environment of the checkout.
venv=$(cd "$(dirname "$0")/.." && pwd)/.cache/validate
pins=(kubernetes-validate==1.37.0 botocore==1.44.8 jsonschema==4.26.0)
if ! [[ -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import kubernetes_validate, botocore' 2>/dev/null \
    || [[ $(cat "$venv/pins" 2>/dev/null) != "${pins[*]}" ]]; then
    say "installing ${pins[*]} into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
    echo "${pins[*]}" >"$venv/pins"
fi

# A real gRPC server for the grpc:// checks (tests/it/grpc.rs,
# tests/fixtures/grpc_server.py): grpcio and its health service, and hpack
# to log the :authority each request carries; pinned.
venv=$(cd "$(dirname "$0")/.." && pwd)/.cache/grpc
pins=(grpcio==1.85.1 grpcio-health-checking==1.85.1 protobuf==7.36.2 typing_extensions==4.16.0 hpack==4.2.0)
if ! [[ -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import grpc, grpc_health.v1, hpack' 2>/dev/null \
    || [[ $(cat "$venv/pins" 2>/dev/null) != "${pins[*]}" ]]; then
    say "installing ${pins[*]} into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
    echo "${pins[*]}" >"$venv/pins"
fi

# Supply chain, from crates.io at pinned versions: cargo-auditable embeds each
# binary's dependency list (make dist); rust-audit-info reads it back
# (tests/it/supply.rs).
want_crate() { # CRATE VERSION
    cargo install --list 2>/dev/null | grep -qx "$1 v$2:" && return 0
    say "installing $1 $2 from crates.io"
    cargo install --quiet --locked --version "$2" "$1"
}
want_crate cargo-auditable 0.7.2
want_crate rust-audit-info 0.5.4

# Redis and PostgreSQL from Debian may have been started as services; the
# tests start their own on free loopback ports, so these do not matter.
exit 0
