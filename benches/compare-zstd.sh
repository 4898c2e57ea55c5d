#!/usr/bin/env bash
# zstd layers: hoist against the classic shell pipeline on the same generated tree,
# in one run, side by side:
#
#   hoist build  (scratch base, one layer = the tree, --no-cache, --compression zstd
#                 --compression-level 3, built into a cache dir: no output to write)
#   tar | zstd -3 -T$(nproc) | sha256sum
#
# Reports mean wall time (hyperfine), peer_time/hoist_time (>1 means hoist is
# faster; the target is >= 1.2), the compressed sizes (hoist's must be within 1% of
# zstd's), the load average before and after the timing (the machine is shared: a
# ratio means little above ~1) and checks that hoist's layer digest is the same for
# --jobs 1, 2 and 4.
#
# Usage: benches/compare-zstd.sh            # build target/release/hoist, 100 MiB tree
#   SIZE_MB=256 NO_BUILD=1 RUNS=20 WARMUP=3 benches/compare-zstd.sh
#   HOIST=/path/to/hoist NO_BUILD=1 benches/compare-zstd.sh   # time another binary
# Results (hyperfine JSON, the table) go to RESULTS_DIR (default target/bench-zstd/).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MB=${SIZE_MB:-100}
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
NO_BUILD=${NO_BUILD:-0}
RESULTS_DIR=${RESULTS_DIR:-$repo/target/bench-zstd}
HOIST=${HOIST:-$repo/target/release/hoist}
export LC_ALL=C

die() { printf 'compare-zstd.sh: error: %s\n' "$*" >&2; exit 1; }
note() { printf '==> %s\n' "$*" >&2; }

case $SIZE_MB in '' | *[!0-9]* | 0) die "SIZE_MB must be a positive integer, got '$SIZE_MB'" ;; esac
case $RUNS in '' | *[!0-9]* | 0) die "RUNS must be a positive integer, got '$RUNS'" ;; esac
case $WARMUP in '' | *[!0-9]*) die "WARMUP must be a non-negative integer, got '$WARMUP'" ;; esac
for t in hyperfine tar zstd sha256sum python3 nproc; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' not found (Debian: apt-get install hyperfine zstd python3)"
done
tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is required (--sort=name)"
if [ "$NO_BUILD" != 1 ]; then
    note "cargo build --release"
    (cd "$repo" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[ -x "$HOIST" ] || die "$HOIST not found or not executable (run 'cargo build --release')"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hoist-zstd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$RESULTS_DIR"
tree=$tmp/tree
note "generating a ${SIZE_MB} MiB tree in $tree"
python3 "$repo/benches/gen_tree.py" "$tree" "$SIZE_MB"

cores=$(nproc)
cat >"$tmp/hoist.toml" <<TOML
[image]
name = "bench/zstd"
base = "scratch"
platforms = ["linux/amd64"]

[[layer]]
from = "$tree"
to = "/data"
TOML
hoist_args=(build --config "$tmp/hoist.toml" --cache-dir "$tmp/cache" --no-cache --compression zstd --compression-level 3)
hoist_cmd="'$HOIST' ${hoist_args[*]}"
tar_cmd="tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C '$tree' -cf - ."
peer_cmd="$tar_cmd | zstd -3 -T$cores -q -c | sha256sum"

layer_of() { # prints "digest size" of the one layer hoist built with the given --jobs
    "$HOIST" "${hoist_args[@]}" --jobs "$1" --json 2>/dev/null |
        python3 -c 'import json,sys; l=json.load(sys.stdin)["platforms"][0]["layers"][0]; print(l["digest"], l["size"])'
}
note "checking that --jobs does not change the layer"
read -r digest1 hoist_size < <(layer_of 1)
read -r digest2 _ < <(layer_of 2)
read -r digest4 _ < <(layer_of 4)
[ "$digest1" = "$digest2" ] && [ "$digest1" = "$digest4" ] ||
    die "zstd layer digests differ by --jobs: 1 $digest1, 2 $digest2, 4 $digest4"
peer_size=$(bash -c "$tar_cmd | zstd -3 -T$cores -q -c | wc -c")

note "timing (runs: $RUNS, warmup: $WARMUP, $cores cores)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" \
    --export-json "$RESULTS_DIR/zstd.json" \
    -n hoist "$hoist_cmd" -n "hoist --no-sbom" "$hoist_cmd --no-sbom" \
    -n "tar|zstd -T$cores" "$peer_cmd" >&2

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$RESULTS_DIR/zstd.json" "$hoist_size" "$peer_size" "$digest1" "$cores" "$load_before" "$load_after" <<'PY' | tee "$RESULTS_DIR/zstd.txt"
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
hoist_size, peer_size, digest, cores = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
hoist = results["hoist"]
bare = results["hoist --no-sbom"]
peer = next(r for name, r in results.items() if name.startswith("tar"))
print(f"{'command':<22} {'mean s':>8} {'stddev':>8} {'user s':>8} {'bytes':>12}")
print(f"{'hoist build zstd -3':<22} {hoist['mean']:8.3f} {hoist['stddev']:8.3f} {hoist['user']:8.3f} {hoist_size:12d}")
print(f"{'  the same, --no-sbom':<22} {bare['mean']:8.3f} {bare['stddev']:8.3f} {bare['user']:8.3f}")
print(f"{'tar|zstd -3 -T' + cores:<22} {peer['mean']:8.3f} {peer['stddev']:8.3f} {peer['user']:8.3f} {peer_size:12d}")
print(f"ratio peer/hoist: {peer['mean'] / hoist['mean']:.2f}x (target >= 1.2; --no-sbom: {peer['mean'] / bare['mean']:.2f}x)")
print(f"size hoist/zstd: {hoist_size / peer_size:.4f} (target within 1%)")
print(f"layer digest, same for --jobs 1, 2, 4: {digest}")
print(f"load average (1, 5, 15 min) before: {sys.argv[6]}, after: {sys.argv[7]}")
PY
