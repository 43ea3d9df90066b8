# dockhand: the two commands a newcomer needs are `make demo` and `make test`.
# Both install what they need (Debian packages, rustup targets) first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup dist test test-unit demo bench fuzz fmt clippy lint clean

help:
	@echo "make demo    build everything and show the tools working together"
	@echo "make test    the whole test suite (unit, integration as root, qemu aarch64, Docker E2E)"
	@echo "make dist    static release binaries in dist/x86_64 and dist/aarch64, with a size table"
	@echo "make bench   measure against the tools dockhand replaces (bench/RESULTS.md)"
	@echo "make fuzz    run every fuzz target for a bounded time"
	@echo "make sbom    CycloneDX SBOM of the toolkit in dist/sbom.cdx.json (make dist writes it too)"
	@echo "make oci     the multi-arch toolkit image as an OCI layout in dist/oci (make dist writes it too)"
	@echo "make reproduce  build a second clean checkout and compare every dist file's sha256"

setup:
	@scripts/setup.sh

dist: setup
	@scripts/dist.sh

test: dist
	cargo test --workspace --all-features --locked -- --test-threads=$${TEST_THREADS:-4}

test-unit:
	cargo test --workspace --all-features --locked --lib --bins

demo: dist
	@scripts/demo.sh

bench: dist
	@bench/run.sh

fuzz:
	@fuzz/run.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

clean:
	rm -rf dist target

# Check Cargo.lock against the RustSec advisory DB (needs GitHub; see SECURITY.md).
.PHONY: audit
audit:
	@scripts/audit.sh

# Supply chain (README "Supply chain"): SBOM, OCI image layout, reproducibility.
.PHONY: sbom oci reproduce
sbom:
	@scripts/sbom.py

oci: dist
	@scripts/oci.py

reproduce: setup
	@scripts/reproduce.sh
