"""What data a run saw: a hash per split over every image (relative path + content) and counts per class.

Hashing a folder reads every file once per machine: content hashes are kept in a
cache file keyed by each file's absolute path, size and modification time, so a
search, a sweep or the next run on the same folder reads only files that changed.
"""

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

from imgexp import safe_write
from imgexp.data.source import ImageSource, Split

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "imgexp"


class ContentHashes:
    """sha256 of files, remembered in CACHE_DIR/file-hashes.json by (path, size, mtime)."""

    def __init__(self, cache_file: Path | None = None):
        self.cache_file = cache_file or CACHE_DIR / "file-hashes.json"
        try:
            self.known: dict[str, list] = json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.changed = False
        self.hashed = 0  # files read in this process (the rest came from the cache)

    def of(self, path: str) -> str:
        stat = os.stat(path)
        key = os.path.abspath(path)
        entry = self.known.get(key)
        if entry and entry[0] == stat.st_size and entry[1] == stat.st_mtime_ns:
            return entry[2]
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        self.known[key] = [stat.st_size, stat.st_mtime_ns, digest]
        self.changed, self.hashed = True, self.hashed + 1
        return digest

    def save(self) -> None:
        if not self.changed:
            return
        safe_write.write_text(self.cache_file, json.dumps(self.known))  # whole or not at all, also with several processes
        self.changed = False


def split_entries(split: Split, root: str | Path | None) -> list[str]:
    """Each image's name in the split: its path relative to the dataset root, its id, or its index in memory."""
    if split.paths is None:
        return split.ids or [f"#{i}" for i in range(len(split))]
    return [os.path.relpath(p, root) if root else p for p in split.paths]


def image_hashes(split: Split, hashes: ContentHashes) -> list[str]:
    """sha256 of each image's content: its file's bytes, or its pixels when it is held in memory."""
    if split.paths is not None:
        return [hashes.of(p) for p in split.paths]
    return [hashlib.sha256(image.tobytes()).hexdigest() for image in split.images]


def split_fingerprint(split: Split, class_names: list[str], root: Path | None, hashes: ContentHashes) -> dict:
    digest = hashlib.sha256()
    for name, label, content in zip(split_entries(split, root), split.labels, image_hashes(split, hashes)):
        digest.update(f"{name}\t{class_names[int(label)]}\t{content}\n".encode())
    counts = Counter(class_names[int(label)] for label in split.labels)
    return {"sha256": digest.hexdigest(), "images": len(split), "per_class": {c: counts.get(c, 0) for c in class_names}}


def fingerprint(source: ImageSource, root: str | None, hashes: ContentHashes) -> dict:
    """{"sha256": over all splits, "splits": {name: {"sha256", "images", "per_class"}}}."""
    root_path = Path(root) if root else None
    splits = {name: split_fingerprint(split, source.class_names, root_path, hashes)
              for name, split in source.splits().items()}
    hashes.save()
    whole = hashlib.sha256("".join(f"{n}:{s['sha256']}\n" for n, s in splits.items()).encode()).hexdigest()
    return {"sha256": whole, "splits": splits}


def split_rows(source: ImageSource, root: str | None) -> list[tuple[str, str, str]]:
    """(split, image, label) for every image: which file went where, with which label."""
    root_path = Path(root) if root else None
    return [(name, entry, source.class_names[int(label)])
            for name, split in source.splits().items()
            for entry, label in zip(split_entries(split, root_path), split.labels)]
