#!/usr/bin/env bash
# The whole job for the dashboard example (examples/dashboard): build the image
# and push it to a registry, hoist against buildah, the daemonless peer.
#
#   hoist build --config hoist.toml --push-to REG/bench/hoist:1
#       both platforms (linux/amd64 + linux/arm64) of the example, base from the
#       committed OCI layout (testdata/base), empty cache and empty registry
#   buildah from oci:testdata/base:1.0 (linux/amd64 only) ; buildah copy (the
#       front end) ; the back end's lock installed as hoist installs it:
#       `uv pip install --target` (uv from target/venv, as benches/python.sh) offline
#       from the committed wheelhouse (backend/wheels, --no-index --require-hashes,
#       for x86_64 manylinux and Python 3.11), then buildah copy of that
#       site-packages to /usr/local/lib/python3.11/site-packages ; buildah copy
#       --chown 1000:1000 of the back end without its wheels/ (as hoist's exclude) ;
#       buildah commit ; buildah push REG/bench/buildah:1
#       vfs storage and uv's cache in the temp dir, emptied before every run
#       (buildah 1.28 has no `copy --exclude`, so it copies the few *.map files
#       hoist leaves out)
#   hoist, unchanged rebuild + push: the same command again, with the layer
#       cache warm and the registry holding every blob
#
# EXTRA_MB=N adds an N MiB generated tree (the same generator as compare.sh)
# as a third layer for both tools, to measure the rebuild on a big layer
# (EXTRA_MB=1024: the 1 GiB case). Reports mean and median times,
# buildah/hoist (>1: hoist is faster; target >= 2 although hoist builds twice
# the platforms), hoist rebuild/first (target < 0.10) and peak RSS.
#
#   benches/compare-app.sh                  # cargo build --release first
#   NO_BUILD=1 RUNS=5 benches/compare-app.sh
#   EXTRA_MB=1024 RUNS=3 benches/compare-app.sh
#
# Results go to RESULTS_DIR (default target/bench-compare/).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
EXTRA_MB=${EXTRA_MB:-0}
NO_BUILD=${NO_BUILD:-0}
RESULTS_DIR=${RESULTS_DIR:-$repo/target/bench-compare}
HOIST=${HOIST:-$repo/target/release/hoist}
UV=${UV:-$repo/target/venv/bin/uv}
export LC_ALL=C

die() { printf 'compare-app.sh: error: %s\n' "$*" >&2; exit 1; }
note() { printf '==> %s\n' "$*" >&2; }

case $RUNS in '' | *[!0-9]* | 0) die "RUNS must be a positive integer, got '$RUNS'" ;; esac
case $WARMUP in '' | *[!0-9]*) die "WARMUP must be a non-negative integer, got '$WARMUP'" ;; esac
case $EXTRA_MB in '' | *[!0-9]*) die "EXTRA_MB must be a non-negative integer, got '$EXTRA_MB'" ;; esac
for t in hyperfine python3 curl docker-registry buildah; do
    command -v "$t" >/dev/null 2>&1 ||
        die "'$t' not found (Debian: apt-get install hyperfine python3 curl docker-registry buildah)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time missing (Debian: apt-get install time)"
[ -x "$UV" ] || die "$UV not found (python3 -m venv target/venv && target/venv/bin/pip install uv, or set UV)"
if [ "$NO_BUILD" != 1 ]; then
    note "cargo build --release"
    (cd "$repo" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[ -x "$HOIST" ] || die "$HOIST not found or not executable (cargo build --release)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hoist-compare-app.XXXXXX")
reg_pid=
cleanup() {
    if [ -n "$reg_pid" ]; then
        kill "$reg_pid" 2>/dev/null || true
        wait "$reg_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RESULTS_DIR"
rss_of() { sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1"; }

# The project: a copy of the example (so EXTRA_MB can add to it), its config's
# base path made absolute.
app=$tmp/app
cp -r "$repo/examples/dashboard" "$app"
sed -i "s|^base = \"oci:../../testdata/base:1.0\".*|base = \"oci:$repo/testdata/base:1.0\"|" "$app/hoist.toml"
grep -q "^base = \"oci:$repo/testdata/base:1.0\"" "$app/hoist.toml" ||
    die "could not point $app/hoist.toml at testdata/base (did the example's base line change?)"
extra_copy=
if [ "$EXTRA_MB" -gt 0 ]; then
    note "generating a ${EXTRA_MB} MiB tree as a third layer"
    python3 "$repo/benches/gen_tree.py" "$app/data" "$EXTRA_MB"
    printf '\n[[layer]]\nfrom = "data"\nto = "/data"\n' >>"$app/hoist.toml"
    extra_copy="&& \\\$B copy \\\$c '$app/data' /data >/dev/null"
fi

reg_dir=$tmp/registry
reg_store=$reg_dir/storage
reg_log=$reg_dir/registry.log
mkdir -p "$reg_dir"
# shellcheck source=benches/registry.sh
. "$repo/benches/registry.sh"
note "starting docker-registry on 127.0.0.1"
start_registry
note "registry at http://$reg_host/"

# The back end as hoist's layer takes it: without wheels/ (installed by the python
# layer) and bytecode caches.
backend_files=
for f in "$app/backend"/*; do
    case ${f##*/} in wheels | __pycache__ | *.pyc) ;; *) backend_files="$backend_files '$f'" ;; esac
done
peer=$tmp/peer
peer_install="UV_CACHE_DIR='$peer/uv-cache' '$UV' pip install -q --no-deps --no-index \
--find-links '$app/backend/wheels' --require-hashes --target '$peer/site' \
--python-platform x86_64-manylinux_2_28 --python-version 3.11 -r '$app/backend/requirements.lock'"

cache=$tmp/cache
hoist_cmd="'$HOIST' build --config '$app/hoist.toml' --cache-dir '$cache' --push-to '$reg_host/bench/hoist:1'"
B="buildah --root $tmp/buildah/root --runroot $tmp/buildah/run --storage-driver vfs"  # no quotes: expanded unquoted inside bash -c (mktemp paths have no spaces)
buildah_clean="rm -rf '$tmp/buildah' '$peer'"
buildah_cmd="bash -c \"set -e; B=\\\"$B\\\"; c=\\\$(\\\$B from --quiet --pull-never --platform linux/amd64 oci:$repo/testdata/base:1.0) \
&& \\\$B copy \\\$c '$app/frontend/dist' /usr/share/nginx/html >/dev/null \
&& $peer_install \
&& \\\$B copy \\\$c '$peer/site' /usr/local/lib/python3.11/site-packages >/dev/null \
&& \\\$B copy --chown 1000:1000 \\\$c $backend_files /app >/dev/null $extra_copy \
&& \\\$B commit --quiet \\\$c bench-app >/dev/null \
&& \\\$B push --quiet --tls-verify=false bench-app docker://$reg_host/bench/buildah:1\""

# One checked run of each: real errors, digests, peak RSS.
note "checking each command once"
clean_registry
rm -rf "$cache"
/usr/bin/time -v -o "$tmp/rss.hoist" bash -c "$hoist_cmd --json" >"$tmp/hoist.json" 2>"$tmp/hoist.log" ||
    { cat "$tmp/hoist.log" >&2; die "hoist build --push failed (output above)"; }
/usr/bin/time -v -o "$tmp/rss.hoist-re" bash -c "$hoist_cmd --json" >"$tmp/hoist-re.json" 2>"$tmp/hoist-re.log" ||
    { cat "$tmp/hoist-re.log" >&2; die "hoist rebuild + push failed (output above)"; }
read -r hoist_digest first_uploaded re_uploaded < <(python3 -c '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["digest"] == b["digest"], "the unchanged rebuild changed the digest"
print(a["digest"], a["blobs_uploaded"], b["blobs_uploaded"])' "$tmp/hoist.json" "$tmp/hoist-re.json") ||
    die "unexpected hoist --json output"
[ "$re_uploaded" = 0 ] || die "the unchanged rebuild uploaded $re_uploaded blobs (expected 0)"
[ "$(registry_digest hoist)" = "$hoist_digest" ] || die "the registry does not serve $hoist_digest at bench/hoist:1"
eval "$buildah_clean"
/usr/bin/time -v -o "$tmp/rss.buildah" bash -c "$buildah_cmd" >"$tmp/buildah.log" 2>&1 ||
    { cat "$tmp/buildah.log" >&2; die "buildah failed (output above)"; }
[ -d "$tmp/buildah/root" ] || die "buildah did not keep its storage in $tmp/buildah/root (quoting?)"
[ -f "$peer/site/six.py" ] || die "uv installed nothing into $peer/site (quoting?)"
buildah_digest=$(registry_digest buildah) || die "buildah pushed nothing to bench/buildah:1"
[ -n "$buildah_digest" ] || die "buildah pushed nothing to bench/buildah:1"

json_first=$RESULTS_DIR/hyperfine-app-${EXTRA_MB}MiB.json
json_re=$RESULTS_DIR/hyperfine-app-rebuild-${EXTRA_MB}MiB.json
note "hyperfine: first build + push (${RUNS} runs, ${WARMUP} warmup; empty cache, storage and registry before each)"
hyperfine --warmup "$WARMUP" --runs "$RUNS" --export-json "$json_first" --style basic \
    --prepare "$clean_cmd; rm -rf '$cache'; $buildah_clean" \
    -n "hoist build --push (2 platforms)" "$hoist_cmd" \
    -n "buildah from/copy/commit/push + uv install (1 platform)" "$buildah_cmd" >&2
note "hyperfine: unchanged rebuild + push"
eval "$hoist_cmd" >/dev/null 2>&1 || die "hoist build --push (rebuild setup) failed"
hyperfine --warmup "$WARMUP" --runs "$RUNS" --export-json "$json_re" --style basic \
    -n "hoist rebuild + push, unchanged" "$hoist_cmd" >&2

table=$RESULTS_DIR/app-${EXTRA_MB}MiB.txt
python3 - "$json_first" "$json_re" "$EXTRA_MB" "$hoist_digest" "$first_uploaded" \
    "$(rss_of "$tmp/rss.hoist")" "$(rss_of "$tmp/rss.hoist-re")" "$(rss_of "$tmp/rss.buildah")" <<'PY' | tee "$table"
import json, sys
j_first, j_re, extra, digest, uploaded, r_hoist, r_re, r_buildah = sys.argv[1:]
res = {r["command"]: r for f in (j_first, j_re) for r in json.load(open(f))["results"]}
hoist = res["hoist build --push (2 platforms)"]
buildah = res["buildah from/copy/commit/push + uv install (1 platform)"]
rebuild = res["hoist rebuild + push, unchanged"]
print(f"dashboard example{f' + {extra} MiB tree' if extra != '0' else ''}: hoist pushed {digest} "
      f"({uploaded} blobs on a first push)")
print(f"{'command':<44} {'mean s':>8} {'± s':>6} {'median s':>8} {'peak RSS MiB':>12}")
for name, r, rss in ((hoist["command"], hoist, r_hoist), (buildah["command"], buildah, r_buildah),
                     (rebuild["command"], rebuild, r_re)):
    print(f"{name:<44} {r['mean']:>8.3f} {r['stddev'] or 0:>6.3f} {r['median']:>8.3f} "
          f"{int(rss) / 1024:>12.1f}")
print(f"buildah / hoist = {buildah['mean'] / hoist['mean']:.2f}x "
      f"(medians {buildah['median'] / hoist['median']:.2f}x; target >= 2, hoist doing 2 platforms to buildah's 1)")
print(f"hoist rebuild / first = {rebuild['mean'] / hoist['mean']:.3f} "
      f"(medians {rebuild['median'] / hoist['median']:.3f}; target < 0.10)")
PY
note "results: $json_first, $json_re, $table"
