#!/usr/bin/env bash
# Python dependencies from a lock, for linux/amd64 and linux/arm64 (issue "Dependencies
# as layers"): hoist's `[[layer]] python = {…}` against `uv pip install --target` for
# each platform followed by `tar | pigz` (what a user without hoist would script), on the
# same lock and wheelhouse, cold (empty caches) and warm (an unchanged lock).
#
#   hoist-cold   hoist build, empty layer cache
#   hoist-warm   hoist build, the layer cache of the previous run
#   uv-cold      uv pip install --target ×2 + tar|pigz, empty uv cache
#   uv-warm      the same with uv's cache kept
#
# The wheels (fastapi 0.115.6, uvicorn 0.32.1, pydantic 2.10.3, orjson 3.10.12 and their
# dependencies for cp311, both architectures: 14 wheels, ~5 MB) are fetched once with
# `pip download` into target/bench-wheels; uv into target/venv (`pip install uv`).
#
#   benches/python.sh                      # cargo build --release first
#   NO_BUILD=1 RUNS=10 benches/python.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
HOIST=${HOIST:-$repo/target/release/hoist}
UV=${UV:-$repo/target/venv/bin/uv}
WHEELS=${WHEELS:-$repo/target/bench-wheels}
export LC_ALL=C CI=true
command -v hyperfine >/dev/null || { echo "python.sh: hyperfine is missing" >&2; exit 1; }
command -v pigz >/dev/null || { echo "python.sh: pigz is missing" >&2; exit 1; }
[ "${NO_BUILD:-0}" = 1 ] || (cd "$repo" && cargo build --release -q)
if [ ! -x "$UV" ]; then
    [ -x "$repo/target/venv/bin/pip" ] || python3 -m venv "$repo/target/venv"
    "$repo/target/venv/bin/pip" install -q --disable-pip-version-check uv
fi

if [ ! -f "$WHEELS/.complete" ]; then
    mkdir -p "$WHEELS"
    for arch in x86_64 aarch64; do
        python3 -m pip download -q --disable-pip-version-check --only-binary=:all: \
            --platform "manylinux_2_17_$arch" --python-version 3.11 --implementation cp \
            --abi cp311 -d "$WHEELS" fastapi==0.115.6 uvicorn==0.32.1 pydantic==2.10.3 \
            orjson==3.10.12
    done
    touch "$WHEELS/.complete"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hoist-python-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The lock: every wheel's name, version and sha256, as `uv pip compile
# --generate-hashes` writes it (one line per package, one hash per file).
python3 - "$WHEELS" >"$work/requirements.lock" <<'PY'
import hashlib, os, sys
packages = {}
for f in sorted(os.listdir(sys.argv[1])):
    if f.endswith(".whl"):
        name, version = f.split("-")[:2]
        digest = hashlib.sha256(open(os.path.join(sys.argv[1], f), "rb").read()).hexdigest()
        packages.setdefault((name, version), []).append(digest)
for (name, version), digests in packages.items():
    print(f"{name}=={version} " + " ".join(f"--hash=sha256:{d}" for d in digests))
PY
cat >"$work/hoist.toml" <<TOML
[image]
base = "scratch"
platforms = ["linux/amd64", "linux/arm64"]
sbom = false

[[layer]]
python = { lock = "requirements.lock", wheelhouse = "$WHEELS", venv = "/opt/venv", version = "3.11", libc = "glibc-2.28", interpreter = "/usr/local/bin/python3.11" }
TOML

hoist_build="$HOIST build --config $work/hoist.toml --cache-dir $work/cache --output oci:$work/out:1"
uv_install="for a in x86_64 aarch64; do rm -rf $work/uv-\$a; $UV pip install -q --no-deps --no-index --find-links $WHEELS --require-hashes --target $work/uv-\$a --python-platform \$a-manylinux_2_28 --python-version 3.11 -r $work/requirements.lock && tar -C $work/uv-\$a -cf - . | pigz >$work/uv-\$a.tgz; done"
export UV_CACHE_DIR=$work/uv-cache

$hoist_build >/dev/null 2>&1
hyperfine --runs "$RUNS" --warmup 1 --export-markdown "$work/results.md" \
    --prepare "rm -rf $work/cache $work/out" -n hoist-cold "$hoist_build" \
    --prepare "rm -rf $work/out" -n hoist-warm "$hoist_build" \
    --prepare "rm -rf $UV_CACHE_DIR" -n uv-cold "$uv_install" \
    --prepare "true" -n uv-warm "$uv_install"
cat "$work/results.md"
