#!/usr/bin/env python3
"""Write the multi-arch toolkit image as an OCI image layout, from dist/ (make oci).

    scripts/oci.py [DIST [OUT]]      defaults dist and dist/oci

index.json names one image index, tag "latest", listing two images: linux/amd64 built from
dist/x86_64 and linux/arm64 (variant v8) from dist/aarch64. Each image has one uncompressed
layer: the five tools in /usr/local/bin and the SBOM (dist/sbom.cdx.json) at
/usr/local/share/dockhand/sbom.cdx.json, named by the label dockhand.sbom. The layer tar is
deterministic (sorted, mtime = the commit's time, uid/gid 0, fixed modes) and so is every JSON
file, so one commit gives the same digests. Load one architecture into Docker with skopeo:

    skopeo copy oci:dist/oci:latest docker-daemon:dockhand/toolkit:latest
    skopeo copy --override-arch arm64 oci:dist/oci:latest docker-daemon:dockhand/toolkit:arm64

Python stdlib only.
"""

import datetime
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tomllib

from build_epoch import source_epoch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = ["runas", "healthcheck", "waitfor", "ready", "ldcheck"]
# Docker/OCI architecture name, variant, and the dist/ directory with its binaries.
ARCHS = [("amd64", None, "x86_64"), ("arm64", "v8", "aarch64")]
SBOM_PATH = "usr/local/share/dockhand/sbom.cdx.json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"


def die(msg):
    sys.exit("oci: " + msg)


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Layout:
    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"))

    def blob(self, data, media_type, **extra):
        """Store bytes as a blob; return its descriptor."""
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.root, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        d = {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
        d.update(extra)
        return d


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(dist_arch, sbom, epoch):
    """The layer as bytes: directories, then files, every entry with fixed metadata."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        def add(name, data=None, mode=0o755):
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname, ti.mode = epoch, 0, 0, "", "", mode
            if data is None:
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            else:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
        entries = {}
        for t in TOOLS:
            p = os.path.join(dist_arch, t)
            if not os.path.isfile(p):
                die("%s is missing: run make dist" % p)
            with open(p, "rb") as f:
                entries["usr/local/bin/" + t] = (f.read(), 0o755)
        with open(sbom, "rb") as f:
            entries[SBOM_PATH] = (f.read(), 0o644)
        dirs = sorted({"/".join(n.split("/")[:i]) for n in entries for i in range(1, n.count("/") + 1)})
        for d in dirs:
            add(d + "/")
        for name in sorted(entries):
            data, mode = entries[name]
            add(name, data, mode)
    return buf.getvalue()


def main():
    dist = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "dist"))
    out = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(dist, "oci"))
    sbom = os.path.join(dist, "sbom.cdx.json")
    if not os.path.isfile(sbom):
        die("%s is missing: run make sbom (make dist writes it too)" % sbom)
    with open(os.path.join(REPO, "Cargo.toml"), "rb") as f:
        version = tomllib.load(f)["workspace"]["package"]["version"]
    epoch = source_epoch()
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    lay = Layout(tmp)
    labels = {
        "org.opencontainers.image.title": "dockhand",
        "org.opencontainers.image.description":
            "Static container entrypoint tools: runas, healthcheck, waitfor, ready, ldcheck",
        "org.opencontainers.image.licenses": "MIT OR Apache-2.0",
        "org.opencontainers.image.version": version,
        "dockhand.sbom": "/" + SBOM_PATH,
    }
    manifests = []
    for arch, variant, dist_arch in ARCHS:
        layer = layer_tar(os.path.join(dist, dist_arch), sbom, epoch)
        ldesc = lay.blob(layer, MT_LAYER)
        platform = {"architecture": arch, "os": "linux"}
        if variant:
            platform["variant"] = variant
        config = dict(platform)
        config.update({
            "created": iso(epoch),
            "config": {"Env": ["PATH=/usr/local/bin"], "Cmd": ["runas", "--version"], "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [ldesc["digest"]]},
            "history": [{"created": iso(epoch), "created_by": "scripts/oci.py: dist/%s and the SBOM" % dist_arch}],
        })
        cdesc = lay.blob(canonical(config), MT_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": cdesc, "layers": [ldesc],
                    "annotations": {"org.opencontainers.image.created": iso(epoch)}}
        manifests.append(lay.blob(canonical(manifest), MT_MANIFEST, platform=platform))
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
    idesc = lay.blob(canonical(index), MT_INDEX,
                     annotations={"org.opencontainers.image.ref.name": "latest"})
    with open(os.path.join(tmp, "index.json"), "wb") as f:
        f.write(canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [idesc]}))
    with open(os.path.join(tmp, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    print("oci: %s: linux/amd64 + linux/arm64, index %s" % (os.path.relpath(out), idesc["digest"]),
          file=sys.stderr)


if __name__ == "__main__":
    main()
