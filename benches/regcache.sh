#!/usr/bin/env bash
# Fresh runners and warm runners (issue 12): the dashboard example plus an
# EXTRA_MB MiB generated tree (default 100, the size of the monaco package) as a
# third layer, two platforms (linux/amd64 + linux/arm64), base from the
# committed OCI layout, pushed to a local docker-registry. Three cases, side by
# side in one run with hyperfine:
#
#   cold   empty cache, empty registry: every layer archived, compressed and
#          uploaded
#   fresh  empty cache (a new CI runner), the registry holding the image under
#          the tag being pushed: layers whose recorded key (io.hoist.layer.key)
#          matches are reused from the registry; only the sources are hashed
#   warm   the layer cache of a cold build, the registry holding everything
#
# Prints mean/median times and the ratios fresh/cold (target <= 0.15) and
# warm/cold (target <= 0.10), checks that fresh and warm push the cold digest
# and upload no blob.
#
#   benches/regcache.sh                    # cargo build --release first
#   NO_BUILD=1 RUNS=5 EXTRA_MB=100 benches/regcache.sh
#
# Results go to RESULTS_DIR (default target/bench-regcache/).
set -euo pipefail

bench=regcache.sh
results=bench-regcache
# shellcheck source=benches/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
EXTRA_MB=${EXTRA_MB:-100}
case $EXTRA_MB in '' | *[!0-9]*) die "EXTRA_MB must be a non-negative integer, got '$EXTRA_MB'" ;; esac

app=$tmp/app
cp -r "$repo/examples/dashboard" "$app"
sed -i "s|^base = \"oci:../../testdata/base:1.0\".*|base = \"oci:$repo/testdata/base:1.0\"|" "$app/hoist.toml"
grep -q "^base = \"oci:$repo/testdata/base:1.0\"" "$app/hoist.toml" ||
    die "could not point $app/hoist.toml at testdata/base (did the example's base line change?)"
if [ "$EXTRA_MB" -gt 0 ]; then
    note "generating a ${EXTRA_MB} MiB tree as a third layer"
    python3 "$repo/benches/gen_tree.py" "$app/data" "$EXTRA_MB"
    printf '\n[[layer]]\nfrom = "data"\nto = "/data"\n' >>"$app/hoist.toml"
fi

note "starting docker-registry on 127.0.0.1"
start_registry

cache=$tmp/cache
# HOIST_FLAGS: more build flags (HOIST_FLAGS=--no-sbom: without the SBOM, which reads
# every layer it lists, so a fresh runner downloads the reused ones).
hoist_cmd="'$HOIST' build --config '$app/hoist.toml' --cache-dir '$cache' --push-to '$reg_host/bench/app:1' ${HOIST_FLAGS:-}"

note "checking each case once"
clean_registry
rm -rf "$cache"
eval "$hoist_cmd --json" >"$tmp/cold.json" 2>"$tmp/cold.log" || { cat "$tmp/cold.log" >&2; die "cold build failed"; }
eval "$hoist_cmd --json" >"$tmp/warm.json" 2>"$tmp/warm.log" || { cat "$tmp/warm.log" >&2; die "warm build failed"; }
rm -rf "$cache"
eval "$hoist_cmd --json" >"$tmp/fresh.json" 2>"$tmp/fresh.log" || { cat "$tmp/fresh.log" >&2; die "fresh build failed"; }
digest=$(python3 -c '
import json, sys
cold, fresh, warm = (json.load(open(p)) for p in sys.argv[1:])
assert cold["digest"] == fresh["digest"] == warm["digest"], "the digests differ"
for name, r in (("fresh", fresh), ("warm", warm)):
    assert r["blobs_uploaded"] == 0, f"{name} uploaded {r['"'"'blobs_uploaded'"'"']} blobs"
new = [l for l in fresh["platforms"][0]["layers"] if l["origin"] != "base"]
assert all(l["reused"] for l in new), "fresh: a layer was not reused from the registry"
print(cold["digest"])' "$tmp/cold.json" "$tmp/fresh.json" "$tmp/warm.json") || die "unexpected --json output"

json=$RESULTS_DIR/hyperfine-regcache-${EXTRA_MB}MiB.json
note "hyperfine: cold, fresh, warm (${RUNS} runs each, ${WARMUP} warmup)"
# hyperfine runs the commands in this order, so each case starts from what the
# one before left: cold (empty registry and cache before each run) leaves the
# cache of a real build, which the warm runs keep; the fresh runs empty the cache
# before each run, with the registry holding everything.
hyperfine --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" --style basic \
    --prepare "$clean_cmd; rm -rf '$cache'" -n "cold" "$hoist_cmd" \
    --prepare ":" -n "warm" "$hoist_cmd" \
    --prepare "rm -rf '$cache'" -n "fresh" "$hoist_cmd" >&2

table=$RESULTS_DIR/regcache-${EXTRA_MB}MiB.txt
python3 - "$json" "$EXTRA_MB" "$digest" <<'PY' | tee "$table"
import json, sys
path, extra, digest = sys.argv[1:]
res = {r["command"]: r for r in json.load(open(path))["results"]}
cold, fresh, warm = res["cold"], res["fresh"], res["warm"]
print(f"dashboard example + {extra} MiB tree, 2 platforms, local registry: {digest}")
print(f"{'case':<8} {'mean s':>8} {'± s':>6} {'median s':>8}")
for name, r in (("cold", cold), ("fresh", fresh), ("warm", warm)):
    print(f"{name:<8} {r['mean']:>8.3f} {r['stddev'] or 0:>6.3f} {r['median']:>8.3f}")
print(f"fresh / cold = {fresh['mean'] / cold['mean']:.3f} (medians {fresh['median'] / cold['median']:.3f}; target <= 0.15)")
print(f"warm / cold  = {warm['mean'] / cold['mean']:.3f} (medians {warm['median'] / cold['median']:.3f}; target <= 0.10)")
PY
note "results: $json, $table"
