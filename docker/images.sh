#!/usr/bin/env bash
# Build (or reuse) the local images the examples, the Docker E2E tests and
# `make demo` need. This machine's engine has no registry: every image is made
# here, from the dist binaries, busybox-static, or a debootstrap rootfs.
#
#   docker/images.sh toolkit [BIN_DIR] [TAG]   docker/Dockerfile from BIN_DIR's binaries
#                                              (dist/: both arches; a single-arch dir: this
#                                              machine's); TAG default dockhand:latest
#   docker/images.sh busybox                   FROM scratch + busybox-static, applets in /bin
#   docker/images.sh python3                   Debian minbase + python3 + python3-venv
#   docker/images.sh postgresql                Debian minbase + PostgreSQL, ready to serve
#   docker/images.sh s6                        Debian minbase + s6 + PostgreSQL + python3
#                                              (the base of examples/all-in-one)
#   docker/images.sh fleet                     Debian minbase + python3 + curl (bench/fleet.sh)
#   docker/images.sh build [DOCKER BUILD ARGS...]   `docker build` with the builder this
#                                              machine has (BuildKit through buildx, else legacy)
#
# Each prints the image reference on stdout (progress goes to stderr). An
# image carries a label dockhand.inputs with a hash of what it was made from;
# when the tag already has that hash it is reused as is, so reruns are fast.
# Rootfs trees are cached under $DOCKHAND_CACHE (default /var/cache/dockhand).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cache=${DOCKHAND_CACHE:-/var/cache/dockhand}
tools=(runas healthcheck waitfor ready ldcheck)

say() { printf 'images: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# BuildKit needs the buildx plugin with a current client; without it, use the
# legacy builder explicitly (DOCKER_BUILDKIT=1 in the environment would fail).
# --force-rm: the legacy builder otherwise keeps the container of a failed step.
docker_build() {
    if docker buildx version >/dev/null 2>&1; then
        docker build "$@"
    else
        DOCKER_BUILDKIT=0 docker build --force-rm "$@" 2> >(grep -v -E 'DEPRECATED: The legacy builder|buildx|BuildKit is currently disabled|environment-variable\.$|^ *$' >&2)
    fi
}

docker_arch() {
    case $(uname -m) in
        x86_64) echo amd64 ;;
        aarch64 | arm64) echo arm64 ;;
        *) die "unsupported machine $(uname -m)" ;;
    esac
}

# The label of TAG, or nothing when the image does not exist.
inputs_of() { docker image inspect -f '{{index .Config.Labels "dockhand.inputs"}}' "$1" 2>/dev/null || true; }

# Serialise builds of the same image from parallel tests and scripts.
lock() {
    mkdir -p "$cache"
    exec 9>"$cache/.lock-image-$1"
    flock 9
}

hash_files() { sha256sum "$@" | sha256sum | cut -c1-16; }

toolkit() {
    local dir=${1:-$repo/dist} tag=${2:-dockhand:latest} ctx arch t h
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' RETURN
    mkdir -p "$ctx/x86_64" "$ctx/aarch64"
    if [[ -d $dir/x86_64 ]]; then
        for arch in x86_64 aarch64; do
            [[ -d $dir/$arch ]] || continue
            for t in "${tools[@]}"; do
                [[ -f $dir/$arch/$t ]] || die "$dir/$arch/$t is missing: run make dist"
                cp "$dir/$arch/$t" "$ctx/$arch/$t"
            done
        done
    else
        # A single-arch directory (DOCKHAND_BIN_DIR): this machine's arch.
        arch=$(uname -m)
        for t in "${tools[@]}"; do
            [[ -f $dir/$t ]] || die "$dir/$t is missing"
            cp "$dir/$t" "$ctx/$arch/$t"
        done
    fi
    # The SBOM the image carries: make dist's, else written now.
    if [[ -f $dir/sbom.cdx.json ]]; then
        cp "$dir/sbom.cdx.json" "$ctx/sbom.cdx.json"
    elif [[ -f $repo/dist/sbom.cdx.json ]]; then
        cp "$repo/dist/sbom.cdx.json" "$ctx/sbom.cdx.json"
    else
        "$repo/scripts/sbom.py" "$ctx/sbom.cdx.json"
    fi
    h=$(cd "$ctx" && hash_files "$here/Dockerfile" $(find . -type f | sort))
    lock toolkit
    if [[ $(inputs_of "$tag") != "$h" ]]; then
        say "building $tag from $dir"
        docker_build -q -f "$here/Dockerfile" --build-arg "TARGETARCH=$(docker_arch)" \
            --label "dockhand.inputs=$h" -t "$tag" "$ctx" >/dev/null
    fi
    echo "$tag"
}

busybox() {
    local tag=dockhand/busybox:latest bb=/bin/busybox ctx h
    [[ -x $bb ]] || die "$bb is missing: install Debian's busybox-static (make setup does)"
    if ldd "$bb" >/dev/null 2>&1 && ! ldd "$bb" 2>&1 | grep -q 'not a dynamic'; then
        die "$bb is not static: install busybox-static, not busybox"
    fi
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' RETURN
    cp "$bb" "$ctx/busybox"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "sh", "-c", "mkdir -p /tmp /etc /root /usr/local/bin && chmod 1777 /tmp && echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd && echo 'root:x:0:' >/etc/group"]
ENV PATH=/usr/local/bin:/bin
CMD ["sh"]
EOF
    h=$(hash_files "$ctx/busybox" "$ctx/Dockerfile")
    lock busybox
    if [[ $(inputs_of "$tag") != "$h" ]]; then
        say "building $tag from $bb"
        docker_build -q --label "dockhand.inputs=$h" -t "$tag" "$ctx" >/dev/null
    fi
    echo "$tag"
}

# Bump when what rootfs_image puts into an image changes (the excludes below).
import_rev=1

# rootfs NAME TAG PACKAGES... : debootstrap (cached) and docker import.
# Extra `docker import --change` lines come from the array `changes`.
rootfs_image() {
    local name=$1 tag=$2 root h
    shift 2
    root=$cache/rootfs-$name
    lock "$name"
    "$repo/scripts/rootfs.sh" "$root" "$@"
    # The stamp names the suite and package list; its mtime changes on every rebuild.
    h=$(printf '%s %s %s %s' "$(cat "$root/.dockhand-rootfs-ok")" "$(stat -c %Y "$root/.dockhand-rootfs-ok")" \
        "${changes[*]}" "$import_rev" | sha256sum | cut -c1-16)
    if [[ $(inputs_of "$tag") != "$h" ]]; then
        say "importing $root as $tag"
        local args=(--change "LABEL dockhand.inputs=$h")
        local c
        for c in "${changes[@]}"; do args+=(--change "$c"); done
        # Leave out what slim images leave out: apt's caches and lists, docs, locales.
        tar -C "$root" --numeric-owner -c \
            --exclude=./.dockhand-rootfs-ok --exclude='./var/cache/apt/archives/*.deb' \
            --exclude='./var/lib/apt/lists/*_*' --exclude='./usr/share/doc/*' \
            --exclude='./usr/share/man/*' --exclude='./usr/share/locale/*' . |
            docker import "${args[@]}" - "$tag" >/dev/null
    fi
    echo "$tag"
}

suite() { (. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}"); }

python3() {
    local changes=(
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
        'ENV LANG=C.UTF-8'
        'CMD ["python3"]'
    )
    rootfs_image python3 "dockhand/base-python3:$(suite)" python3 python3-venv
}

postgresql() {
    local base tag h ver ctx
    local changes=('ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["bash"]')
    base=$(rootfs_image postgresql "dockhand/rootfs-postgresql:$(suite)" postgresql)
    ver=$(ls "$cache/rootfs-postgresql/usr/lib/postgresql" | sort -n | tail -1)
    [[ -n $ver ]] || die "no PostgreSQL in $cache/rootfs-postgresql"
    tag=dockhand/base-postgresql:$(suite)
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' RETURN
    # Like the official image: listen on every address, password auth from the
    # network, data in /var/lib/postgresql/data, run as the postgres user.
    cat >"$ctx/Dockerfile" <<EOF
FROM $base
ENV PATH=/usr/lib/postgresql/$ver/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PGDATA=/var/lib/postgresql/data
RUN install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data /run/postgresql \\
 && su postgres -s /bin/sh -c 'initdb -A trust --auth-host=scram-sha-256 -U postgres -D /var/lib/postgresql/data >/dev/null' \\
 && echo 'host all all all scram-sha-256' >>/var/lib/postgresql/data/pg_hba.conf \\
 && echo "listen_addresses = '*'" >>/var/lib/postgresql/data/postgresql.conf
USER postgres
EXPOSE 5432
STOPSIGNAL SIGINT
CMD ["postgres"]
EOF
    h=$(printf '%s %s' "$(inputs_of "$base")" "$(sha256sum "$ctx/Dockerfile")" | sha256sum | cut -c1-16)
    if [[ $(inputs_of "$tag") != "$h" ]]; then
        say "building $tag"
        docker_build -q --label "dockhand.inputs=$h" -t "$tag" "$ctx" >/dev/null
    fi
    echo "$tag"
}

# The packages examples/all-in-one installs, already in place: its build then
# skips apt-get (this machine's containers may not reach a mirror).
s6() {
    local changes=(
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
        'ENV LANG=C.UTF-8'
        'CMD ["bash"]'
    )
    rootfs_image s6 "dockhand-aio/base-s6:$(suite)" s6 postgresql python3
}

# bench/fleet.sh: a Python service probed by healthcheck, curl or Python.
fleet() {
    local changes=(
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
        'ENV LANG=C.UTF-8'
        'CMD ["python3"]'
    )
    rootfs_image fleet "dockhand-fleet/base:$(suite)" python3 curl
}

cmd=${1:-}
shift || true
case $cmd in
    toolkit) toolkit "$@" ;;
    busybox) busybox ;;
    python3) python3 ;;
    postgresql) postgresql ;;
    s6) s6 ;;
    fleet) fleet ;;
    build) docker_build "$@" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
