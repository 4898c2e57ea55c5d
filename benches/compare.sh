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
# Upload path (PUSH=1, or MODE=push): the same tree, built once by hoist into
# an OCI layout, pushed to a local registry (Debian's `docker-registry`, CNCF
# distribution 2.8, plain HTTP on 127.0.0.1, storage in the temp dir) by
#
#   hoist push   oci:LAYOUT:bench 127.0.0.1:PORT/bench/hoist:1
#   skopeo copy  --all --preserve-digests --dest-tls-verify=false
#                oci:LAYOUT:bench docker://127.0.0.1:PORT/bench/skopeo:1
#
# Each timed first push starts from an empty registry: the --prepare step
# deletes the registry's repositories/bench and blobs directories, so every
# run uploads every blob and the registry does the same work each time (a
# fresh repository name per run would also force uploads, as blob HEADs are
# per repository, but later runs would then land on blobs already in the
# registry's global store, and the store would grow run after run). The
# registry's access log is checked afterwards: one full layer upload per run.
# Then an unchanged re-push (every blob already in the repository) of each.
# Reports mean and median times, skopeo_time/hoist_time (>1 means hoist is faster), MB/s
# of uploaded blob bytes, peak RSS, re-push/first-push, and the manifest
# digests (the layout's, both pushes', and the registry's for both tags),
# which must all match. Defaults: RUNS=5, WARMUP=0, SIZE_MB=256.
#
#   PUSH=1 NO_BUILD=1 benches/compare.sh
#   PUSH=1 HOIST_PUSH_ARGS="--jobs 1" benches/compare.sh   # extra `hoist push` flags
#
# skopeo keeps its blob-info cache where it always does (root:
# /var/lib/containers/cache, else ~/.local/share/containers/cache); it only
# names repositories on this throw-away registry.
#
# Results (hyperfine JSON, the table) go to RESULTS_DIR (default
# target/bench-compare/), everything else to a temp dir removed on exit.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PUSH=${PUSH:-0}
case $PUSH in 0 | 1) ;; *) printf 'compare.sh: error: PUSH must be 0 or 1, got %s\n' "$PUSH" >&2; exit 1 ;; esac
if [ "$PUSH" = 1 ]; then MODE=${MODE:-push}; else MODE=${MODE:-build}; fi
SIZE_MB=${SIZE_MB:-256}
RUNS=${RUNS:-5}
if [ "$MODE" = push ]; then WARMUP=${WARMUP:-0}; else WARMUP=${WARMUP:-1}; fi
PEERS_ONLY=${PEERS_ONLY:-0}
NO_BUILD=${NO_BUILD:-0}
HOIST_EXTRA_ARGS=${HOIST_EXTRA_ARGS:-}
HOIST_PUSH_ARGS=${HOIST_PUSH_ARGS:-}
RESULTS_DIR=${RESULTS_DIR:-$repo/target/bench-compare}
HOIST=${HOIST:-$repo/target/release/hoist} # override to time another build
export LC_ALL=C

die() { printf 'compare.sh: error: %s\n' "$*" >&2; exit 1; }
note() { printf '==> %s\n' "$*" >&2; }

case $SIZE_MB in '' | *[!0-9]*) die "SIZE_MB must be a positive integer, got '$SIZE_MB'" ;; esac
[ "$SIZE_MB" -gt 0 ] || die "SIZE_MB must be > 0"
case $RUNS in '' | *[!0-9]* | 0) die "RUNS must be a positive integer, got '$RUNS'" ;; esac
case $WARMUP in '' | *[!0-9]*) die "WARMUP must be a non-negative integer, got '$WARMUP'" ;; esac
case $MODE in
build) [ "$PUSH" = 0 ] || die "PUSH=$PUSH contradicts MODE=build" ;;
push) [ "$PEERS_ONLY" != 1 ] || die "PEERS_ONLY=1 makes no sense with PUSH=1 / MODE=push (hoist builds the layout)" ;;
*) die "MODE must be 'build' or 'push', got '$MODE'" ;;
esac

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
if [ "$MODE" = build ]; then
    for t in hyperfine tar gzip pigz sha256sum python3 wc; do
        command -v "$t" >/dev/null 2>&1 || die "'$t' not found (Debian: apt-get install hyperfine pigz python3)"
    done
    tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is required (--sort=name)"
else
    for t in hyperfine python3 curl docker-registry skopeo; do
        command -v "$t" >/dev/null 2>&1 ||
            die "'$t' not found (Debian: apt-get install hyperfine python3 curl docker-registry skopeo)"
    done
fi

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
reg_pid= # the registry of the push mode, if started
cleanup() {
    if [ -n "$reg_pid" ]; then
        kill "$reg_pid" 2>/dev/null || true
        wait "$reg_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # runs the EXIT trap too
tree=$tmp/tree
mkdir -p "$RESULTS_DIR"

note "generating a ${SIZE_MB} MiB tree in $tree"
python3 "$repo/benches/gen_tree.py" "$tree" "$SIZE_MB"

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

# GNU time's peak RSS line, in KiB, from a `/usr/bin/time -v -o FILE` report.
rss_of() { sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1"; }
T=/usr/bin/time

# ---------------------------------------------------------------------------
# Upload path (PUSH=1 / MODE=push): hoist push vs skopeo copy, to a registry on
# 127.0.0.1. Ends the script.
# ---------------------------------------------------------------------------
if [ "$MODE" = push ]; then
    reg_dir=$tmp/registry
    reg_store=$reg_dir/storage
    reg_log=$reg_dir/registry.log
    mkdir -p "$reg_dir"

    # shellcheck source=benches/registry.sh
    . "$repo/benches/registry.sh"

    note "starting docker-registry on 127.0.0.1 (storage in $reg_store)"
    start_registry
    note "registry at http://$reg_host/ (pid $reg_pid)"

    # The layout to push: built once, as the build mode builds it.
    layout=$tmp/layout
    note "hoist build -> oci:$layout:bench"
    # shellcheck disable=SC2086 # HOIST_EXTRA_ARGS is a list of flags
    if ! "$HOIST" build --config "$tmp/hoist.toml" --output "oci:$layout:bench" --cache-dir "$tmp/cache" \
        --no-cache --compression gzip --compression-level 6 $HOIST_EXTRA_ARGS >"$tmp/build.log" 2>&1; then
        cat "$tmp/build.log" >&2
        die "hoist build failed (output above)"
    fi
    rm -rf "$tmp/cache" # the layout holds the blobs (hard links); only the layout is read from now on

    # The layout's tag `bench`: its digest, its layer's digest, and the bytes of
    # every blob under it (index, manifests, configs, layers), each checked
    # against its descriptor.
    read -r layout_digest layer_digest image_bytes layer_bytes < <(python3 - "$layout" <<'PY'
import json, os, sys
root = sys.argv[1]
def path(d):
    algo, hexd = d["digest"].split(":", 1)
    return os.path.join(root, "blobs", algo, hexd)
def check(d):
    size = os.path.getsize(path(d))
    if size != d["size"]:
        sys.exit(f"{d['digest']}: {size} bytes in the layout, {d['size']} in its descriptor")
    return size
top = [m for m in json.load(open(os.path.join(root, "index.json")))["manifests"]
       if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "bench"]
if len(top) != 1:
    sys.exit(f"expected one index.json entry tagged 'bench' in {root}, found {len(top)}")
total, layers = 0, []
def walk(d):
    global total
    total += check(d)
    node = json.load(open(path(d)))
    if "manifests" in node:
        for m in node["manifests"]:
            walk(m)
    else:
        total += check(node["config"])
        for l in node["layers"]:
            total += check(l)
            layers.append(l)
walk(top[0])
if len(layers) != 1:
    sys.exit(f"expected one layer, found {len(layers)}")
print(top[0]["digest"], layers[0]["digest"], total, layers[0]["size"])
PY
    ) || die "could not read the layout $layout"
    [ -n "$image_bytes" ] || die "could not read the layout $layout"

    printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$tmp/policy.json"
    src="oci:$layout:bench"
    hoist_push_cmd="'$HOIST' push $HOIST_PUSH_ARGS '$src' '$reg_host/bench/hoist:1'"
    skopeo_cmd="skopeo --policy '$tmp/policy.json' copy --all --preserve-digests --dest-tls-verify=false '$src' 'docker://$reg_host/bench/skopeo:1'"

    # One checked push of each to an empty registry: real error messages,
    # peak RSS, digests. Then a checked re-push of each (also the state the
    # timed re-pushes start from).
    note "checking each push once (digests, peak RSS)"
    declare -A rss
    clean_registry
    # shellcheck disable=SC2086 # HOIST_PUSH_ARGS is a list of flags
    if ! $T -v -o "$tmp/rss.hoist" "$HOIST" push --json $HOIST_PUSH_ARGS "$src" "$reg_host/bench/hoist:1" \
        >"$tmp/hoist-push.json" 2>"$tmp/hoist-push.log"; then
        cat "$tmp/hoist-push.log" "$tmp/hoist-push.json" >&2
        die "hoist push failed (output above)"
    fi
    rss[hoist]=$(rss_of "$tmp/rss.hoist")
    read -r hoist_digest hoist_uploaded hoist_bytes < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["digest"], r["blobs_uploaded"], r["bytes_uploaded"])' "$tmp/hoist-push.json") ||
        die "unexpected hoist push --json output: $(cat "$tmp/hoist-push.json")"
    [ "$hoist_uploaded" -ge 2 ] || die "hoist's first push to an empty registry uploaded $hoist_uploaded blobs (expected the layer and the config)"
    hoist_registry_digest=$(registry_digest hoist) || die "GET bench/hoist:1 from the registry failed"
    if ! $T -v -o "$tmp/rss.hoist-re" "$HOIST" push --json $HOIST_PUSH_ARGS "$src" "$reg_host/bench/hoist:1" \
        >"$tmp/hoist-repush.json" 2>"$tmp/hoist-repush.log"; then
        cat "$tmp/hoist-repush.log" "$tmp/hoist-repush.json" >&2
        die "hoist re-push failed (output above)"
    fi
    rss[hoist-re]=$(rss_of "$tmp/rss.hoist-re")
    repush_uploaded=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["blobs_uploaded"])' "$tmp/hoist-repush.json")
    [ "$repush_uploaded" = 0 ] || die "the unchanged hoist re-push uploaded $repush_uploaded blobs (expected 0)"

    clean_registry
    if ! $T -v -o "$tmp/rss.skopeo" skopeo --policy "$tmp/policy.json" copy --all --preserve-digests \
        --dest-tls-verify=false --digestfile "$tmp/skopeo.digest" "$src" "docker://$reg_host/bench/skopeo:1" \
        >"$tmp/skopeo.log" 2>&1; then
        cat "$tmp/skopeo.log" >&2
        die "skopeo copy failed (output above)"
    fi
    rss[skopeo]=$(rss_of "$tmp/rss.skopeo")
    skopeo_digest=$(cat "$tmp/skopeo.digest")
    skopeo_registry_digest=$(registry_digest skopeo) || die "GET bench/skopeo:1 from the registry failed"
    if ! $T -v -o "$tmp/rss.skopeo-re" skopeo --policy "$tmp/policy.json" copy --all --preserve-digests \
        --dest-tls-verify=false "$src" "docker://$reg_host/bench/skopeo:1" >"$tmp/skopeo-re.log" 2>&1; then
        cat "$tmp/skopeo-re.log" >&2
        die "skopeo re-push failed (output above)"
    fi
    rss[skopeo-re]=$(rss_of "$tmp/rss.skopeo-re")

    note "manifest digests: layout $layout_digest"
    note "  hoist push  $hoist_digest (registry: $hoist_registry_digest)"
    note "  skopeo copy $skopeo_digest (registry: $skopeo_registry_digest)"
    digests_match=yes
    for d in "$hoist_digest" "$hoist_registry_digest" "$skopeo_digest" "$skopeo_registry_digest"; do
        [ "$d" = "$layout_digest" ] || digests_match=no
    done
    [ "$digests_match" = yes ] ||
        die "the pushes differ: the layout's index is $layout_digest, but hoist pushed $hoist_digest (registry: $hoist_registry_digest) and skopeo $skopeo_digest (registry: $skopeo_registry_digest); the timings would not compare the same work"

    # Timings. First pushes: every run starts from an empty registry.
    json_push=$RESULTS_DIR/hyperfine-push-${SIZE_MB}MiB.json
    json_repush=$RESULTS_DIR/hyperfine-repush-${SIZE_MB}MiB.json
    before_hoist=$(uploads hoist "$layer_digest")
    before_skopeo=$(uploads skopeo "$layer_digest")
    note "hyperfine: first pushes (${RUNS} runs, ${WARMUP} warmup, empty registry before each)"
    hyperfine --warmup "$WARMUP" --runs "$RUNS" --export-json "$json_push" --style basic \
        --prepare "$clean_cmd" \
        -n "hoist push" "$hoist_push_cmd" \
        -n "skopeo copy" "$skopeo_cmd" >&2
    full_hoist=$(($(uploads hoist "$layer_digest") - before_hoist))
    full_skopeo=$(($(uploads skopeo "$layer_digest") - before_skopeo))
    expected=$((RUNS + WARMUP))
    [ "$full_hoist" = "$expected" ] && [ "$full_skopeo" = "$expected" ] ||
        die "expected $expected full layer uploads from each tool, the registry logged $full_hoist from hoist and $full_skopeo from skopeo"

    # Re-pushes: both repositories hold everything (set up untimed).
    note "hyperfine: unchanged re-pushes (${RUNS} runs, ${WARMUP} warmup)"
    clean_registry
    eval "$hoist_push_cmd" >/dev/null 2>"$tmp/setup.log" || { cat "$tmp/setup.log" >&2; die "hoist push (re-push setup) failed"; }
    eval "$skopeo_cmd" >/dev/null 2>"$tmp/setup.log" || { cat "$tmp/setup.log" >&2; die "skopeo copy (re-push setup) failed"; }
    before_hoist=$(uploads hoist "$layer_digest")
    before_skopeo=$(uploads skopeo "$layer_digest")
    hyperfine --warmup "$WARMUP" --runs "$RUNS" --export-json "$json_repush" --style basic \
        -n "hoist re-push" "$hoist_push_cmd" \
        -n "skopeo re-push" "$skopeo_cmd" >&2
    re_hoist=$(($(uploads hoist "$layer_digest") - before_hoist))
    re_skopeo=$(($(uploads skopeo "$layer_digest") - before_skopeo))
    [ "$re_hoist" = 0 ] && [ "$re_skopeo" = 0 ] ||
        die "the re-pushes uploaded the layer again ($re_hoist times from hoist, $re_skopeo from skopeo)"

    table=$RESULTS_DIR/push-${SIZE_MB}MiB.txt
    python3 - "$json_push" "$json_repush" "$tree_bytes" "$image_bytes" "$layer_bytes" "$hoist_bytes" \
        "$layout_digest" "$RUNS" "$WARMUP" "$full_hoist" "$full_skopeo" \
        "${rss[hoist]}" "${rss[skopeo]}" "${rss[hoist-re]}" "${rss[skopeo-re]}" <<'PY' | tee "$table"
import json, sys
(j_push, j_repush, tree_bytes, image_bytes, layer_bytes, uploaded, digest, runs, warmup,
 full_hoist, full_skopeo, r_hoist, r_skopeo, r_hoist_re, r_skopeo_re) = sys.argv[1:]
tree_bytes, image_bytes, uploaded = int(tree_bytes), int(image_bytes), int(uploaded)
res = {r["command"]: r for f in (j_push, j_repush) for r in json.load(open(f))["results"]}
print(f"input: {tree_bytes} bytes ({tree_bytes / 2**20:.1f} MiB) tree -> image {digest}")
print(f"       {image_bytes} bytes of blobs, layer {int(layer_bytes)}; "
      f"a first push uploads {uploaded} bytes (layer + config) plus the manifests")
print(f"manifest digests: layout, hoist push, skopeo copy and the registry's for both tags all match")
print(f"{'command':<15} {'mean s':>8} {'± s':>6} {'median s':>8} {'MB/s':>7} {'skopeo/hoist':>13} "
      f"{'(medians)':>9} {'peak RSS MiB':>12}")
rows = [("hoist push", r_hoist, "hoist push", True), ("skopeo copy", r_skopeo, "hoist push", True),
        ("hoist re-push", r_hoist_re, "hoist re-push", False),
        ("skopeo re-push", r_skopeo_re, "hoist re-push", False)]
for name, rss, base, full in rows:
    r = res[name]
    mean, sd = r["mean"], r["stddev"] or 0.0
    rate = f"{uploaded / mean / 1e6:7.1f}" if full else f"{'-':>7}"
    median = r["median"]
    vs, vs_med = ("-", "-") if name.startswith("hoist") else (
        f"{mean / res[base]['mean']:.2f}x", f"{median / res[base]['median']:.2f}x")
    print(f"{name:<15} {mean:>8.3f} {sd:>6.3f} {median:>8.3f} {rate} {vs:>13} {vs_med:>9} "
          f"{int(rss) / 1024:>12.1f}")
ratio = res["hoist re-push"]["mean"] / res["hoist push"]["mean"]
ratio_med = res["hoist re-push"]["median"] / res["hoist push"]["median"]
print(f"hoist re-push / hoist push = {ratio:.3f} (medians: {ratio_med:.3f}; target < 0.10)")
print("skopeo/hoist = skopeo_time / hoist_time (>1: hoist is faster), of the means, then of the medians")
print("(medians resist a stray slow run on a shared machine). MB/s = uploaded bytes / mean.")
print(f"registry access log: {full_hoist} full layer uploads from hoist, {full_skopeo} from skopeo "
      f"({runs} runs + {warmup} warm-up each); none during the re-pushes.")
PY
    note "results: $json_push, $json_repush, $table"
    exit 0
fi

# ---------------------------------------------------------------------------
# One checked run of each first: fail early with the real error message (which
# hyperfine would hide), and collect output sizes and peak RSS.
# ---------------------------------------------------------------------------
# rss_kib CMD: peak RSS in KiB. GNU time reports the largest ru_maxrss among the
# processes it waited for, not the sum, so a pipeline is measured stage by
# stage and the stages are added (they run concurrently, at steady state).
# (rss_of and T are defined above, before the push mode.)

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
    # The layer blob: follow index.json to the (only) image manifest (artifacts such
    # as the SBOM skipped), take its last layer. Handles both a bare manifest and an index in index.json.
    size[hoist]=$(python3 - "$tmp/out" <<'PY'
import json, os, sys
root = sys.argv[1]
def blob(d):
    algo, hexd = d["digest"].split(":", 1)
    return os.path.join(root, "blobs", algo, hexd)
node = json.load(open(os.path.join(root, "index.json")))
while "manifests" in node:
    # An SBOM (the default) sits beside the image as an artifact: skip artifacts.
    node["manifests"] = [m for m in node["manifests"] if "artifactType" not in m]
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
