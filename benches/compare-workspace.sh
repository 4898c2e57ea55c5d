#!/usr/bin/env bash
# A three-image project released two ways, in one run:
#
#   workspace: one hoist.toml at the root ([workspace] members = ["services/*"]),
#       three members (frontend, backend, worker: the dashboard example's two parts,
#       the backend twice under another name), one `hoist release 1.0.0 --no-git`
#   separate:  the same three images as three lone projects, each with its own
#       [version], released by three `hoist release 1.0.0 --no-git` one after another
#
# Both push two platforms of each image to a local docker-registry, from an empty
# layer cache and an empty registry before every run (a fresh CI runner), with the
# default tag rules. Reports mean and median times and separate/workspace (>1: the
# workspace release is faster).
#
#   benches/compare-workspace.sh            # cargo build --release first
#   NO_BUILD=1 RUNS=5 benches/compare-workspace.sh
set -euo pipefail

bench=compare-workspace.sh
results=bench-compare
# shellcheck source=benches/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

note "starting docker-registry on 127.0.0.1"
start_registry

example=$repo/examples/dashboard
base="oci:$repo/testdata/base:1.0"
# member NAME SOURCE-DIR DEST: one image's [image] and [[layer]] (no [version]).
member() {
    printf '[image]\nname = "%s/bench/%s"\n' "$reg_host" "$1"
    printf '\n[[layer]]\nfrom = "%s"\nto = "%s"\n' "$2" "$3"
}

ws=$tmp/workspace
for m in frontend backend worker; do mkdir -p "$ws/services/$m"; done
cp -r "$example/frontend/dist" "$ws/services/frontend/dist"
cp -r "$example/backend" "$ws/services/backend/app"
cp -r "$example/backend" "$ws/services/worker/app"
printf '1.0.0\n' >"$ws/VERSION"
workspace_toml "$base" >"$ws/hoist.toml"
member frontend dist /usr/share/nginx/html >"$ws/services/frontend/hoist.toml"
member backend app /app >"$ws/services/backend/hoist.toml"
member worker app /app >"$ws/services/worker/hoist.toml"

sep=$tmp/separate
for m in frontend backend worker; do
    mkdir -p "$sep/$m"
    cp -r "$ws/services/$m/." "$sep/$m/"
    printf '1.0.0\n' >"$sep/$m/VERSION"
    {
        member "$m" "$(ls "$sep/$m" | grep -v -e hoist.toml -e VERSION)" "$([ "$m" = frontend ] && echo /usr/share/nginx/html || echo /app)" |
            sed "s|^\[image\]|[image]\nbase = \"$base\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]|"
        printf '\n[version]\nsource = "VERSION"\n'
    } >"$sep/$m/hoist.toml"
done

cache=$tmp/cache
ws_cmd="'$HOIST' release 1.0.0 --no-git --branch main --config '$ws/hoist.toml' --cache-dir '$cache'"
cat >"$tmp/separate.sh" <<SH
set -e
for m in frontend backend worker; do
    '$HOIST' release 1.0.0 --no-git --branch main --config '$sep/'\$m/hoist.toml --cache-dir '$cache'
done
SH
sep_cmd="bash '$tmp/separate.sh'"

note "checking each once"
clean_registry
rm -rf "$cache"
bash -c "$ws_cmd --json" >"$tmp/ws.json" 2>"$tmp/ws.log" || { cat "$tmp/ws.log" >&2; die "workspace release failed"; }
ws_digests=$(python3 -c 'import json,sys; print(" ".join(i["digest"] for i in json.load(open(sys.argv[1]))["images"]))' "$tmp/ws.json")
clean_registry
rm -rf "$cache"
eval "$sep_cmd" >"$tmp/sep.out" 2>"$tmp/sep.log" || { cat "$tmp/sep.log" >&2; die "separate releases failed"; }

json=$RESULTS_DIR/hyperfine-workspace.json
note "hyperfine (${RUNS} runs, ${WARMUP} warmup; empty cache and registry before each)"
hyperfine --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" --style basic \
    --prepare "$clean_cmd; rm -rf '$cache'" \
    -n "workspace: one hoist release, 3 members" "$ws_cmd" \
    -n "separate: 3 hoist release, one per image" "$sep_cmd" >&2

table=$RESULTS_DIR/workspace.txt
python3 - "$json" "$ws_digests" <<'PY' | tee "$table"
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
ws = results["workspace: one hoist release, 3 members"]
sep = results["separate: 3 hoist release, one per image"]
print(f"three images, two platforms each; workspace digests: {sys.argv[2]}")
print(f"{'command':<44} {'mean s':>8} {'± s':>6} {'median s':>8}")
for r in (ws, sep):
    print(f"{r['command']:<44} {r['mean']:>8.3f} {r['stddev'] or 0:>6.3f} {r['median']:>8.3f}")
print(f"separate / workspace = {sep['mean'] / ws['mean']:.2f}x (medians {sep['median'] / ws['median']:.2f}x)")
PY
note "results: $json, $table"
