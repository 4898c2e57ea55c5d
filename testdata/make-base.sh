#!/usr/bin/env bash
# Build the tiny two-platform base images used by hoist's tests and examples:
#
#   testdata/base/         OCI image layout 1.0, tag "1.0" -> OCI image index
#   testdata/base-docker/  the same images with Docker schema-2 media types,
#                          stored in an OCI layout, tag "1.0" -> manifest list
#
# Each image index / manifest list holds linux/amd64 and linux/arm64/v8. Each
# platform is one gzip layer: the real busybox-static binary of that
# architecture as /bin/busybox plus applet symlinks, /etc/passwd + /etc/group
# (root and app 1000:1000), /tmp (1777) and /etc/nginx/conf.d/default.conf (a
# file that examples/dashboard removes with a whiteout).
#
# The output is a pure function of the two .deb files (and of GNU tar / gzip /
# python3's json, whose output formats are stable): running the script twice
# gives identical bytes. That is what lets tests pin digests of these images.
#
# Usage:
#   testdata/make-base.sh                 # download the .debs with apt-get
#   DEB_DIR=/path/to/debs testdata/make-base.sh
#                                         # use busybox-static_*_{amd64,arm64}.deb
#                                         # already in DEB_DIR (no network, no root)
#   BUSYBOX_VERSION=1:1.35.0-4+deb12u1+b1 testdata/make-base.sh
#                                         # pin the package version to download
#
# Needs: bash, GNU tar >= 1.28 (--sort=name), gzip, sha256sum, python3,
# dpkg-deb; apt-get (+ root or sudo, once) when DEB_DIR is not given.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Locale and umask must not leak into the output (sort order, file modes).
export LC_ALL=C
umask 022

work=$(mktemp -d "${TMPDIR:-/tmp}/hoist-make-base.XXXXXX")
trap 'rm -rf "$work"' EXIT

log() { printf '[make-base] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ---------------------------------------------------------------------------
# 1. The two .deb files.
# ---------------------------------------------------------------------------
deb_dir=${DEB_DIR:-}
if [ -z "$deb_dir" ]; then
    deb_dir="$work/debs"
    mkdir -p "$deb_dir"
    # apt-get download needs arm64 in dpkg's architecture list to resolve
    # busybox-static:arm64; adding it is harmless (nothing gets installed).
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        log "adding arm64 as a dpkg foreign architecture (needed to download the arm64 .deb)"
        as_root dpkg --add-architecture arm64
        as_root apt-get update -qq
    fi
    ver=${BUSYBOX_VERSION:+=$BUSYBOX_VERSION}
    # _apt cannot write into a mktemp dir owned by root; the warning about an
    # unsandboxed download is expected and harmless.
    (cd "$deb_dir" && apt-get download -q "busybox-static:amd64$ver" "busybox-static:arm64$ver" 2>&1) |
        { grep -v 'Download is performed unsandboxed' || true; } >&2
fi

deb_for() { # deb_for ARCH -> path of the single matching .deb
    local matches=("$deb_dir"/busybox-static_*_"$1".deb)
    if [ ! -f "${matches[0]}" ] || [ "${#matches[@]}" -ne 1 ]; then
        echo "error: expected exactly one busybox-static_*_$1.deb in $deb_dir" >&2
        exit 1
    fi
    printf '%s\n' "${matches[0]}"
}
for arch in amd64 arm64; do
    deb=$(deb_for "$arch")
    log "using $(basename "$deb") sha256:$(sha256sum "$deb" | cut -d' ' -f1)"
done

# ---------------------------------------------------------------------------
# 2. Root filesystems and layers (one per platform).
# ---------------------------------------------------------------------------
# Blobs are written once into a scratch store and then copied into both
# layouts: the layer and config bytes are identical in base/ and base-docker/,
# only manifests and indexes differ.
store="$work/blobs"
mkdir -p "$store"

# put_blob FILE -> prints "sha256:<hex> <size>" and moves FILE into the store.
put_blob() {
    local hex size
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    mv "$1" "$store/$hex"
    printf 'sha256:%s %s\n' "$hex" "$size"
}

# Canonical JSON: compact, sorted keys, no trailing newline. The exact bytes
# written are the bytes hashed, so this must never change formatting.
# write_json OUT PYTHON-EXPR [ARGS...]: evaluates EXPR with `a` = ARGS.
write_json() {
    local out=$1 expr=$2
    shift 2
    python3 - "$out" "$expr" "$@" <<'PY'
import json, sys
out, expr, a = sys.argv[1], sys.argv[2], sys.argv[3:]
obj = eval(expr, {"a": a})
with open(out, "w", encoding="utf-8") as f:
    f.write(json.dumps(obj, separators=(",", ":"), sort_keys=True))
PY
}

applets=(cat echo env id ls sh sleep true wget)

declare -A layer_digest layer_size diff_id config_digest config_size variant
variant[amd64]=""
variant[arm64]="v8"

for arch in amd64 arm64; do
    deb=$(deb_for "$arch")
    x="$work/deb-$arch"
    root="$work/rootfs-$arch"
    mkdir -p "$x" "$root"
    dpkg-deb -x "$deb" "$x"

    # Every mode is set explicitly: the tree must not depend on the umask or
    # on what dpkg-deb restored.
    install -d -m 0755 "$root/bin" "$root/etc" "$root/etc/nginx" "$root/etc/nginx/conf.d" \
        "$root/usr" "$root/usr/share" "$root/usr/share/doc" "$root/usr/share/doc/busybox-static"
    install -d -m 0700 "$root/root"
    install -d -m 1777 "$root/tmp"
    install -m 0755 "$x/bin/busybox" "$root/bin/busybox"
    # Shipping a GPL binary: keep its copyright notice next to it.
    install -m 0644 "$x/usr/share/doc/busybox-static/copyright" \
        "$root/usr/share/doc/busybox-static/copyright"
    for a in "${applets[@]}"; do
        ln -s busybox "$root/bin/$a"
    done
    printf '%s\n' \
        'root:x:0:0:root:/root:/bin/sh' \
        'app:x:1000:1000:app:/home/app:/bin/sh' >"$root/etc/passwd"
    printf '%s\n' \
        'root:x:0:' \
        'app:x:1000:' >"$root/etc/group"
    # Stands in for the config a real nginx base ships; the example app
    # deletes it (remove = [...]) so tests can check whiteouts.
    printf '%s\n' \
        '# default server from the base image; hoist examples remove this file' \
        'server { listen 80; root /usr/share/nginx/html; }' >"$root/etc/nginx/conf.d/default.conf"
    chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nginx/conf.d/default.conf"

    # Deterministic tar: sorted names, root-owned with numeric ids only,
    # mtime 0, POSIX (pax) format with atime/ctime records dropped and a
    # fixed extended-header name (the default embeds the PID). Member names
    # have no "./" prefix, as most registry images do.
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
        --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
        -C "$root" -cf "$work/layer-$arch.tar" bin etc root tmp usr
    diff_id[$arch]="sha256:$(sha256sum "$work/layer-$arch.tar" | cut -d' ' -f1)"
    # -n: no name / mtime in the gzip header.
    gzip -n -9 <"$work/layer-$arch.tar" >"$work/layer-$arch.tar.gz"
    read -r layer_digest[$arch] layer_size[$arch] < <(put_blob "$work/layer-$arch.tar.gz")

    # Image config. Docker's image config format is the same JSON, so the same
    # blob serves both layouts.
    write_json "$work/config-$arch.json" '{
        "architecture": a[0],
        "os": "linux",
        **({"variant": a[1]} if a[1] else {}),
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        "rootfs": {"type": "layers", "diff_ids": [a[2]]},
        "history": [{
            "created": "1970-01-01T00:00:00Z",
            "created_by": "testdata/make-base.sh: " + a[3],
            "comment": "busybox-static " + a[4] + " with applet symlinks, passwd/group, /tmp, nginx default.conf",
        }],
    }' "$arch" "${variant[$arch]}" "${diff_id[$arch]}" "$(basename "$deb")" \
        "$(dpkg-deb -f "$deb" Version)"
    read -r config_digest[$arch] config_size[$arch] < <(put_blob "$work/config-$arch.json")
done

# ---------------------------------------------------------------------------
# 3. Manifests, index and layout, once per media-type flavour.
# ---------------------------------------------------------------------------
# make_layout DEST FLAVOUR   (FLAVOUR: oci | docker)
make_layout() {
    local dest=$1 flavour=$2
    local mt_manifest mt_config mt_layer mt_index
    case $flavour in
    oci)
        mt_index=application/vnd.oci.image.index.v1+json
        mt_manifest=application/vnd.oci.image.manifest.v1+json
        mt_config=application/vnd.oci.image.config.v1+json
        mt_layer=application/vnd.oci.image.layer.v1.tar+gzip
        ;;
    docker)
        mt_index=application/vnd.docker.distribution.manifest.list.v2+json
        mt_manifest=application/vnd.docker.distribution.manifest.v2+json
        mt_config=application/vnd.docker.container.image.v1+json
        mt_layer=application/vnd.docker.image.rootfs.diff.tar.gzip
        ;;
    esac

    local entries=() arch md ms
    for arch in amd64 arm64; do
        write_json "$work/manifest.json" '{
            "schemaVersion": 2,
            "mediaType": a[0],
            "config": {"mediaType": a[1], "digest": a[2], "size": int(a[3])},
            "layers": [{"mediaType": a[4], "digest": a[5], "size": int(a[6])}],
        }' "$mt_manifest" "$mt_config" "${config_digest[$arch]}" "${config_size[$arch]}" \
            "$mt_layer" "${layer_digest[$arch]}" "${layer_size[$arch]}"
        read -r md ms < <(put_blob "$work/manifest.json")
        entries+=("$arch" "${variant[$arch]}" "$md" "$ms")
    done

    # The image index (OCI) / manifest list (Docker): one entry per platform.
    write_json "$work/index.json" '{
        "schemaVersion": 2,
        "mediaType": a[0],
        "manifests": [
            {
                "mediaType": a[1],
                "digest": a[i + 4],
                "size": int(a[i + 5]),
                "platform": {"architecture": a[i + 2], "os": "linux",
                             **({"variant": a[i + 3]} if a[i + 3] else {})},
            }
            for i in range(0, len(a) - 2, 4)
        ],
    }' "$mt_index" "$mt_manifest" "${entries[@]}"
    local id is
    read -r id is < <(put_blob "$work/index.json")

    # Assemble the layout next to DEST, then swap it in, so a failed run never
    # leaves a half-written fixture behind.
    local tmp="$dest.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp/blobs/sha256"
    local want=("${id#sha256:}")
    for arch in amd64 arm64; do
        want+=("${config_digest[$arch]#sha256:}" "${layer_digest[$arch]#sha256:}")
    done
    # The manifests: read back from the index we just wrote.
    mapfile -t -O "${#want[@]}" want < <(python3 -c '
import json, sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    print(m["digest"].split(":", 1)[1])' "$store/${id#sha256:}")
    local h
    for h in "${want[@]}"; do
        cp "$store/$h" "$tmp/blobs/sha256/$h"
        chmod 0644 "$tmp/blobs/sha256/$h"
    done
    write_json "$tmp/oci-layout" '{"imageLayoutVersion": "1.0.0"}'
    write_json "$tmp/index.json" '{
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": a[0],
            "digest": a[1],
            "size": int(a[2]),
            "annotations": {"org.opencontainers.image.ref.name": "1.0"},
        }],
    }' "$mt_index" "$id" "$is"
    rm -rf "$dest"
    mv "$tmp" "$dest"
    log "$(basename "$dest"): tag 1.0 -> $id ($is bytes)"
}

make_layout "$here/base" oci
make_layout "$here/base-docker" docker

for arch in amd64 arm64; do
    log "$arch: layer ${layer_digest[$arch]} (${layer_size[$arch]} bytes), diff_id ${diff_id[$arch]}, config ${config_digest[$arch]}"
done
