"""What the data fingerprint costs: hashing a folder the first time, and again with the cache warm.

    python experiments/fingerprint/bench.py                 # 25,000 generated JPEGs of 150x150 px
    python experiments/fingerprint/bench.py --images 5000

Listing the folder (imgexp checks each file's header) is timed apart from
hashing, since every run lists its folder anyway. The cache file lives in a
temporary folder, so the first pass really reads every file; the OS page
cache is warm for both passes (the images were just written), which is what
a second run on the same machine sees too.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from imgexp.data.fingerprint import ContentHashes, fingerprint
from imgexp.data.folder import load_folder_source


def make_folder(root: Path, images: int, side: int = 150) -> Path:
    rng = np.random.default_rng(0)
    for i in range(images):
        folder = root / "train" / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / f"{i:06d}.jpg", quality=85)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=25_000)
    parser.add_argument("--repeats", type=int, default=3, help="cache-hit passes")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imgexp-fingerprint-"))
    root = make_folder(work / "images", args.images)
    size_mb = sum(f.stat().st_size for f in root.rglob("*.jpg")) / 2**20

    started = time.perf_counter()
    source = load_folder_source(str(root), 0.2, 42, "skip")
    listing = time.perf_counter() - started

    cache = work / "hashes.json"
    started = time.perf_counter()
    first = fingerprint(source, str(root), ContentHashes(cache))
    cold = time.perf_counter() - started
    warm = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        again = fingerprint(source, str(root), ContentHashes(cache))  # a new run: the cache from disk
        warm.append(time.perf_counter() - started)
        assert again == first
    per_k = lambda seconds: seconds / args.images * 1000  # noqa: E731
    print(f"{args.images:,} JPEGs, {size_mb:,.0f} MB, 150x150 px; cache file {cache.stat().st_size / 2**20:.1f} MB\n")
    print("| pass | seconds | per 1,000 images |\n|---|---:|---:|")
    print(f"| listing the folder (header check, every run does it) | {listing:.2f} | {per_k(listing):.3f} |")
    print(f"| fingerprint, first time on this machine (reads and hashes every file) | {cold:.2f} | {per_k(cold):.3f} |")
    median = statistics.median(warm)
    print(f"| fingerprint again, cache hit (median of {args.repeats}: {', '.join(f'{w:.2f}' for w in warm)}) "
          f"| {median:.2f} | {per_k(median):.3f} |")


if __name__ == "__main__":
    main()
