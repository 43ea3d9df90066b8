//! The orchestrator examples validated offline, as the API would take them:
//! examples/kubernetes against the Kubernetes schemas (kubernetes-validate,
//! strict), examples/ecs as the input of ECS RegisterTaskDefinition (the API
//! model that ships in botocore). `make setup` installs both, pinned, into
//! .cache/validate. Each check is shown to fail on a broken copy, so a pass
//! means something.

use dockhand_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn python(test: &str) -> Option<PathBuf> {
    let p = repo().join(".cache/validate/bin/python");
    if p.is_file() {
        Some(p)
    } else {
        skip(
            test,
            "no .cache/validate: run `make setup` (kubernetes-validate, botocore)",
        );
        None
    }
}

fn validate(py: &Path, kind: &str, files: &[&Path]) -> Output {
    run(Command::new(py)
        .arg(repo().join("scripts/validate-manifests.py"))
        .arg(kind)
        .args(files))
}

#[test]
fn kubernetes_examples_validate_and_a_typo_does_not() {
    let Some(py) = python("kubernetes_examples_validate_and_a_typo_does_not") else {
        return;
    };
    let file = repo().join("examples/kubernetes/deployment.yaml");
    let o = validate(&py, "kubernetes", &[&file]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("Deployment/app: valid for Kubernetes"), "{out}");
    assert!(out.contains("PersistentVolumeClaim/app-data: valid"), "{out}");

    // The same file with one field misspelt must be refused.
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("periodSeconds: 10"));
    let dir = TempDir::new("manifests");
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, text.replacen("periodSeconds: 10", "periodSecond: 10", 1)).unwrap();
    let o = validate(&py, "kubernetes", &[&broken]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(out.contains("Deployment/app: INVALID"), "{out}");
}

#[test]
fn ecs_task_definition_validates_and_a_wrong_type_does_not() {
    let Some(py) = python("ecs_task_definition_validates_and_a_wrong_type_does_not") else {
        return;
    };
    let file = repo().join("examples/ecs/task-definition.json");
    let o = validate(&py, "ecs", &[&file]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("valid RegisterTaskDefinition input"), "{out}");

    // An interval given as a string, as people write it in YAML-minded JSON.
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"interval\": 10"));
    let dir = TempDir::new("manifests");
    let broken = dir.join("broken.json");
    std::fs::write(
        &broken,
        text.replacen("\"interval\": 10", "\"interval\": \"10s\"", 1),
    )
    .unwrap();
    let o = validate(&py, "ecs", &[&broken]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(out.contains("INVALID") && out.contains("interval"), "{out}");
}
