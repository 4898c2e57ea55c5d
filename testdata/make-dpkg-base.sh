#!/usr/bin/env bash
# Build testdata/base-dpkg/: an OCI image layout, tag "1.0" -> an OCI image index with
# one linux/amd64 image whose layers are
#   1. the busybox layer of testdata/base (the same blob, copied), and
#   2. a Debian-style package database: /var/lib/dpkg/status (three installed
#      packages and one removed, whose config files remain), a distroless-style
#      /var/lib/dpkg/status.d/tzdata, and /etc/os-release -> ../usr/lib/os-release
#      (Debian 12).
# hoist's SBOM tests read the packages of this base.
#
# Deterministic: the output is a pure function of this script and testdata/base
# (GNU tar --sort=name, mtime 0, numeric root owners, gzip -n; canonical JSON).
# Needs: bash, GNU tar >= 1.28, gzip, sha256sum, python3.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LC_ALL=C
umask 022
work=$(mktemp -d "${TMPDIR:-/tmp}/hoist-make-dpkg-base.XXXXXX")
trap 'rm -rf "$work"' EXIT

root="$work/rootfs"
install -d -m 0755 "$root/etc" "$root/usr" "$root/usr/lib" "$root/var" "$root/var/lib" \
    "$root/var/lib/dpkg" "$root/var/lib/dpkg/status.d"
cat >"$root/usr/lib/os-release" <<'OS'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
OS
ln -s ../usr/lib/os-release "$root/etc/os-release"
cat >"$root/var/lib/dpkg/status" <<'STATUS'
Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 341
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system.

Package: busybox-static
Status: install ok installed
Priority: optional
Section: shells
Installed-Size: 2164
Maintainer: Debian Install System Team <debian-boot@lists.debian.org>
Architecture: amd64
Source: busybox
Version: 1:1.35.0-4+deb12u1+b1
Description: Standalone rescue shell with tons of builtin utilities

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12986
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u7
Description: GNU C Library: Shared libraries

Package: nano
Status: deinstall ok config-files
Priority: optional
Section: editors
Architecture: amd64
Version: 7.2-1+deb12u1
Description: small, friendly text editor inspired by Pico
STATUS
cat >"$root/var/lib/dpkg/status.d/tzdata" <<'TZ'
Package: tzdata
Version: 2024a-0+deb12u1
Architecture: all
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Installed-Size: 2484
Section: localization
Priority: required
Multi-Arch: foreign
Description: time zone and daylight-saving time data
TZ
chmod 0644 "$root/usr/lib/os-release" "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/status.d/tzdata"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$root" -cf "$work/dpkg.tar" etc usr var
gzip -n -9 <"$work/dpkg.tar" >"$work/dpkg.tar.gz"

python3 - "$here" "$work" <<'PY'
import hashlib, json, os, shutil, sys

here, work = sys.argv[1], sys.argv[2]
base = os.path.join(here, "base")
out = os.path.join(here, "base-dpkg")
tmp = out + ".tmp"
shutil.rmtree(tmp, ignore_errors=True)
os.makedirs(os.path.join(tmp, "blobs", "sha256"))

def canonical(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()

def put(data):
    hexd = hashlib.sha256(data).hexdigest()
    with open(os.path.join(tmp, "blobs", "sha256", hexd), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + hexd, "size": len(data)}

def blob(desc):
    with open(os.path.join(base, "blobs", "sha256", desc["digest"].split(":")[1]), "rb") as f:
        return f.read()

ref = json.load(open(os.path.join(base, "index.json")))["manifests"][0]
index = json.loads(blob(ref))
amd64 = next(m for m in index["manifests"] if m["platform"]["architecture"] == "amd64")
manifest = json.loads(blob(amd64))
config = json.loads(blob(manifest["config"]))
busybox = manifest["layers"][0]
put(blob(busybox))

tar = open(os.path.join(work, "dpkg.tar"), "rb").read()
gz = open(os.path.join(work, "dpkg.tar.gz"), "rb").read()
layer = dict(put(gz), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(tar).hexdigest())
config["history"].append({
    "created": "1970-01-01T00:00:00Z",
    "created_by": "testdata/make-dpkg-base.sh",
    "comment": "dpkg status (base-files, busybox-static, libc6; nano removed), status.d/tzdata, os-release",
})
cfg = dict(put(canonical(config)), mediaType="application/vnd.oci.image.config.v1+json")
new_manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": cfg,
    "layers": [busybox, layer],
}
m = dict(put(canonical(new_manifest)), mediaType="application/vnd.oci.image.manifest.v1+json",
         platform={"architecture": "amd64", "os": "linux"})
top = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [m]}
i = dict(put(canonical(top)), mediaType="application/vnd.oci.image.index.v1+json",
         annotations={"org.opencontainers.image.ref.name": "1.0"})
with open(os.path.join(tmp, "oci-layout"), "wb") as f:
    f.write(canonical({"imageLayoutVersion": "1.0.0"}))
with open(os.path.join(tmp, "index.json"), "wb") as f:
    f.write(canonical({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [i]}))
for name in os.listdir(os.path.join(tmp, "blobs", "sha256")):
    os.chmod(os.path.join(tmp, "blobs", "sha256", name), 0o644)
shutil.rmtree(out, ignore_errors=True)
os.rename(tmp, out)
print("[make-dpkg-base] base-dpkg: tag 1.0 ->", i["digest"], i["size"], "manifest", m["digest"], file=sys.stderr)
PY
