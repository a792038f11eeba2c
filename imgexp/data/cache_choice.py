"""`dataset.cache=auto`: hold the decoded images in memory when they fit, else stream them.

Decoding a JPEG costs as much as a training step of a small model, so images
are decoded once and kept as uint8 at the run's image size whenever that fits
in `dataset.cache_ram_share` of the memory available; a folder larger than
that streams from disk every epoch, as before.
"""

import os
from dataclasses import dataclass
from pathlib import Path

MEMORY = "memory"


@dataclass(frozen=True)
class CacheChoice:
    cache: str | None  # "memory", or None: stream from disk
    needed_bytes: int
    allowed_bytes: int

    def describe(self, images: int, size: tuple[int, int]) -> str:
        verdict = "held in memory" if self.cache == MEMORY else "streamed from disk every epoch"
        relation = "within" if self.cache == MEMORY else "more than"
        return (f"dataset.cache=auto: {images:,} images at {size[0]}x{size[1]} take {self.needed_bytes / 2**20:,.0f} MB "
                f"decoded, {relation} the {self.allowed_bytes / 2**20:,.0f} MB allowed "
                f"(dataset.cache_ram_share of available memory): {verdict}")


def available_memory_bytes(meminfo: Path = Path("/proc/meminfo"),
                           cgroup_limit: Path = Path("/sys/fs/cgroup/memory.max")) -> int:
    """Memory this process can still take: MemAvailable, lowered by a cgroup (container) limit."""
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = cgroup_limit.read_text().strip()
        if limit.isdigit():
            available = min(available, int(limit))
    except OSError:
        pass
    return available


def choose_cache(images: int, size: tuple[int, int], ram_share: float, available_bytes: int) -> CacheChoice:
    """Memory if `images` uint8 RGB images of `size` fit in `ram_share` of `available_bytes`."""
    needed = images * size[0] * size[1] * 3
    allowed = int(ram_share * available_bytes)
    return CacheChoice(MEMORY if needed <= allowed else None, needed, allowed)
