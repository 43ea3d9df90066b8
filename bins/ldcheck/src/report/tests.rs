//! A small report built from hand-made walks, in its three forms.

use super::*;
use crate::elf::Elf;
use crate::resolve::Node;
use crate::root::Root;

fn object(canon: &str, ino: u64) -> Arc<Object> {
    Arc::new(Object {
        canon: canon.to_string(),
        id: (1, ino),
        elf: Elf::default(),
    })
}

fn node(name: &str, obj: Option<Arc<Object>>, loader: Option<usize>, found_by: FoundBy) -> Node {
    Node {
        name: name.to_string(),
        obj,
        names: vec![name.to_string()],
        loader,
        found_by,
        searched: None,
    }
}

/// /app/x needs libc.so.6 (found), a library with control characters in
/// its name and libgone.so.1 (both missing, searched in 14 places), and a
/// version libc lacks; one weak version too.
fn walk() -> (Vec<(String, Arc<Object>)>, Vec<Loaded>) {
    let main = object("/app/x", 1);
    let searched = Arc::new(Searched {
        first: (0..Searched::KEPT).map(|i| format!("/d/{i}")).collect(),
        total: 14,
    });
    let evil = "libevil\u{1b}]0;owned\u{7}\n.so";
    let mut nodes = vec![
        node("/app/x", Some(main.clone()), None, FoundBy::Main),
        node(
            "/lib/libc.so.6",
            Some(object("/lib/libc.so.6", 2)),
            Some(0),
            FoundBy::Default,
        ),
        node("libgone.so.1", None, Some(0), FoundBy::NotFound),
        node(evil, None, Some(0), FoundBy::NotFound),
    ];
    nodes[2].searched = Some(searched.clone());
    nodes[3].searched = Some(Arc::new(Searched {
        first: vec!["/d/0".into(), "ld.so.cache".into()],
        total: 2,
    }));
    let version = |v: &str, weak| VersionError {
        version: v.to_string(),
        library: "/lib/libc.so.6".to_string(),
        needed_by: "/app/x".to_string(),
        weak,
    };
    let l = Loaded {
        nodes,
        edges: vec![
            (0, "libc.so.6".to_string(), 1),
            (0, "libgone.so.1".to_string(), 2),
            (0, evil.to_string(), 3),
        ],
        interp: None,
        version_errors: vec![version("GLIBC_9.99", false), version("GLIBC_9.98", true)],
        symbol_errors: Vec::new(),
        missing_interp: None,
        ..Loaded::default()
    };
    (vec![("/app/x".to_string(), main)], vec![l])
}

fn report() -> Report {
    let dir = std::env::temp_dir().join(format!("ldcheck-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = Root::new(&dir);
    let loader = Loader::new(&root, None, false);
    let (entries, loaded) = walk();
    let opts = Options {
        root: "/".into(),
        ..Options::default()
    };
    let r = build(Input {
        opts: &opts,
        loader: &loader,
        walk: &Walk::default(),
        files: 2,
        entries: &entries,
        loaded: &loaded,
        unreadable: vec![("/app/broken.so".into(), "bad ELF class 9".into())],
        skipped: Vec::new(),
        gpu: false,
        codename: None,
        stubs: Vec::new(),
        compat: Vec::new(),
        libc: Default::default(),
    });
    let _ = std::fs::remove_dir_all(&dir);
    r
}

#[test]
fn text_says_what_is_missing_and_what_was_cut() {
    let t = render(&report(), Format::Text);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines.contains(&"missing libgone.so.1, needed by /app/x"), "{t}");
    // Ten places shown, four more counted.
    assert!(
        lines.contains(
            &"  searched: /d/0, /d/1, /d/2, /d/3, /d/4, /d/5, /d/6, /d/7, /d/8, /d/9 and 4 more not shown"
        ),
        "{t}"
    );
    // Nothing cut: no note.
    assert!(lines.contains(&"  searched: /d/0, ld.so.cache"), "{t}");
    assert!(
        lines.contains(&"version `GLIBC_9.99' not found in /lib/libc.so.6 (required by /app/x)"),
        "{t}"
    );
    assert!(
        lines
            .contains(&"warning: weak version `GLIBC_9.98' not found in /lib/libc.so.6 (required by /app/x)"),
        "{t}"
    );
    assert!(lines.contains(&"warning: /app/broken.so: bad ELF class 9"), "{t}");
    assert_eq!(
        lines.last(),
        Some(&"FAILED: 2 ELF files, 1 entry points, 2 missing, 1 version errors"),
        "{t}"
    );
}

#[test]
fn control_characters_are_escaped_in_text_and_tree() {
    for f in [Format::Text, Format::Tree] {
        let t = render(&report(), f);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
        assert!(t.contains("libevil\\u{1b}]0;owned\\u{7}\\u{a}.so"), "{t}");
    }
}

#[test]
fn tree_shows_each_library_and_how_it_was_found() {
    let t = render(&report(), Format::Tree);
    let want = "/app/x\n\
                ├── libc.so.6 => /lib/libc.so.6 [default]\n\
                ├── libgone.so.1 => not found\n\
                └── libevil\\u{1b}]0;owned\\u{7}\\u{a}.so => not found\n\n";
    assert!(t.starts_with(want), "{t}");
    // The summary follows.
    assert!(t.contains("missing libgone.so.1, needed by /app/x"), "{t}");
}

#[test]
fn json_has_counts_and_the_first_places() {
    let j = render(&report(), Format::Json);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["files"], 2);
    let missing = v["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 2);
    let gone = missing.iter().find(|m| m["soname"] == "libgone.so.1").unwrap();
    assert_eq!(gone["tried"].as_array().unwrap().len(), Searched::KEPT);
    assert_eq!(gone["tried"][0], "/d/0");
    assert_eq!(gone["tried_total"], 14);
    assert_eq!(gone["needed_by"][0], "/app/x");
    let evil = missing.iter().find(|m| m["soname"] != "libgone.so.1").unwrap();
    assert_eq!(evil["soname"], "libevil\u{1b}]0;owned\u{7}\n.so");
    assert!(!j.contains('\u{1b}') && j.contains("\\u001b"), "serde escapes it");
    // One VersionError type: the weak flag is which list, not a field.
    assert_eq!(v["version_errors"][0]["version"], "GLIBC_9.99");
    assert!(v["version_errors"][0].get("weak").is_none(), "{j}");
    assert_eq!(v["weak_version_warnings"][0]["version"], "GLIBC_9.98");
    let libs = v["entries"][0]["libraries"].as_array().unwrap();
    assert_eq!(libs.len(), 3);
    assert_eq!(libs[0]["found_by"], "default");
    assert_eq!(libs[1]["found_by"], "not found");
    assert!(libs[1]["path"].is_null());
}

#[test]
fn text_form_leaves_out_the_per_entry_libraries() {
    let dir = std::env::temp_dir().join(format!("ldcheck-report-s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = Root::new(&dir);
    let loader = Loader::new(&root, None, false);
    let (entries, loaded) = walk();
    let opts = Options {
        summary_only: true,
        ignore: vec!["libgone.so.1".into()],
        ..Options::default()
    };
    let r = build(Input {
        opts: &opts,
        loader: &loader,
        walk: &Walk::default(),
        files: 2,
        entries: &entries,
        loaded: &loaded,
        unreadable: Vec::new(),
        skipped: Vec::new(),
        gpu: false,
        codename: None,
        stubs: Vec::new(),
        compat: Vec::new(),
        libc: Default::default(),
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(r.entries.is_empty());
    assert_eq!(r.missing.len(), 1);
    assert_eq!(r.ignored[0].soname, "libgone.so.1");
    let t = render(&r, Format::Text);
    assert!(t.contains("ignored: libgone.so.1 (needed by /app/x)"), "{t}");
}

#[test]
fn sarif_has_one_result_per_finding_located_at_the_file() {
    let j = render(&report(), Format::Sarif);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().unwrap();
    let ids: Vec<&str> = results.iter().map(|r| r["ruleId"].as_str().unwrap()).collect();
    // Two missing libraries, one version error (the weak one is a warning, not a result).
    assert_eq!(
        ids,
        ["missing-library", "missing-library", "version-missing"],
        "{j}"
    );
    for r in results {
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "app/x",
            "{j}"
        );
    }
    assert_eq!(
        v["runs"][0]["originalUriBaseIds"]["ROOT"]["uri"], "file:///",
        "{j}"
    );
}
