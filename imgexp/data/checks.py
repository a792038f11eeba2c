"""Checks on a dataset's splits before training: leakage (the same image in two splits) and class balance.

Duplicates are found from the content hashes the data fingerprint uses
(imgexp.data.fingerprint), so on a folder they cost one stat per file once the
hashes are cached.
"""

import logging
from dataclasses import dataclass

import numpy as np

from imgexp.data.fingerprint import ContentHashes, image_hashes, split_entries
from imgexp.data.source import ImageSource, Split
from imgexp.errors import UserError

log = logging.getLogger(__name__)

EVAL_SPLITS = ("validation", "test")
SHOWN_PAIRS = 3


@dataclass(frozen=True)
class Duplicate:
    """An evaluation image whose content also appears in an earlier split (train, or validation for test)."""

    split: str
    index: int  # in its split
    name: str  # its file (relative to the dataset root) or #index
    earlier_split: str
    earlier_name: str

    def __str__(self) -> str:
        return f"{self.split}:{self.name} = {self.earlier_split}:{self.earlier_name}"


def find_duplicates(source: ImageSource, root: str | None, hashes: ContentHashes) -> list[Duplicate]:
    """Every validation/test image whose exact content is already in train (or, for test, in validation)."""
    seen: dict[str, tuple[str, str]] = {}  # content -> (split, name) where it first appeared
    found = []
    for name, split in source.splits().items():
        names = split_entries(split, root)
        contents = image_hashes(split, hashes)
        if name in EVAL_SPLITS:
            found += [Duplicate(name, i, names[i], *seen[c]) for i, c in enumerate(contents) if c in seen]
        for i, c in enumerate(contents):
            seen.setdefault(c, (name, names[i]))
    hashes.save()
    return found


def duplicates_message(duplicates: list[Duplicate]) -> str:
    by_split = {s: sum(d.split == s for d in duplicates) for s in EVAL_SPLITS}
    counts = " and ".join(f"{n} {s}" for s, n in by_split.items() if n)
    shown = "; ".join(str(d) for d in duplicates[:SHOWN_PAIRS])
    more = f" and {len(duplicates) - SHOWN_PAIRS} more" if len(duplicates) > SHOWN_PAIRS else ""
    return f"{counts} image(s) also appear in an earlier split (same content), inflating the score: {shown}{more}"


def handle_duplicates(source: ImageSource, root: str | None, policy: str, hashes: ContentHashes) -> ImageSource:
    """Apply `dataset.on_duplicate`: warn (keep them), error (stop), drop_from_eval (leave them out of
    validation/test). Returns the source to train and evaluate on."""
    duplicates = find_duplicates(source, root, hashes)
    if not duplicates:
        return source
    message = duplicates_message(duplicates)
    if policy == "error":
        raise UserError(f"dataset: {message}; remove them, or set dataset.on_duplicate=drop_from_eval (or warn)")
    if policy == "warn":
        log.warning("dataset: %s; set dataset.on_duplicate=drop_from_eval to leave them out of evaluation", message)
        return source
    log.warning("dataset: %s; left out of evaluation (dataset.on_duplicate=drop_from_eval)", message)
    drop = {s: [d.index for d in duplicates if d.split == s] for s in EVAL_SPLITS}
    return ImageSource(
        class_names=source.class_names,
        train=source.train,
        validation=without(source.validation, drop["validation"]),
        test=without(source.test, drop["test"]) if source.test is not None else None,
    )


def without(split: Split, indices: list[int]) -> Split:
    return split.subset(np.setdiff1d(np.arange(len(split)), indices))


def class_counts(split: Split, class_names: list[str]) -> dict[str, int]:
    counts = np.bincount(split.labels, minlength=len(class_names))
    return {name: int(n) for name, n in zip(class_names, counts)}


def report_class_balance(source: ImageSource, small_class_share: float) -> None:
    """Log the images per class of each split; warn about training classes smaller than
    `small_class_share` of the largest one."""
    for name, split in source.splits().items():
        counts = class_counts(split, source.class_names)
        log.info("%s: %d images; per class: %s", name, len(split), ", ".join(f"{c} {n}" for c, n in counts.items()))
    counts = class_counts(source.train, source.class_names)
    largest = max(counts, key=counts.get)
    small = {c: n for c, n in counts.items() if n < small_class_share * counts[largest]}
    if small:
        listed = ", ".join(f"{c} {n}" for c, n in small.items())
        log.warning("train: class(es) smaller than %g%% of the largest (%s, %d images): %s; add images or set "
                    "trainer.class_weight=balanced (dataset.small_class_share=%g sets this warning)",
                    100 * small_class_share, largest, counts[largest], listed, small_class_share)
