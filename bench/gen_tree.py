#!/usr/bin/env python3
"""Generate a deterministic tree of FILES files totalling about TOTAL bytes.

Sizes follow a rough document-store mix (many small files, a few large ones); content is
pseudo-random so neither git's zlib nor anything else can cheat by compressing it.
Usage: gen_tree.py DIR [FILES=10000] [TOTAL=1073741824]
"""
import os
import random
import sys


def main() -> None:
    out = sys.argv[1]
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    total = int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 30
    rng = random.Random(42)
    weights = [rng.paretovariate(1.3) for _ in range(files)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[-1] += total - sum(sizes)
    block = rng.randbytes(1 << 20)
    for i, size in enumerate(sizes):
        d = os.path.join(out, f"dept-{i % 17:02d}", f"project-{i % 101:03d}")
        os.makedirs(d, exist_ok=True)
        name = os.path.join(d, f"doc-{i:05d}.{['md', 'pdf', 'docx', 'csv'][i % 4]}")
        with open(name, "wb") as f:
            # A unique prefix per file, then slices of a random block at a file-specific offset.
            f.write(f"file {i}\n".encode())
            left = size
            off = (i * 7919) % len(block)
            while left > 0:
                chunk = block[off : off + left]
                f.write(chunk)
                left -= len(chunk)
                off = 0
    print(f"{files} files, {sum(sizes)} bytes in {out}")


if __name__ == "__main__":
    main()
