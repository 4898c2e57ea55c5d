#!/usr/bin/python3
"""Independent checker of hoist's signatures, sharing no code with hoist.

Written from the published formats only: cosign's key file (PEM `ENCRYPTED SIGSTORE
PRIVATE KEY` around go-securesystemslib's JSON: scrypt + nacl/secretbox over a PKCS#8
key), cosign's SIGNATURE_SPEC.md (`sha256-<hex>.sig` tag, simple-signing payload
layers, base64 DER ECDSA signature in `dev.cosignproject.cosign/signature`) and the
DSSE protocol (PAE). Crypto: Python `cryptography` (OpenSSL) and PyNaCl (libsodium),
both from Debian; registry access: urllib against a plain-HTTP loopback registry.

Subcommands (exit 0: holds; exit 1: does not, with the reason on stderr):
  decrypt-key KEY PASSWORD PUB          the key decrypts, is P-256, matches PUB
  encrypt-key KEY PUB PASSWORD TYPE N   writes a new key pair as cosign would (PEM TYPE, scrypt N)
  check-signature HOST REPO DIGEST PUB  a signature layer by PUB vouches for DIGEST
  check-dsse ENVELOPE PUB               the envelope's signature by PUB verifies; prints the payload
  tamper HOST REPO DIGEST               (fault injection) rewrites the payload of DIGEST's signature
  move HOST REPO FROM TO                (fault injection) puts FROM's signatures under TO's tag
  forge-provenance HOST REPO INDEX KEY PASSWORD
                                        (fault injection) replaces INDEX's provenance by one naming
                                        another base, validly signed with KEY
"""

import base64
import hashlib
import json
import sys
import urllib.request

import nacl.secret
import nacl.utils
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE = "dev.cosignproject.cosign/signature"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def fail(reason):
    print(reason, file=sys.stderr)
    sys.exit(1)


def pem_body(text, expected_types):
    lines = text.strip().splitlines()
    begin, end = lines[0], lines[-1]
    kind = begin[len("-----BEGIN "):-len("-----")]
    if kind not in expected_types or end != "-----END %s-----" % kind:
        fail("PEM type %r, wanted one of %r" % (kind, expected_types))
    return base64.b64decode("".join(lines[1:-1]))


def load_private(key_path, password):
    body = json.loads(pem_body(open(key_path).read(), ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"]))
    params = body["kdf"]["params"]
    key = hashlib.scrypt(password.encode(), salt=base64.b64decode(body["kdf"]["salt"]), n=params["N"], r=params["r"], p=params["p"], dklen=32, maxmem=256 << 20)
    der = nacl.secret.SecretBox(key).decrypt(base64.b64decode(body["ciphertext"]), base64.b64decode(body["cipher"]["nonce"]))
    return serialization.load_der_private_key(der, password=None)


def decrypt_key(key_path, password, pub_path):
    body = json.loads(pem_body(open(key_path).read(), ["ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"]))
    kdf, cipher = body["kdf"], body["cipher"]
    if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
        fail("kdf %r cipher %r" % (kdf["name"], cipher["name"]))
    params = kdf["params"]
    salt = base64.b64decode(kdf["salt"])
    nonce = base64.b64decode(cipher["nonce"])
    if len(salt) != 32 or len(nonce) != 24:
        fail("salt %d bytes, nonce %d bytes" % (len(salt), len(nonce)))
    key = hashlib.scrypt(password.encode(), salt=salt, n=params["N"], r=params["r"], p=params["p"], dklen=32, maxmem=256 << 20)
    try:
        der = nacl.secret.SecretBox(key).decrypt(base64.b64decode(body["ciphertext"]), nonce)
    except nacl.exceptions.CryptoError:
        fail("wrong password: the secretbox does not open")
    private = serialization.load_der_private_key(der, password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        fail("not an ECDSA P-256 key")
    public = serialization.load_pem_public_key(open(pub_path, "rb").read())
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if private.public_key().public_bytes(enc, raw) != public.public_bytes(enc, raw):
        fail("the private key is not the public key's")
    signature = private.sign(b"probe", ec.ECDSA(hashes.SHA256()))
    public.verify(signature, b"probe", ec.ECDSA(hashes.SHA256()))
    print("N=%d r=%d p=%d" % (params["N"], params["r"], params["p"]))


def encrypt_key(key_path, pub_path, password, pem_type, n):
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    salt = nacl.utils.random(32)
    nonce = nacl.utils.random(24)
    key = hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=8, p=1, dklen=32, maxmem=256 << 20)
    sealed = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext
    body = json.dumps({
        "kdf": {"name": "scrypt", "params": {"N": int(n), "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }, separators=(",", ":")).encode()
    text = base64.b64encode(body).decode()
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    with open(key_path, "w") as out:
        out.write("-----BEGIN %s-----\n%s\n-----END %s-----\n" % (pem_type, "\n".join(lines), pem_type))
    with open(pub_path, "wb") as out:
        out.write(private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def get(host, path, accept=None):
    request = urllib.request.Request("http://%s%s" % (host, path))
    if accept:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def sig_tag(digest):
    algorithm, hexpart = digest.split(":")
    return "%s-%s.sig" % (algorithm, hexpart)


def check_signature(host, repo, digest, pub_path):
    public = serialization.load_pem_public_key(open(pub_path, "rb").read())
    raw = get(host, "/v2/%s/manifests/%s" % (repo, sig_tag(digest)), MANIFEST)
    if raw is None:
        fail("%s/%s@%s: no %s tag" % (host, repo, digest, sig_tag(digest)))
    manifest = json.loads(raw)
    reasons = []
    for layer in manifest["layers"]:
        payload = get(host, "/v2/%s/blobs/%s" % (repo, layer["digest"]))
        if "sha256:" + hashlib.sha256(payload).hexdigest() != layer["digest"]:
            reasons.append("payload does not match its digest")
            continue
        if layer["mediaType"] != SIMPLESIGNING:
            reasons.append("media type " + layer["mediaType"])
            continue
        signature = base64.b64decode(layer["annotations"][SIGNATURE])
        try:
            public.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            reasons.append("signature does not verify")
            continue
        critical = json.loads(payload)["critical"]
        if critical["type"] != "cosign container image signature":
            reasons.append("type " + critical["type"])
        elif critical["image"]["docker-manifest-digest"] != digest:
            reasons.append("payload names " + critical["image"]["docker-manifest-digest"])
        elif critical["identity"]["docker-reference"] != "%s/%s" % (host, repo):
            reasons.append("payload names " + critical["identity"]["docker-reference"])
        else:
            print("verified %d layer(s), one by the key" % len(manifest["layers"]))
            return
    fail("%s/%s@%s: %s" % (host, repo, digest, "; ".join(reasons) or "no layers"))


def check_dsse(envelope_path, pub_path):
    public = serialization.load_pem_public_key(open(pub_path, "rb").read())
    envelope = json.load(open(envelope_path))
    kind = envelope["payloadType"].encode()
    body = base64.b64decode(envelope["payload"])
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)
    for signature in envelope["signatures"]:
        try:
            public.verify(base64.b64decode(signature["sig"]), pae, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        sys.stdout.write(body.decode())
        return
    fail("no signature of the envelope verifies")


def put(host, path, body, content_type=None, method="PUT"):
    request = urllib.request.Request("http://%s%s" % (host, path), data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request) as response:
        return response


def upload(host, repo, blob):
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    started = put(host, "/v2/%s/blobs/uploads/" % repo, b"", method="POST")
    location = started.headers["Location"]
    separator = "&" if "?" in location else "?"
    if location.startswith("http"):
        location = location.split(host, 1)[1]
    put(host, "%s%sdigest=%s" % (location, separator, digest), blob, "application/octet-stream")
    return digest


def tamper(host, repo, digest):
    tag = sig_tag(digest)
    manifest = json.loads(get(host, "/v2/%s/manifests/%s" % (repo, tag), MANIFEST))
    layer = manifest["layers"][0]
    payload = json.loads(get(host, "/v2/%s/blobs/%s" % (repo, layer["digest"])))
    payload["optional"] = {"tampered": "yes"}
    blob = json.dumps(payload, separators=(",", ":")).encode()
    layer["digest"] = upload(host, repo, blob)
    layer["size"] = len(blob)
    put(host, "/v2/%s/manifests/%s" % (repo, tag), json.dumps(manifest).encode(), MANIFEST)


def move(host, repo, source, target):
    raw = get(host, "/v2/%s/manifests/%s" % (repo, sig_tag(source)), MANIFEST)
    put(host, "/v2/%s/manifests/%s" % (repo, sig_tag(target)), raw, MANIFEST)


def forge_provenance(host, repo, index, key_path, password):
    private = load_private(key_path, password)
    tag = index.replace(":", "-")
    referrers = json.loads(get(host, "/v2/%s/manifests/%s" % (repo, tag), "application/vnd.oci.image.index.v1+json"))
    entry = next(m for m in referrers["manifests"] if m.get("artifactType") == "application/vnd.in-toto+json")
    manifest = json.loads(get(host, "/v2/%s/manifests/%s" % (repo, entry["digest"]), MANIFEST))
    envelope = json.loads(get(host, "/v2/%s/blobs/%s" % (repo, manifest["layers"][0]["digest"])))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    for dependency in statement["predicate"]["buildDefinition"]["resolvedDependencies"]:
        if dependency.get("name") == "base":
            dependency["digest"] = {"sha256": "0" * 64}
    body = json.dumps(statement, separators=(",", ":")).encode()
    kind = envelope["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)
    signature = private.sign(pae, ec.ECDSA(hashes.SHA256()))
    envelope = {"payloadType": envelope["payloadType"], "payload": base64.b64encode(body).decode(),
                "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}]}
    blob = json.dumps(envelope).encode()
    manifest["layers"][0]["digest"] = upload(host, repo, blob)
    manifest["layers"][0]["size"] = len(blob)
    raw = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    put(host, "/v2/%s/manifests/%s" % (repo, digest), raw, MANIFEST)
    entry["digest"], entry["size"] = digest, len(raw)
    put(host, "/v2/%s/manifests/%s" % (repo, tag), json.dumps(referrers).encode(), "application/vnd.oci.image.index.v1+json")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {
        "decrypt-key": decrypt_key,
        "encrypt-key": encrypt_key,
        "check-signature": check_signature,
        "check-dsse": check_dsse,
        "tamper": tamper,
        "move": move,
        "forge-provenance": forge_provenance,
    }[command](*args)
