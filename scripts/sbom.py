#!/usr/bin/env python3
"""Write the toolkit's CycloneDX 1.5 SBOM (JSON) from Cargo.lock and `cargo metadata`.

    scripts/sbom.py [OUT]        default dist/sbom.cdx.json (make sbom; make dist runs it too)

Every package in Cargo.lock is a component, with its version, its package URL, its licence
(from `cargo metadata`) and, for crates.io crates, Cargo.lock's checksum (the SHA-256 of the
.crate file). Components linked into one of the five tools have scope "required" and a
property naming the tools; the rest (build-time-only crates such as proc macros, the test
crate) have scope "excluded". The dependency graph is Cargo.lock's. The output depends only
on the commit's files: no paths, the commit's own time as timestamp, a serial number derived
from the content, so two checkouts of one commit write the same bytes. Python stdlib only.
"""

import datetime
import hashlib
import json
import os
import subprocess
import sys

from build_epoch import source_epoch
import tomllib
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = ["runas", "healthcheck", "waitfor", "ready", "ldcheck"]
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"


def die(msg):
    sys.exit("sbom: " + msg)


def spdx(lic):
    """Cargo's licence field as an SPDX expression ("MIT/Apache-2.0" is the old spelling of OR)."""
    if not lic:
        return None
    return " OR ".join(p.strip() for p in lic.split("/")) if "/" in lic else lic


def purl(name, version):
    return "pkg:cargo/%s@%s" % (name, version)


def commit_time():
    """ISO time of HEAD's commit (SOURCE_DATE_EPOCH wins), so the SBOM is reproducible."""
    epoch = source_epoch()
    t = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "dist", "sbom.cdx.json")
    with open(os.path.join(REPO, "Cargo.lock"), "rb") as f:
        lock_bytes = f.read()
    lock = tomllib.loads(lock_bytes.decode())
    pkgs = lock.get("package", [])
    by_name = {}
    for p in pkgs:
        by_name.setdefault(p["name"], []).append(p)

    def key_of(dep):
        # Cargo.lock names a dependency "name", or "name version [(source)]" when ambiguous.
        parts = dep.split(" ")
        cands = by_name.get(parts[0], [])
        if len(parts) > 1:
            cands = [c for c in cands if c["version"] == parts[1]]
        if len(cands) != 1:
            die("Cargo.lock: cannot resolve dependency %r" % dep)
        return (cands[0]["name"], cands[0]["version"])

    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked"], cwd=REPO,
                          check=True, capture_output=True, text=True).stdout
    meta = json.loads(meta)
    info = {(p["name"], p["version"]): p for p in meta["packages"]}
    ids = {p["id"]: (p["name"], p["version"]) for p in meta["packages"]}

    # Linked into a tool: reachable from it through normal (not dev, not build) edges. Proc
    # macros run at build time only, so their edges count as build edges.
    normal = {}
    for node in meta["resolve"]["nodes"]:
        src = ids[node["id"]]
        for d in node["deps"]:
            dst = ids[d["pkg"]]
            kinds = {k["kind"] for k in d["dep_kinds"]}
            is_macro = any("proc-macro" in t["kind"] for t in info[dst]["targets"])
            if None in kinds and not is_macro:
                normal.setdefault(src, []).append(dst)
    used_by = {}
    for tool in TOOLS:
        roots = [k for k in info if k[0] == tool and info[k]["source"] is None]
        if len(roots) != 1:
            die("cargo metadata: no workspace package %s" % tool)
        stack, seen = [roots[0]], set()
        while stack:
            k = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            stack.extend(normal.get(k, []))
        for k in seen:
            used_by.setdefault(k, []).append(tool)

    components, deps = [], []
    for p in sorted(pkgs, key=lambda p: (p["name"], p["version"])):
        k = (p["name"], p["version"])
        m = info.get(k)
        if m is None:
            die("cargo metadata does not know %s %s from Cargo.lock" % k)
        ref = purl(*k)
        c = {"type": "application" if k[0] in TOOLS else "library", "bom-ref": ref,
             "name": k[0], "version": k[1], "purl": ref,
             "scope": "required" if k in used_by else "excluded"}
        lic = spdx(m.get("license"))
        if lic:
            c["licenses"] = [{"expression": lic}]
        if p.get("checksum"):
            c["hashes"] = [{"alg": "SHA-256", "content": p["checksum"]}]
        if p.get("source") == CRATES_IO:
            c["externalReferences"] = [{"type": "distribution",
                                        "url": "https://crates.io/api/v1/crates/%s/%s/download" % k}]
        elif p.get("source"):
            c["externalReferences"] = [{"type": "vcs", "url": p["source"]}]
        if k in used_by:
            c["properties"] = [{"name": "dockhand:linked-into", "value": " ".join(used_by[k])}]
        components.append(c)
        deps.append({"ref": ref, "dependsOn": sorted(purl(*key_of(d)) for d in p.get("dependencies", []))})

    version = info[[k for k in info if k[0] == "runas"][0]]["version"]
    ws_license = spdx(info[[k for k in info if k[0] == "runas"][0]].get("license"))
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        # Derived from what the SBOM describes: the same inputs give the same serial number.
        "serialNumber": "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "dockhand-sbom:" + version + ":" +
                                                     hashlib.sha256(lock_bytes).hexdigest())),
        "version": 1,
        "metadata": {
            "timestamp": commit_time(),
            "tools": {"components": [{"type": "application", "name": "dockhand scripts/sbom.py"}]},
            "component": {"type": "application", "bom-ref": "pkg:generic/dockhand@" + version,
                          "name": "dockhand", "version": version,
                          "description": "Static container entrypoint tools: " + ", ".join(TOOLS),
                          "licenses": [{"expression": ws_license}]},
        },
        "components": components,
        "dependencies": [{"ref": "pkg:generic/dockhand@" + version,
                          "dependsOn": sorted(purl(t, version) for t in TOOLS)}] + deps,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(bom, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, out)
    print("sbom: %s: CycloneDX 1.5, %d components" % (os.path.relpath(out), len(components)), file=sys.stderr)


if __name__ == "__main__":
    main()
