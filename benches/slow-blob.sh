#!/usr/bin/env bash
# A slow but moving registry (issue 16): one image whose only layer is SIZE_MB MiB
# (default 1024) of random bytes, in a local docker-registry, pulled by `hoist pull`
# through a throttling proxy on loopback that sends every answer at RATE bytes/s
# (default 10000000, 10 MB/s). hoist's bounds (src/registry/pace.rs: a minimum of
# 32 KiB/s over every 30 s window, a 60 s deadline for documents) must let it finish;
# the script fails unless the pull succeeds and the layer arrives whole. Prints the
# pull's wall time and the rate it achieved. Not a test-suite test: it takes
# SIZE_MB / RATE (107 s for the defaults) plus the set-up.
#
#   benches/slow-blob.sh                               # cargo build --release first
#   HOIST=target/debug/hoist SIZE_MB=64 benches/slow-blob.sh
set -euo pipefail

bench=slow-blob.sh
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZE_MB=${SIZE_MB:-1024}
RATE=${RATE:-10000000}
HOIST=${HOIST:-$repo/target/release/hoist}
NO_BUILD=${NO_BUILD:-0}
export LC_ALL=C

die() { printf '%s: error: %s\n' "$bench" "$*" >&2; exit 1; }
note() { printf '==> %s\n' "$*" >&2; }

case $SIZE_MB in '' | *[!0-9]* | 0) die "SIZE_MB must be a positive integer, got '$SIZE_MB'" ;; esac
case $RATE in '' | *[!0-9]* | 0) die "RATE must be a positive integer, got '$RATE'" ;; esac
for t in python3 curl docker-registry; do
    command -v "$t" >/dev/null 2>&1 ||
        die "'$t' not found (Debian: apt-get install python3 curl docker-registry)"
done
if [ "$NO_BUILD" != 1 ] && [ "$HOIST" = "$repo/target/release/hoist" ]; then
    note "cargo build --release"
    (cd "$repo" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[ -x "$HOIST" ] || die "$HOIST not found or not executable"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hoist-slow-blob.XXXXXX")
reg_pid=
proxy_pid=
cleanup() {
    for pid in $proxy_pid $reg_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

reg_dir=$tmp/registry
reg_store=$reg_dir/storage
reg_log=$reg_dir/registry.log
mkdir -p "$reg_dir"
# shellcheck source=benches/registry.sh
. "$repo/benches/registry.sh"
start_registry

note "an OCI layout with one $SIZE_MB MiB layer (random bytes in a tar)"
python3 - "$tmp/layout" "$SIZE_MB" <<'EOF'
import hashlib, json, os, sys, tarfile
root, size_mb = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs)
data = os.path.join(root, "data")
with open(data, "wb") as out:
    for _ in range(size_mb):
        out.write(os.urandom(1 << 20))
layer = os.path.join(root, "layer.tar")
with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
    info = tar.gettarinfo(data, arcname="data")
    info.mtime = 0
    with open(data, "rb") as f:
        tar.addfile(info, f)
os.remove(data)
def store_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    size = os.path.getsize(path)
    os.rename(path, os.path.join(blobs, h.hexdigest()))
    return "sha256:" + h.hexdigest(), size
def store_json(document):
    raw = json.dumps(document, separators=(",", ":")).encode()
    digest = hashlib.sha256(raw).hexdigest()
    open(os.path.join(blobs, digest), "wb").write(raw)
    return "sha256:" + digest, len(raw)
layer_digest, layer_size = store_file(layer)
config = {"architecture": "amd64", "os": "linux", "config": {},
          "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}
config_digest, config_size = store_json(config)
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": layer_size}]}
manifest_digest, manifest_size = store_json(manifest)
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": manifest_digest, "size": manifest_size,
                        "annotations": {"org.opencontainers.image.ref.name": "1"}}]}
json.dump(index, open(os.path.join(root, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(root, "oci-layout"), "w"))
print(layer_digest)
EOF
layer=$(find "$tmp/layout/blobs/sha256" -size +1M -type f -printf '%f\n')
[ -n "$layer" ] || die "no layer blob was written"
note "pushing it to $reg_host (unthrottled)"
"$HOIST" push "oci:$tmp/layout:1" "$reg_host/bench/big:1" >/dev/null ||
    die "the push to the local registry failed"

note "a proxy sending every answer at $RATE bytes/s"
python3 - "$tmp/proxy-port" "${reg_host##*:}" "$RATE" <<'EOF' &
import os, socket, sys, threading, time
port_file, upstream_port, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
PIECE = 64 * 1024
def pipe(source, sink, throttle):
    started, sent = time.monotonic(), 0
    try:
        while True:
            data = source.recv(PIECE)
            if not data:
                break
            sink.sendall(data)
            sent += len(data)
            if throttle:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
def serve(client):
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    threading.Thread(target=pipe, args=(client, upstream, False), daemon=True).start()
    pipe(upstream, client, True)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
open(port_file + ".tmp", "w").write(str(listener.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
while True:
    client, _ = listener.accept()
    threading.Thread(target=serve, args=(client,), daemon=True).start()
EOF
proxy_pid=$!
for _ in $(seq 50); do [ -s "$tmp/proxy-port" ] && break; sleep 0.1; done
[ -s "$tmp/proxy-port" ] || die "the throttling proxy did not start"
slow=127.0.0.1:$(cat "$tmp/proxy-port")

note "hoist pull $slow/bench/big:1 (expect about $((SIZE_MB * 1048576 / RATE)) s)"
start=$(python3 -c 'import time; print(time.monotonic())')
"$HOIST" pull "$slow/bench/big:1" --output "oci:$tmp/out" --cache-dir "$tmp/cache" ||
    die "hoist pull through the throttled proxy failed"
end=$(python3 -c 'import time; print(time.monotonic())')
[ "$(stat -c %s "$tmp/out/blobs/sha256/$layer")" = "$(stat -c %s "$tmp/layout/blobs/sha256/$layer")" ] ||
    die "the pulled layer is not whole"
python3 - "$start" "$end" "$SIZE_MB" <<'EOF'
import sys
start, end, size_mb = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
seconds = end - start
print(f"slow-blob: pulled {size_mb} MiB through the throttled proxy in {seconds:.1f} s "
      f"({size_mb * 1048576 / seconds / 1e6:.2f} MB/s); layer whole")
EOF
