"""What the runs of one owner (a search, a sweep, one run) reuse instead of making again.

The first run that needs a dataset's listing, its decoded images, a frozen backbone's features or a
defaults config makes it; the later runs of the same owner get it from the owner's RunCache, which
is handed down to each run (imgexp.run_context.RunContext). Arrays count against `max_bytes`, and
the least recently used values are dropped past it, so a long search stays flat. A new owner (a
test, a new search) starts with an empty one.
"""

from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, TypeVar

from imgexp.data.cache_choice import available_memory_bytes

if TYPE_CHECKING:  # numpy and what needs it load with the first run, not with `python -m imgexp --help`
    from imgexp.data.fingerprint import ContentHashes

T = TypeVar("T")
DEFAULT_MEMORY_SHARE = 0.5  # of the memory available when the cache is made


def array_bytes(value: object) -> int:
    """The bytes of the arrays `value` holds (an array, a tuple or list of them, an ImageSource)."""
    if hasattr(value, "nbytes"):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(array_bytes(v) for v in value)
    if hasattr(value, "splits"):  # an ImageSource: its images in memory, its labels
        return sum(array_bytes(split.images) + array_bytes(split.labels) for split in value.splits().values())
    return 0


class RunCache:
    """Values by (kind, key), least recently used dropped first past `max_bytes`; `passes` counts the
    expensive ones really made (`decode`, `features`) for tests and benchmarks."""

    def __init__(self, max_bytes: int | None = None):
        self.max_bytes = max_bytes if max_bytes is not None else int(DEFAULT_MEMORY_SHARE * available_memory_bytes())
        self.passes: Counter[str] = Counter()
        self._values: OrderedDict[tuple[str, Hashable], tuple[object, int]] = OrderedDict()
        self._hashes: "ContentHashes | None" = None

    @property
    def hashes(self) -> "ContentHashes":
        """Content hashes of files, loaded from the machine's hash file once per owner."""
        from imgexp.data.fingerprint import ContentHashes

        self._hashes = self._hashes or ContentHashes()
        return self._hashes

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self._values.values())

    def count(self, kind: str) -> int:
        """How many values of `kind` are kept."""
        return sum(k == kind for k, _ in self._values)

    def values(self, kind: str) -> list:
        """The values of `kind` kept, oldest first."""
        return [value for (k, _), (value, _) in self._values.items() if k == kind]

    def has(self, kind: str, key: Hashable) -> bool:
        return (kind, key) in self._values

    def lookup(self, kind: str, key: Hashable) -> object | None:
        """The value kept for (kind, key), or None; a value looked up is the last to be dropped."""
        entry = self._values.get((kind, key))
        if entry is None:
            return None
        self._values.move_to_end((kind, key))
        return entry[0]

    def put(self, kind: str, key: Hashable, value: T, size: int | None = None) -> T:
        """Keep `value`; `size`: the bytes it holds when they are not arrays it exposes (a tf.data
        pipeline over arrays holds a copy of them)."""
        self._values[(kind, key)] = (value, array_bytes(value) if size is None else size)
        self._values.move_to_end((kind, key))
        while self.bytes > self.max_bytes and len(self._values) > 1:  # the newest stays: a run is using it
            self._values.popitem(last=False)
        return value

    def get(self, kind: str, key: Hashable, make: Callable[[], T], size: int | None = None) -> T:
        """The value kept for (kind, key), made by `make()` the first time."""
        found = self.lookup(kind, key)
        return found if found is not None else self.put(kind, key, make(), size)
