#!/usr/bin/env bash
# Build (once, then reuse) a Debian minbase root filesystem of this machine's
# release with debootstrap, from the apt mirror this machine is configured
# with (read from its apt sources at run time; no host is written here).
#
#   scripts/rootfs.sh DEST [EXTRA_PACKAGES...]
#   ROOTFS_ARCH=arm64 scripts/rootfs.sh DEST   a foreign root: debootstrap's first
#       stage only (downloaded and unpacked, no maintainer scripts run), its
#       ld.so.cache made by its own static ldconfig under qemu-user-static.
#
# DEST is reused when DEST/.dockhand-rootfs-ok exists and names the same
# package list. Used by ldcheck's loader oracle and the Docker base images.
set -euo pipefail
dest=${1:?usage: scripts/rootfs.sh DEST [EXTRA_PACKAGES...]}
shift
extra=$(IFS=,; echo "$*")
foreign=()
if [[ -n ${ROOTFS_ARCH:-} ]]; then
    foreign=(--foreign --arch="$ROOTFS_ARCH")
    extra="$extra${extra:+,}arch=$ROOTFS_ARCH"
fi
stamp="$dest/.dockhand-rootfs-ok"
. /etc/os-release
suite=${VERSION_CODENAME:?cannot tell the Debian release from /etc/os-release}

# One build at a time per DEST: tests that need the root run in parallel,
# and a second build finishing late would delete the root under the first.
mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9

if [[ -f $stamp ]] && [[ $(cat "$stamp") == "$suite:$extra" ]]; then
    exit 0
fi

mirror() {
    local f
    # deb822 .sources files: a stanza with "URIs:" and our suite in "Suites:".
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk -v s="$suite" '
            /^URIs:/ {u=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ($i==s) ok=1}
            /^$/ {if (ok && u) {print u; exit} ok=0; u=""}
            END {if (ok && u) print u}' "$f" | head -1
    done
    # one-line sources.list entries: "deb [opts] URL SUITE COMPONENTS".
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        awk -v s="$suite" '$1=="deb" { for (i=2;i<=NF;i++) if ($i !~ /^\[/ && $i !~ /\]$/) {u=$i; if ($(i+1)==s) {print u; exit} break} }' "$f"
    done
}
url=$(mirror | grep -m1 -E '^(https?|file)://' || true)
if [[ -z $url ]]; then
    echo "rootfs: no apt source for '$suite' found in /etc/apt/sources.list*; cannot debootstrap" >&2
    exit 1
fi
command -v debootstrap >/dev/null || { echo "rootfs: debootstrap is not installed (make setup installs it)" >&2; exit 1; }

tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$(dirname "$dest")"
echo "rootfs: debootstrap --variant=minbase $suite${extra:+ (+$extra)} into $dest" >&2
debootstrap "${foreign[@]}" --variant=minbase ${*:+--include="$(IFS=,; echo "$*")"} "$suite" "$tmp" "$url" >"$tmp.log" 2>&1 || {
    echo "rootfs: debootstrap failed; last lines of its log:" >&2; tail -5 "$tmp.log" >&2; rm -rf "$tmp"; exit 1; }
rm -f "$tmp.log"
# ld.so.cache must be what the image's ldconfig makes of it.
if [[ -n ${ROOTFS_ARCH:-} ]]; then
    q=/usr/bin/qemu-${ROOTFS_ARCH/arm64/aarch64}-static
    [[ -x $q ]] || { echo "rootfs: $q is missing (make setup installs qemu-user-static)" >&2; rm -rf "$tmp"; exit 1; }
    cp "$q" "$tmp/usr/bin/"
    chroot "$tmp" "/usr/bin/${q##*/}" /sbin/ldconfig
else
    chroot "$tmp" /sbin/ldconfig
fi
rm -rf "$dest"
mv "$tmp" "$dest"
echo "$suite:$extra" >"$stamp"
