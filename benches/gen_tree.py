#!/usr/bin/env python3
"""Writes the benchmark input tree: gen_tree.py ROOT SIZE_MB (used by compare.sh and
compare-app.sh)."""
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
