#!/usr/bin/env bash
# What an SBOM costs: `hoist build` with SBOMs (the default) against `--no-sbom`, in
# one run, on the same inputs, each with a warm layer cache (so the build itself is
# mostly assembly and writing, and the SBOM's share is as large as it gets):
#
#   example     examples/dashboard, both platforms, --output oci:DIR
#   tree        one layer of a generated SIZE_MB tree (benches/gen_tree.py) on
#               testdata/base (amd64), --output oci:DIR
#   tree+files  the same with sbom_files = true (every file hashed into the SBOM)
#   tree-cold   the tree with --no-cache (every layer compressed again: a CI build)
#
# Reports mean wall times (hyperfine) and the SBOM's share of the build,
# (with - without) / with.
#
#   benches/sbom-cost.sh                 # cargo build --release first, 100 MiB tree
#   NO_BUILD=1 RUNS=10 SIZE_MB=100 benches/sbom-cost.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-10}
SIZE_MB=${SIZE_MB:-100}
HOIST=${HOIST:-$repo/target/release/hoist}
export LC_ALL=C CI=true
command -v hyperfine >/dev/null || { echo "sbom-cost.sh: hyperfine is missing" >&2; exit 1; }
[ "${NO_BUILD:-0}" = 1 ] || (cd "$repo" && cargo build --release -q)

work=$(mktemp -d "${TMPDIR:-/tmp}/hoist-sbom-cost.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 "$repo/benches/gen_tree.py" "$work/tree" "$SIZE_MB"
for files in false true; do
    cat >"$work/tree-$files.toml" <<TOML
[image]
name = "bench/tree"
base = "oci:$repo/testdata/base:1.0"
platforms = ["linux/amd64"]
sbom_files = $files

[[layer]]
from = "tree"
to = "/data"
TOML
done

run() { # run NAME CONFIG [EXTRA FLAGS]
    local name=$1 config=$2
    shift 2
    local cmd="$HOIST build --config $config --cache-dir $work/cache --output oci:$work/out-$name $*"
    # Warm the layer cache once, then time with and without SBOMs alternately.
    $cmd >/dev/null 2>&1
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/$name.json" \
        --prepare "rm -rf $work/out-$name" \
        -n "$name with SBOM" "$cmd" \
        -n "$name --no-sbom" "$cmd --no-sbom" >&2
    python3 - "$work/$name.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
with_sbom, without = r[0]["mean"], r[1]["mean"]
share = (with_sbom - without) / with_sbom * 100
print(f"{sys.argv[2]:<11} with SBOM {with_sbom*1000:8.1f} ms   --no-sbom {without*1000:8.1f} ms   SBOM share {share:5.1f}%")
PY
}

run example "$repo/examples/dashboard/hoist.toml"
run tree "$work/tree-false.toml"
run tree+files "$work/tree-true.toml"
# Cold: every layer compressed again (--no-cache), the usual CI build.
run tree-cold "$work/tree-false.toml" --no-cache
