#!/usr/bin/env python3
"""Validate the orchestrator examples offline, as a cluster's API server would.

    validate-manifests.py kubernetes FILE.yaml...   each document against the
        Kubernetes OpenAPI schemas of the newest version kubernetes-validate
        knows (strict: unknown fields are errors)
    validate-manifests.py ecs FILE.json...          the task definition as the
        input of ECS RegisterTaskDefinition, with the API model botocore ships

Prints one line per file and document; exits 1 when any is invalid.
"""
import json
import sys


def kubernetes(paths):
    import kubernetes_validate
    import kubernetes_validate.utils as kv_utils
    import yaml

    version = kv_utils.latest_version()
    bad = 0
    for path in paths:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if not docs:
            print(f"{path}: no documents")
            bad += 1
        for doc in docs:
            what = f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            try:
                kubernetes_validate.validate(doc, version, strict=True)
                print(f"{what}: valid for Kubernetes {version}")
            except kubernetes_validate.ValidationError as e:
                print(f"{what}: INVALID for Kubernetes {version}: {e.message} at {list(e.path)}")
                bad += 1
            except kubernetes_validate.utils.SchemaNotFoundError as e:
                print(f"{what}: no schema: {e}")
                bad += 1
    return bad


def ecs(paths):
    import botocore.session
    from botocore.validate import ParamValidator

    shape = (
        botocore.session.get_session()
        .get_service_model("ecs")
        .operation_model("RegisterTaskDefinition")
        .input_shape
    )
    bad = 0
    for path in paths:
        with open(path) as f:
            params = json.load(f)
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            print(f"{path}: INVALID RegisterTaskDefinition input: "
                  + report.generate_report().replace("\n", "; "))
            bad += 1
        else:
            print(f"{path}: valid RegisterTaskDefinition input (botocore {botocore.__version__})")
    return bad


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("kubernetes", "ecs"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    bad = {"kubernetes": kubernetes, "ecs": ecs}[sys.argv[1]](sys.argv[2:])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
