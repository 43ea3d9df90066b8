#!/usr/bin/env bash
# Generate ldcheck's soname -> Debian package table from Debian's Contents
# index, reached through apt and the sources this machine is configured with
# (no host is written here), for the codename in /etc/os-release.
#
#   scripts/gen-sonames.sh [OUTDIR]     (default: bins/ldcheck/data)
#
# Writes OUTDIR/sonames-CODENAME.txt: the shared-library sonames shipped under
# the standard library directories (/lib, /usr/lib and their x86_64-linux-gnu
# and aarch64-linux-gnu subdirectories) for amd64 and arm64, with the package
# that ships each. Only versioned names (libfoo.so.N, libfoo.so.N.M) are kept:
# unversioned libfoo.so links belong to -dev packages and are never a soname
# the loader looks for; fully versioned file names (libfoo.so.1.2.3) are
# never sonames either.
#
# Format (front-coded to keep the embedded table small; see the ldcheck section of README.md):
# sorted by soname, one line each, "NSUFFIX<TAB>PACKAGE" where N (one digit) is the
# number of leading bytes shared with the previous soname and PACKAGE is
# empty when it is the same as the previous line's, "=" when it is the name
# Debian's library packaging policy gives (libfoo.so.1 -> libfoo1,
# libfoo2.so.1 -> libfoo2-1, lower case).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bins/ldcheck/data}
. /etc/os-release
codename=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
chmod -R a+rwX "$tmp"
T=Acquire::IndexTargets::deb::Contents-deb
opts=(
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
    -o "APT::Architectures::=amd64" -o "APT::Architectures::=arm64"
    -o "Acquire::Languages=none"
    -o "$T::MetaKey=\$(COMPONENT)/Contents-\$(ARCHITECTURE)"
    -o "$T::ShortDescription=Contents-\$(ARCHITECTURE)"
    -o "$T::Description=\$(RELEASE)/\$(COMPONENT) \$(ARCHITECTURE) Contents (deb)"
    -o "$T::flatMetaKey=Contents-\$(ARCHITECTURE)"
    -o "$T::flatDescription=\$(RELEASE) Contents (deb)"
    -o "$T::PDiffs=false" -o "$T::DefaultEnabled=true"
)
echo "gen-sonames: fetching the Contents index for $codename through apt" >&2
apt-get -qq "${opts[@]}" update >&2
files=$(apt-get "${opts[@]}" indextargets --format '$(FILENAME)' \
    "Identifier: Contents-deb" "Codename: $codename" | sort -u)
[[ -n $files ]] || { echo "gen-sonames: apt found no Contents index for $codename" >&2; exit 1; }

mkdir -p "$out"
dest="$out/sonames-$codename.txt"
for f in $files; do
    [[ -f $f ]] && /usr/lib/apt/apt-helper cat-file "$f"
done | awk '
    # "PATH   section/pkg,section/pkg2": keep libraries in the standard dirs.
    {
        path = $1
        if (path !~ /^(usr\/)?lib\/((x86_64|aarch64)-linux-gnu\/)?[^\/]+\.so\.[0-9]+(\.[0-9]+)?$/) next
        n = split(path, parts, "/"); name = parts[n]
        split($NF, pk, ","); p = pk[1]; sub(/.*\//, "", p)
        if (!(name in pkg)) pkg[name] = p
    }
    END { for (s in pkg) print s "\t" pkg[s] }' | LC_ALL=C sort -u -t$'\t' -k1,1 | awk -F'\t' '
    # Drop libfoo.so.N.M when libfoo.so.N exists: that is a real file name,
    # not a soname.
    { names[NR] = $1; pk[NR] = $2; have[$1] = 1 }
    END {
        for (i = 1; i <= NR; i++) {
            s = names[i]
            if (s ~ /\.so\.[0-9]+\.[0-9]+$/) { b = s; sub(/\.[0-9]+$/, "", b); if (b in have) continue }
            print s "\t" pk[i]
        }
    }' | awk -F'\t' '
    # The package most sonames would have by Debian policy: libfoo.so.1 ->
    # libfoo1, libfoo2.so.1 -> libfoo2-1, lower case.
    function policy(s,   b, v) {
        if (!match(s, /\.so\.[0-9]+(\.[0-9]+)?$/)) return ""
        b = tolower(substr(s, 1, RSTART - 1)); v = substr(s, RSTART + 4)
        return b (b ~ /[0-9]$/ ? "-" : "") v
    }
    { n = 0; m = length(prev); if (length($1) < m) m = length($1)
      while (n < m && n < 9 && substr(prev, n + 1, 1) == substr($1, n + 1, 1)) n++
      p = ($2 == prevpkg ? "" : ($2 == policy($1) ? "=" : $2))
      printf "%d%s\t%s\n", n, substr($1, n + 1), p
      prev = $1; prevpkg = $2 }' >"$dest.tmp"
mv "$dest.tmp" "$dest"
echo "gen-sonames: $(wc -l <"$dest") sonames, $(wc -c <"$dest") bytes in $dest" >&2
