#!/usr/bin/env bash
# Compare hoist's layer building against the classic shell pipelines, on the
# same generated tree, at gzip level 6:
#
#   hoist build  (scratch base, one layer = the tree, --no-cache)
#   tar | gzip -6 -n | sha256sum
#   tar | pigz -6 -n | sha256sum
#
# Reports mean wall time (hyperfine, --warmup 1 --runs 5), peer_time/hoist_time
# (>1 means hoist is faster), compressed output sizes and peak RSS.
#
# Usage: benches/compare.sh                 # build target/release/hoist, 256 MiB tree
#   SIZE_MB=64 benches/compare.sh           # smaller tree
#   PEERS_ONLY=1 benches/compare.sh         # only the tar pipelines (no hoist needed)
#   NO_BUILD=1 benches/compare.sh           # use target/release/hoist as it is
#   HOIST_EXTRA_ARGS="..." benches/compare.sh   # extra flags for `hoist build`
#   HOIST=/path/to/hoist NO_BUILD=1 benches/compare.sh   # time another binary
#   RUNS=10 WARMUP=2 RESULTS_DIR=/some/dir benches/compare.sh
#
# hoist gets `--compression gzip --compression-level 6` explicitly (6 is also
# its default), so the three commands always compress at the same level.
#
# Results (hyperfine JSON, the table) go to RESULTS_DIR (default
# target/bench-compare/), everything else to a temp dir removed on exit.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MB=${SIZE_MB:-256}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
PEERS_ONLY=${PEERS_ONLY:-0}
NO_BUILD=${NO_BUILD:-0}
HOIST_EXTRA_ARGS=${HOIST_EXTRA_ARGS:-}
RESULTS_DIR=${RESULTS_DIR:-$repo/target/bench-compare}
HOIST=${HOIST:-$repo/target/release/hoist} # override to time another build
export LC_ALL=C

die() { printf 'compare.sh: error: %s\n' "$*" >&2; exit 1; }
note() { printf '==> %s\n' "$*" >&2; }

case $SIZE_MB in '' | *[!0-9]*) die "SIZE_MB must be a positive integer, got '$SIZE_MB'" ;; esac
[ "$SIZE_MB" -gt 0 ] || die "SIZE_MB must be > 0"

# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------
# GNU time, for "Maximum resident set size" (bash's `time` keyword has no RSS).
if [ ! -x /usr/bin/time ]; then
    note "installing GNU time (for peak RSS)"
    if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo -n); fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends time >&2 ||
        die "/usr/bin/time missing and could not install the 'time' package"
fi
for t in hyperfine tar gzip pigz sha256sum python3 wc; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' not found (Debian: apt-get install hyperfine pigz python3)"
done
tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is required (--sort=name)"

if [ "$PEERS_ONLY" != 1 ]; then
    if [ "$NO_BUILD" != 1 ]; then
        command -v cargo >/dev/null 2>&1 || die "cargo not found: build hoist first or set NO_BUILD=1"
        note "cargo build --release"
        (cd "$repo" && cargo build --release --quiet) || die "cargo build --release failed"
    fi
    [ -x "$HOIST" ] || die "$HOIST not found or not executable (run 'cargo build --release', or PEERS_ONLY=1 to time only the tar pipelines)"
fi

# ---------------------------------------------------------------------------
# Temp dir and the generated tree
# ---------------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hoist-compare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM # runs the EXIT trap too
tree=$tmp/tree
mkdir -p "$RESULTS_DIR"

note "generating a ${SIZE_MB} MiB tree in $tree"
python3 - "$tree" "$SIZE_MB" <<'PY'
# Deterministic (seeded PRNG): same SIZE_MB -> same files, byte for byte, so runs
# on different days or machines compare the same input. A realistic mix by bytes:
#   ~30% many small text files (JS/CSS/JSON/Markdown-like, 0.5-32 KiB): compress well
#   ~40% larger semi-compressible files (1-8 MiB: text interleaved with noise,
#        like binaries, .so files, sqlite dbs)
#   ~30% incompressible blobs (1-16 MiB random: like images, fonts, archives)
import os, random, sys

root, size_mb = sys.argv[1], int(sys.argv[2])
total = size_mb * 1024 * 1024
rng = random.Random(0x5EED)

words = ("const let var function return import export from default async await "
         "if else for while new this class extends super null undefined true false "
         "module exports require props state render component value key index data "
         "color margin padding display flex grid border width height font px em "
         "rem none auto solid inherit").split()
idents = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12)))
          for _ in range(2000)]

def line():
    n = rng.randint(3, 14)
    toks = [rng.choice(words) if rng.random() < 0.6 else rng.choice(idents) for _ in range(n)]
    indent = "  " * rng.randint(0, 4)
    return indent + " ".join(toks) + rng.choice([";", " {", "}", ",", ""]) + "\n"

# A shared pool of lines: files repeat lines from it, as real code repeats idioms.
pool = [line().encode() for _ in range(5000)]

def text(n):
    out, size = [], 0
    while size < n:
        chunk = rng.choices(pool, k=64)
        out.extend(chunk)
        size += sum(map(len, chunk))
    return b"".join(out)[:n]

def semi(n):
    # 4 KiB blocks, about two thirds text and one third noise.
    out, size = [], 0
    while size < n:
        b = text(4096) if rng.random() < 0.65 else rng.randbytes(4096)
        out.append(b)
        size += 4096
    return b"".join(out)[:n]

def write(rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

budget = {"small": total * 30 // 100, "semi": total * 40 // 100}
budget["random"] = total - budget["small"] - budget["semi"]
exts = [".js", ".js", ".ts", ".css", ".json", ".md", ".html", ".d.ts"]

used, i = 0, 0
while used < budget["small"]:
    n = min(int(rng.lognormvariate(8.5, 1.0)) + 512, 32 * 1024, budget["small"] - used)
    pkg = f"node_modules/pkg{i // 40:04d}"
    sub = rng.choice(["dist", "lib", "src", "dist/esm", "types"])
    write(f"{pkg}/{sub}/f{i:06d}{rng.choice(exts)}", text(n))
    used += n
    i += 1

used, j = 0, 0
while used < budget["semi"]:
    n = min(rng.randint(1, 8) * 1024 * 1024 + rng.randint(0, 4095), budget["semi"] - used)
    write(f"lib/native/libthing{j:03d}.so", semi(n))
    used += n
    j += 1

used, k = 0, 0
while used < budget["random"]:
    n = min(rng.randint(1, 16) * 1024 * 1024 + rng.randint(0, 4095), budget["random"] - used)
    write(f"assets/media/blob{k:03d}{rng.choice(['.jpg', '.woff2', '.gz', '.png'])}", rng.randbytes(n))
    used += n
    k += 1

print(f"generated {i} small, {j} semi-compressible, {k} random files, {total} bytes",
      file=sys.stderr)
PY

# File bytes only (du would add directory sizes).
tree_bytes=$(find "$tree" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
tar_cmd="tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C '$tree' -cf - ."
gzip_cmd="$tar_cmd | gzip -6 -n | sha256sum"
pigz_cmd="$tar_cmd | pigz -6 -n | sha256sum"

# hoist: scratch base, the tree as one layer. --no-cache so every run really
# builds the layer; --cache-dir inside the temp dir so the benchmark never
# fills (or reads) the user's cache; output layout and cache are removed
# before each run (--prepare) so no run can skip writing an existing blob.
cat >"$tmp/hoist.toml" <<EOF
[image]
name = "bench/compare"
base = "scratch"
platforms = ["linux/amd64"]

[[layer]]
from = "$tree"
to = "/data"
EOF
hoist_cmd="'$HOIST' build --config '$tmp/hoist.toml' --output 'oci:$tmp/out' --cache-dir '$tmp/cache' --no-cache --compression gzip --compression-level 6 $HOIST_EXTRA_ARGS"

# ---------------------------------------------------------------------------
# One checked run of each first: fail early with the real error message (which
# hyperfine would hide), and collect output sizes and peak RSS.
# ---------------------------------------------------------------------------
# rss_kib CMD: peak RSS in KiB. GNU time reports the largest ru_maxrss among the
# processes it waited for, not the sum, so a pipeline is measured stage by
# stage and the stages are added (they run concurrently, at steady state).
rss_of() { sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1"; }
T=/usr/bin/time

note "checking each command once (sizes, peak RSS)"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tree" -cf - . | sha256sum >"$tmp/tar.sha"
tar_sha=$(cut -d' ' -f1 "$tmp/tar.sha")

declare -A size rss
for peer in gzip pigz; do
    $T -v -o "$tmp/rss.$peer.tar" \
        tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tree" -cf - . |
        $T -v -o "$tmp/rss.$peer.z" "$peer" -6 -n |
        tee >(wc -c >"$tmp/size.$peer") |
        $T -v -o "$tmp/rss.$peer.sha" sha256sum >/dev/null
    wait # for the wc in the process substitution
    size[$peer]=$(tr -d ' ' <"$tmp/size.$peer")
    rss[$peer]=$(($(rss_of "$tmp/rss.$peer.tar") + $(rss_of "$tmp/rss.$peer.z") + $(rss_of "$tmp/rss.$peer.sha")))
done

if [ "$PEERS_ONLY" != 1 ]; then
    rm -rf "$tmp/out" "$tmp/cache"
    # shellcheck disable=SC2086 # HOIST_EXTRA_ARGS is a list of flags
    if ! $T -v -o "$tmp/rss.hoist" "$HOIST" build --config "$tmp/hoist.toml" --output "oci:$tmp/out" \
        --cache-dir "$tmp/cache" --no-cache --compression gzip --compression-level 6 $HOIST_EXTRA_ARGS >"$tmp/hoist.log" 2>&1; then
        cat "$tmp/hoist.log" >&2
        die "hoist build failed (output above)"
    fi
    rss[hoist]=$(rss_of "$tmp/rss.hoist")
    # The layer blob: follow index.json to the (only) image manifest, take its
    # last layer. Handles both a bare manifest and an index in index.json.
    size[hoist]=$(python3 - "$tmp/out" <<'PY'
import json, os, sys
root = sys.argv[1]
def blob(d):
    algo, hexd = d["digest"].split(":", 1)
    return os.path.join(root, "blobs", algo, hexd)
node = json.load(open(os.path.join(root, "index.json")))
while "manifests" in node:
    if len(node["manifests"]) != 1:
        sys.exit(f"expected one manifest in {root}, found {len(node['manifests'])}")
    node = json.load(open(blob(node["manifests"][0])))
layer = node["layers"][-1]
assert os.path.getsize(blob(layer)) == layer["size"], "layer blob size differs from its descriptor"
print(layer["size"])
PY
)
fi

# ---------------------------------------------------------------------------
# Timings
# ---------------------------------------------------------------------------
json=$RESULTS_DIR/hyperfine-${SIZE_MB}MiB.json
hf=(hyperfine --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" --style basic)
if [ "$PEERS_ONLY" != 1 ]; then
    hf+=(--prepare "rm -rf '$tmp/out' '$tmp/cache'" -n hoist "$hoist_cmd")
    # --prepare applies to every command; the peers write neither directory,
    # so for them it is a no-op.
fi
hf+=(-n "tar|gzip -6" "$gzip_cmd" -n "tar|pigz -6" "$pigz_cmd")
note "hyperfine (${RUNS} runs, ${WARMUP} warmup)"
"${hf[@]}" >&2

# ---------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------
table=$RESULTS_DIR/compare-${SIZE_MB}MiB.txt
python3 - "$json" "$tree_bytes" "$tar_sha" "$PEERS_ONLY" \
    "${size[hoist]:-}" "${size[gzip]}" "${size[pigz]}" \
    "${rss[hoist]:-}" "${rss[gzip]}" "${rss[pigz]}" <<'PY' | tee "$table"
import json, sys
(path, tree_bytes, tar_sha, peers_only,
 s_hoist, s_gzip, s_pigz, r_hoist, r_gzip, r_pigz) = sys.argv[1:]
tree_bytes = int(tree_bytes)
res = {r["command"]: r for r in json.load(open(path))["results"]}
rows = [("hoist", s_hoist, r_hoist), ("tar|gzip -6", s_gzip, r_gzip), ("tar|pigz -6", s_pigz, r_pigz)]
rows = [r for r in rows if r[0] in res]
base = res.get("hoist")
print(f"input: {tree_bytes} bytes ({tree_bytes / 2**20:.1f} MiB), uncompressed tar sha256 {tar_sha}")
print(f"{'command':<13} {'mean s':>8} {'± s':>6} {'MB/s':>7} {'vs hoist':>9} {'output bytes':>13} {'ratio':>6} {'peak RSS MiB':>12}")
for name, size, rss in rows:
    r = res[name]
    mean, sd = r["mean"], r["stddev"] or 0.0
    vs = "-" if base is None or name == "hoist" else f"{mean / base['mean']:.2f}x"
    size = int(size) if size else 0
    print(f"{name:<13} {mean:>8.3f} {sd:>6.3f} {tree_bytes / mean / 1e6:>7.1f} {vs:>9} "
          f"{size:>13} {size / tree_bytes:>6.3f} {int(rss) / 1024 if rss else 0:>12.1f}")
print("vs hoist = peer_time / hoist_time (>1: hoist is faster). ratio = output / input bytes.")
print("peak RSS of a pipeline = sum of its stages' peaks (tar + compressor + sha256sum).")
PY
note "results: $json, $table"
