#!/usr/bin/env bash
# Our largest users' shape, scaled down: a 30-service workspace released to a local
# docker-registry, directly (+0 ms) and through a proxy that adds 20 ms to every
# request (a registry one round trip away, as GHCR is from a CI runner).
#
#   20 Python services on 4 shared dependency stacks (each service a copy of its
#      stack's files, 5 MB, under /opt/venv, and its own 0.5 MB app under /app),
#    7 frontends (2 MB of static files each), 3 config-only services (no layer);
#   2 platforms (testdata/base), SBOMs on (the default), no signing.
#
# The issue's shape had 455 MB of sources (44.2 MB distinct compressed blobs); this one
# has ~124 MB of sources on disk (~44 MB distinct before compression) so that both
# rounds run in a few minutes on 2 cores. Generated deterministically (seeded).
#
# For each delay: a cold release (empty cache, empty registry), then the same release
# again (a no-op: every image and tag is there). Reported per run: wall time, requests
# by method, the most connections open at once and requests in flight at once (counted
# at the proxy: benches/delay_proxy.py), bytes uploaded and the distinct bytes the
# registry stores, and connections opened in all (a connection dropped after an
# answer is a new TLS handshake on a real network).
#
#   NO_BUILD=1 HOIST=target/debug/hoist benches/workspace-scale.sh
#   EXTRA="--registry-jobs 8" …   (flags added to every release)
set -euo pipefail

bench=workspace-scale.sh
results=bench-scale
RUNS=1
# shellcheck source=benches/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
EXTRA=${EXTRA:-}

note "starting docker-registry on 127.0.0.1"
start_registry
upstream_port=${reg_host##*:}

ws=$tmp/workspace
note "generating the workspace in $ws"
python3 - "$ws" <<'PY'
import os, random, sys
root = sys.argv[1]

def files(dest, seed, total, count):
    """`count` files of `total` bytes together, half text (compresses), half noise."""
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnop") for _ in range(rng.randint(2, 9))) for _ in range(500)]
    os.makedirs(dest, exist_ok=True)
    for i in range(count):
        size = total // count
        if i % 2:
            data = rng.randbytes(size)
        else:
            out = bytearray()
            while len(out) < size:
                out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
            data = bytes(out[:size])
        sub = os.path.join(dest, f"d{i % 4}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{i:03}.dat"), "wb") as f:
            f.write(data)

MB = 1024 * 1024
for s in range(4):
    files(f"{root}/stacks/s{s}", 1000 + s, 5 * MB, 40)
for n in range(20):
    d = f"{root}/services/py{n:02}"
    os.makedirs(d)
    os.system(f"cp -r '{root}/stacks/s{n % 4}' '{d}/deps'")
    files(f"{d}/app", 2000 + n, MB // 2, 10)
    open(f"{d}/hoist.toml", "w").write(
        '[image]\nname = "@REG@/bench/py%02d"\n\n[[layer]]\nfrom = "deps"\nto = "/opt/venv"\n\n'
        '[[layer]]\nfrom = "app"\nto = "/app"\n\n[config]\ncmd = ["python", "-m", "svc%02d"]\n' % (n, n))
for n in range(7):
    d = f"{root}/services/web{n}"
    files(f"{d}/dist", 3000 + n, 2 * MB, 20)
    open(f"{d}/hoist.toml", "w").write(
        '[image]\nname = "@REG@/bench/web%d"\n\n[[layer]]\nfrom = "dist"\nto = "/usr/share/nginx/html"\n' % n)
for n in range(3):
    d = f"{root}/services/cfg{n}"
    os.makedirs(d)
    open(f"{d}/hoist.toml", "w").write(
        '[image]\nname = "@REG@/bench/cfg%d"\n\n[config]\nenv = { ROLE = "cfg%d" }\n' % (n, n))
open(f"{root}/VERSION", "w").write("1.0.0\n")
PY
base="oci:$repo/testdata/base:1.0"
workspace_toml "$base" >"$ws/hoist.toml.in"
cp "$ws/hoist.toml.in" "$ws/hoist.toml"
for f in "$ws"/services/*/hoist.toml; do cp "$f" "$f.in"; done

proxy_pid=
stop_proxy() {
    if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; wait "$proxy_pid" 2>/dev/null || true; fi
    proxy_pid=
}
# KEEP=1 keeps the temp dir (workspace, logs, --json outputs) for a look afterwards.
trap 'stop_proxy; if [ "${KEEP:-0}" = 1 ]; then note "kept $tmp"; reg_cleanup; else cleanup; fi' EXIT
reg_cleanup() { if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi; }

# start_proxy DELAY_MS: a delaying proxy in front of the registry; sets proxy_host.
start_proxy() {
    rm -f "$tmp/proxy.port"
    python3 "$repo/benches/delay_proxy.py" "$upstream_port" "$1" "$tmp/proxy.port" &
    proxy_pid=$!
    for _ in $(seq 100); do [ -s "$tmp/proxy.port" ] && break; sleep 0.1; done
    [ -s "$tmp/proxy.port" ] || die "the delaying proxy did not start"
    proxy_host=127.0.0.1:$(cat "$tmp/proxy.port")
    for f in "$ws"/services/*/hoist.toml.in; do sed "s|@REG@|$proxy_host|" "$f" >"${f%.in}"; done
}
stats() { curl -fsS --max-time 10 "http://$proxy_host/__stats"; }

# release NAME: one release through the proxy, timed; appends a JSON line to rows.
release() {
    stats >/dev/null
    local start end
    start=$(now_ms)
    # shellcheck disable=SC2086
    "$HOIST" release 1.0.0 --no-git --branch main --config "$ws/hoist.toml" --cache-dir "$tmp/cache" \
        --json $EXTRA >"$tmp/$1.json" 2>"$tmp/$1.log" || { tail -n 30 "$tmp/$1.log" >&2; die "$1 failed"; }
    end=$(now_ms)
    local distinct
    distinct=$(find "$reg_store/docker/registry/v2/blobs" -name data -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    printf '{"run":"%s","seconds":%s,"distinct":%s,"proxy":%s}\n' "$1" \
        "$(awk "BEGIN {print ($end - $start) / 1000}")" "$distinct" "$(stats)" >>"$tmp/rows.jsonl"
}

: >"$tmp/rows.jsonl"
for delay in 0 20; do
    note "+$delay ms: cold release, then a no-op re-release"
    clean_registry
    rm -rf "$tmp/cache"
    start_proxy "$delay"
    release "cold+${delay}ms"
    release "noop+${delay}ms"
    stop_proxy
done

table=$RESULTS_DIR/workspace-scale.txt
python3 - "$tmp/rows.jsonl" <<'PY' | tee "$table"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| run | wall s | requests (by method) | max conns | conns opened | max in flight | MB uploaded | MB distinct | uploaded/distinct |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    p = r["proxy"]
    by = " ".join(f"{m} {n}" for m, n in sorted(p["requests"].items()))
    total = sum(p["requests"].values())
    up, distinct = p["upload_bytes"] / 1e6, r["distinct"] / 1e6
    ratio = f"{up / distinct:.2f}x" if up else "-"
    print(f"| {r['run']} | {r['seconds']:.1f} | {total} ({by}) | {p['connections_max']} | {p['connections_total']} | {p['in_flight_max']} | {up:.1f} | {distinct:.1f} | {ratio} |")
PY
note "results: $table"
