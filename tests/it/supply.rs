//! Supply chain: what `make dist` ships besides the code. Each binary's
//! embedded dependency list (cargo-auditable, read back with rust-audit-info),
//! the --version line on both architectures, the CycloneDX SBOM, and the OCI
//! image layout (its arm64 image really arm64, its amd64 image loadable into
//! Docker with skopeo). These check the files in dist/, whatever
//! DOCKHAND_BIN_DIR says.

use dockhand_tests::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const TOOLS: [&str; 5] = ["runas", "healthcheck", "waitfor", "ready", "ldcheck"];
/// Rust architecture (dist/ directory) and OCI architecture.
const ARCHS: [(&str, &str); 2] = [("x86_64", "amd64"), ("aarch64", "arm64")];

fn dist(rel: &str) -> PathBuf {
    let p = repo().join("dist").join(rel);
    assert!(p.exists(), "{} is missing: run `make dist`", p.display());
    p
}

fn json(p: &Path) -> Value {
    let text = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// True when `cmd` can be started at all (its exit status does not matter).
fn installed(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--help")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

fn qemu(test: &str) -> Option<PathBuf> {
    let q = PathBuf::from("/usr/bin/qemu-aarch64-static");
    if q.is_file() {
        return Some(q);
    }
    skip(
        test,
        "needs qemu-user-static (/usr/bin/qemu-aarch64-static); `make setup` installs it",
    );
    None
}

/// A package as (name, version).
type Pkg = (String, String);
/// Dependency edges (from, to).
type Edges = BTreeSet<(Pkg, Pkg)>;

/// One `[[package]]` of Cargo.lock.
#[derive(Debug, Default)]
struct LockPkg {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
    /// As written: "name" or "name version" (or with a source after it).
    deps: Vec<String>,
}

/// Cargo.lock's packages. The format is the small TOML subset cargo writes.
fn cargo_lock() -> Vec<LockPkg> {
    let text = std::fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    let mut pkgs: Vec<LockPkg> = Vec::new();
    let mut in_deps = false;
    let unquote = |s: &str| s.trim().trim_end_matches(',').trim_matches('"').to_string();
    for line in text.lines() {
        if line == "[[package]]" {
            pkgs.push(LockPkg::default());
            in_deps = false;
            continue;
        }
        let Some(p) = pkgs.last_mut() else { continue };
        if in_deps {
            if line.trim() == "]" {
                in_deps = false;
            } else {
                p.deps.push(unquote(line));
            }
            continue;
        }
        let Some((k, v)) = line.split_once(" = ") else {
            continue;
        };
        match k {
            "name" => p.name = unquote(v),
            "version" => p.version = unquote(v),
            "source" => p.source = Some(unquote(v)),
            "checksum" => p.checksum = Some(unquote(v)),
            "dependencies" if v.trim() == "[" => in_deps = true,
            "dependencies" => {} // an empty list: `[]`
            _ => {}
        }
    }
    assert!(
        pkgs.iter().all(|p| !p.name.is_empty() && !p.version.is_empty()),
        "Cargo.lock: a package without name or version"
    );
    pkgs
}

/// Resolve a Cargo.lock dependency entry to (name, version).
fn lock_dep(pkgs: &[LockPkg], dep: &str) -> Pkg {
    let mut words = dep.split(' ');
    let name = words.next().unwrap();
    let version = words.next();
    let found: Vec<&LockPkg> = pkgs
        .iter()
        .filter(|p| p.name == name && version.iter().all(|v| p.version == *v))
        .collect();
    assert_eq!(found.len(), 1, "Cargo.lock: cannot resolve {dep:?}");
    (found[0].name.clone(), found[0].version.clone())
}

/// The edges `cargo metadata` keeps for `triple` that are not dev-only, as
/// (from, to) pairs of (name, version): what decides which of Cargo.lock's
/// edges a release build of a tool follows.
fn build_edges(triple: &str) -> Edges {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = run(Command::new(cargo).current_dir(repo()).args([
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--filter-platform",
        triple,
    ]));
    assert!(o.status.success(), "cargo metadata: {}", stderr(&o));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: BTreeMap<&str, Pkg> = m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let nv = (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            );
            (p["id"].as_str().unwrap(), nv)
        })
        .collect();
    let mut edges = BTreeSet::new();
    for node in m["resolve"]["nodes"].as_array().unwrap() {
        let from = &ids[node["id"].as_str().unwrap()];
        for d in node["deps"].as_array().unwrap() {
            let dev_only = d["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k["kind"].as_str() == Some("dev"));
            if !dev_only {
                edges.insert((from.clone(), ids[d["pkg"].as_str().unwrap()].clone()));
            }
        }
    }
    edges
}

/// The tool and every package it depends on, walking Cargo.lock's edges
/// (those of `edges`: not dev-only, for this target).
fn lock_closure(pkgs: &[LockPkg], edges: &Edges, tool: &str) -> BTreeSet<Pkg> {
    let root = pkgs
        .iter()
        .find(|p| p.name == tool && p.source.is_none())
        .unwrap();
    let mut seen = BTreeSet::new();
    let mut stack = vec![(root.name.clone(), root.version.clone())];
    while let Some(k) = stack.pop() {
        if !seen.insert(k.clone()) {
            continue;
        }
        let p = pkgs.iter().find(|p| p.name == k.0 && p.version == k.1).unwrap();
        for d in &p.deps {
            let to = lock_dep(pkgs, d);
            if edges.contains(&(k.clone(), to.clone())) {
                stack.push(to);
            }
        }
    }
    seen
}

#[test]
fn embedded_dependency_lists_match_cargo_lock() {
    let test = "embedded_dependency_lists_match_cargo_lock";
    if !installed("rust-audit-info") {
        skip(
            test,
            "needs rust-audit-info (crates.io); `make setup` installs it",
        );
        return;
    }
    let pkgs = cargo_lock();
    for (arch, _) in ARCHS {
        let edges = build_edges(&format!("{arch}-unknown-linux-musl"));
        for t in TOOLS {
            let bin = dist(&format!("{arch}/{t}"));
            let o = run(Command::new("rust-audit-info").arg(&bin));
            assert!(
                o.status.success(),
                "rust-audit-info {}: {}",
                bin.display(),
                stderr(&o)
            );
            let info: Value = serde_json::from_slice(&o.stdout).unwrap();
            let listed = info["packages"].as_array().unwrap();
            let got: BTreeSet<Pkg> = listed
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().into(),
                        p["version"].as_str().unwrap().into(),
                    )
                })
                .collect();
            assert_eq!(got.len(), listed.len(), "{arch}/{t}: a package listed twice");
            let want = lock_closure(&pkgs, &edges, t);
            assert_eq!(got, want, "{arch}/{t}: embedded list vs Cargo.lock");
            // The root is the tool, and each source says where the crate came from.
            let roots: Vec<&str> = listed
                .iter()
                .filter(|p| p["root"].as_bool() == Some(true))
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(roots, [t], "{arch}/{t}");
            for p in listed {
                let (name, version) = (p["name"].as_str().unwrap(), p["version"].as_str().unwrap());
                let lp = pkgs
                    .iter()
                    .find(|l| l.name == name && l.version == version)
                    .unwrap();
                let want = if lp.source.is_some() { "crates.io" } else { "local" };
                assert_eq!(p["source"].as_str(), Some(want), "{arch}/{t}: {name}");
            }
        }
    }
}

/// Parse `TOOL VERSION (git COMMIT, TRIPLE, std STD)`; None when it is not that.
fn version_parts<'a>(line: &'a str, tool: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let rest = line.strip_prefix(&format!("{tool} {} (git ", env!("CARGO_PKG_VERSION")))?;
    let inner = rest.strip_suffix(')')?;
    let mut it = inner.split(", ");
    let (commit, triple, std) = (it.next()?, it.next()?, it.next()?.strip_prefix("std ")?);
    it.next().is_none().then_some((commit, triple, std))
}

#[test]
fn version_names_commit_target_and_std_on_both_arches() {
    let test = "version_names_commit_target_and_std_on_both_arches";
    let Some(q) = qemu(test) else { return };
    let mut commits = BTreeSet::new();
    for (arch, _) in ARCHS {
        let mut stds = BTreeSet::new();
        for t in TOOLS {
            let bin = dist(&format!("{arch}/{t}"));
            let o = if arch == "x86_64" && std::env::consts::ARCH == "x86_64" {
                run(Command::new(&bin).arg("--version"))
            } else {
                run(Command::new(&q).arg(&bin).arg("--version"))
            };
            assert!(o.status.success(), "{arch}/{t} --version: {o:?}");
            let out = stdout(&o);
            assert_eq!(out.lines().count(), 1, "{arch}/{t}: {out:?}");
            let line = out.trim_end();
            let Some((commit, triple, std)) = version_parts(line, t) else {
                panic!(
                    "{arch}/{t}: {line:?} is not `{t} VERSION (git COMMIT, TRIPLE, std rebuilt|prebuilt)`"
                );
            };
            assert_eq!(triple, format!("{arch}-unknown-linux-musl"), "{line}");
            assert!(["rebuilt", "prebuilt"].contains(&std), "{line}");
            let hex = commit.strip_suffix("-dirty").unwrap_or(commit);
            assert!(
                hex.len() == 7 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                "{line}: commit"
            );
            commits.insert(commit.to_string());
            stds.insert(std.to_string());
        }
        assert_eq!(stds.len(), 1, "{arch}: the tools disagree on std: {stds:?}");
    }
    assert_eq!(
        commits.len(),
        1,
        "the binaries name different commits: {commits:?}"
    );
    // The commit is one of this repository's (when it is a git checkout).
    let c = commits.into_iter().next().unwrap();
    let hex = c.strip_suffix("-dirty").unwrap_or(&c);
    if have("git", &["-C", repo().to_str().unwrap(), "rev-parse", "HEAD"]) {
        let o = run(Command::new("git").current_dir(repo()).args([
            "cat-file",
            "-e",
            &format!("{hex}^{{commit}}"),
        ]));
        assert!(o.status.success(), "--version names {hex}, not a commit here");
    }
}

#[test]
fn sbom_lists_every_crate_of_cargo_lock() {
    let bom = json(&dist("sbom.cdx.json"));
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.5");
    let comps = bom["components"].as_array().unwrap();
    let pkgs = cargo_lock();
    assert_eq!(comps.len(), pkgs.len(), "one component per Cargo.lock package");
    for p in &pkgs {
        let c = comps
            .iter()
            .find(|c| c["name"] == p.name.as_str() && c["version"] == p.version.as_str())
            .unwrap_or_else(|| panic!("SBOM has no {} {}", p.name, p.version));
        assert_eq!(c["purl"], format!("pkg:cargo/{}@{}", p.name, p.version).as_str());
        let lic = c["licenses"][0]["expression"].as_str();
        assert!(lic.is_some_and(|l| !l.is_empty()), "{}: no licence", p.name);
        match &p.checksum {
            Some(sum) => {
                let hashes = c["hashes"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{}: no hashes", p.name));
                assert!(
                    hashes
                        .iter()
                        .any(|h| h["alg"] == "SHA-256" && h["content"] == sum.as_str()),
                    "{}: no SHA-256 {sum}",
                    p.name
                );
            }
            None => assert!(
                c.get("hashes").is_none(),
                "{}: a hash Cargo.lock does not have",
                p.name
            ),
        }
    }
    // Every tool is in it as an application that is required.
    for t in TOOLS {
        let c = comps.iter().find(|c| c["name"] == t).unwrap();
        assert_eq!(
            (&c["type"], &c["scope"]),
            (&"application".into(), &"required".into()),
            "{t}"
        );
    }
}

/// A blob of the layout, after checking that its content has its digest.
fn blob(oci: &Path, desc: &Value) -> Vec<u8> {
    let digest = desc["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{digest}"
    );
    let p = oci.join("blobs/sha256").join(hex);
    let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(
        data.len() as u64,
        desc["size"].as_u64().unwrap(),
        "{digest}: size"
    );
    let o = run(Command::new("sha256sum").arg(&p));
    assert!(
        stdout(&o).starts_with(hex),
        "{digest}: content does not match: {}",
        stdout(&o)
    );
    data
}

/// The image index's manifest for `arch`, its config and the unpacked layer.
fn oci_image(arch: &str) -> (Value, Value, TempDir) {
    let oci = dist("oci");
    let top = json(&oci.join("index.json"));
    let entry = &top["manifests"][0];
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let index: Value = serde_json::from_slice(&blob(&oci, entry)).unwrap();
    let found: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["platform"]["architecture"] == arch)
        .collect();
    assert_eq!(found.len(), 1, "index: {arch}");
    assert_eq!(found[0]["platform"]["os"], "linux");
    let manifest: Value = serde_json::from_slice(&blob(&oci, found[0])).unwrap();
    let config: Value = serde_json::from_slice(&blob(&oci, &manifest["config"])).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    let dir = TempDir::new("oci-layer");
    std::fs::write(dir.join("layer.tar"), blob(&oci, &layers[0])).unwrap();
    std::fs::create_dir(dir.join("root")).unwrap();
    let o = run(Command::new("tar")
        .arg("-xf")
        .arg(dir.join("layer.tar"))
        .arg("-C")
        .arg(dir.join("root")));
    assert!(o.status.success(), "tar: {}", stderr(&o));
    (manifest, config, dir)
}

#[test]
fn oci_layout_images_are_the_dist_binaries_of_their_arch() {
    let sbom = std::fs::read(dist("sbom.cdx.json")).unwrap();
    for (arch, oci_arch) in ARCHS {
        let (_, config, dir) = oci_image(oci_arch);
        assert_eq!(config["architecture"], oci_arch);
        assert_eq!(config["os"], "linux");
        let root = dir.join("root");
        for t in TOOLS {
            let in_image = std::fs::read(root.join("usr/local/bin").join(t)).unwrap();
            let built = std::fs::read(dist(&format!("{arch}/{t}"))).unwrap();
            assert!(in_image == built, "{oci_arch} image: {t} is not dist/{arch}/{t}");
        }
        let label = config["config"]["Labels"]["dockhand.sbom"].as_str().unwrap();
        let in_image = std::fs::read(root.join(label.trim_start_matches('/'))).unwrap();
        assert!(
            in_image == sbom,
            "{oci_arch} image: {label} is not dist/sbom.cdx.json"
        );
    }
}

/// Removes a Docker image on drop.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

#[test]
fn skopeo_loads_the_oci_image_into_docker() {
    let test = "skopeo_loads_the_oci_image_into_docker";
    if !have("docker", &["info"]) {
        skip(test, "needs a running Docker engine");
        return;
    }
    if !installed("skopeo") {
        skip(test, "needs skopeo (Debian); `make setup` installs it");
        return;
    }
    let (arch, oci_arch) = match std::env::consts::ARCH {
        "x86_64" => ARCHS[0],
        "aarch64" => ARCHS[1],
        other => return skip(test, &format!("no image for this machine ({other})")),
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let image = Image(format!(
        "dockhand-it/supply-{}-{nanos}:latest",
        std::process::id()
    ));
    let o = run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &format!("oci:{}:latest", dist("oci").display()),
        &format!("docker-daemon:{}", image.0),
    ]));
    assert!(o.status.success(), "skopeo copy: {}", stderr(&o));
    let o = run(Command::new("docker").args(["image", "inspect", "-f", "{{.Architecture}}", &image.0]));
    assert_eq!(stdout(&o).trim(), oci_arch, "{o:?}");
    let o = run(Command::new("docker").args(["run", "--rm", &image.0, "runas", "--version"]));
    assert!(o.status.success(), "docker run: {o:?}");
    let want = run(Command::new(dist(&format!("{arch}/runas"))).arg("--version"));
    assert_eq!(stdout(&o), stdout(&want));
    assert!(
        stdout(&o).contains(&format!(", {arch}-unknown-linux-musl, ")),
        "{}",
        stdout(&o)
    );
}
