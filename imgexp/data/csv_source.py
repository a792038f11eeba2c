"""A labels CSV beside a folder of images (Kaggle's layout): a file column, a label column, maybe a split column.

    filename,label            file names relative to the CSV's folder (or dataset.images)
    cat.001.jpg,cat           the columns guessed from the usual headers, or named with
    dog.002.jpg,dog           dataset.file_column / dataset.label_column

A `split` column (train / validation / test; val and valid too) decides the
splits; without one they are carved from the rows by dataset.validation_split
and dataset.test_split, seeded. The CSV is someone else's file: it is read up to
a size limit, and a file name that leads out of the images folder is refused.
"""

import csv
import io
import logging
from pathlib import Path

import numpy as np

from imgexp.data.folder import carve_splits, keep_decodable
from imgexp.data.source import ImageSource, Split
from imgexp.errors import UserError

log = logging.getLogger(__name__)

MAX_CSV_BYTES = 256 * 2**20  # a million rows of a few columns is ~50 MB
FILE_HEADERS = ("filename", "file", "image", "image_id", "path")
LABEL_HEADERS = ("label", "class", "category")
SPLIT_HEADER = "split"
SPLIT_NAMES = {"train": "train", "training": "train", "validation": "validation", "val": "validation",
               "valid": "validation", "test": "test"}
GUESSED_SUFFIXES = (".jpg", ".jpeg", ".png")  # image_id columns often leave the extension out


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a CSV no larger than MAX_CSV_BYTES."""
    if path.stat().st_size > MAX_CSV_BYTES:
        raise UserError(f"dataset.path={path}: {path.stat().st_size / 2**20:.0f} MB, more than the "
                        f"{MAX_CSV_BYTES // 2**20} MB a labels CSV may have; split it or list fewer images")
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError:
        raise UserError(f"dataset.path={path}: not a UTF-8 text file; save the labels as CSV (UTF-8)") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise UserError(f"dataset.path={path}: empty; give a header row (e.g. filename,label) and one row per image")
    return list(reader.fieldnames), list(reader)


def column(header: list[str], given: str | None, usual: tuple[str, ...], key: str, path: Path) -> str:
    """The named column, or the first usual header present (any case)."""
    if given is not None:
        if given not in header:
            raise UserError(f"{key}={given}: no such column in {path} (its columns: {', '.join(header)})")
        return given
    by_lower = {h.strip().lower(): h for h in header}
    for name in usual:
        if name in by_lower:
            return by_lower[name]
    raise UserError(f"{path}: no column named {' or '.join(usual)} (its columns: {', '.join(header)}); "
                    f"name yours with {key}=...")


def image_file(images: Path, name: str, csv_path: Path) -> Path | None:
    """The image a row names, inside the images folder; None if it is not there."""
    real_root = images.resolve()
    candidates = [images / name] + ([images / f"{name}{s}" for s in GUESSED_SUFFIXES] if not Path(name).suffix else [])
    for candidate in candidates:
        if not candidate.resolve().is_relative_to(real_root):
            raise UserError(f"{csv_path}: the file name {name!r} leads out of {images}; "
                            "file names must lie inside the images folder (dataset.images)")
        if candidate.is_file():
            return candidate
    return None


def load_csv_source(request) -> ImageSource:
    csv_path = Path(request.path)
    images = Path(request.root)
    header, rows = read_rows(csv_path)
    file_key = column(header, request.file_column, FILE_HEADERS, "dataset.file_column", csv_path)
    label_key = column(header, request.label_column, LABEL_HEADERS, "dataset.label_column", csv_path)
    split_key = next((h for h in header if h.strip().lower() == SPLIT_HEADER), None)
    files, labels, splits, missing = [], [], [], []
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        name, label = (row.get(file_key) or "").strip(), (row.get(label_key) or "").strip()
        if not name or not label:
            raise UserError(f"{csv_path}, line {number}: no {file_key if not name else label_key}; "
                            "every row needs a file and a label")
        found = image_file(images, name, csv_path)
        if found is None:
            missing.append(name)
            continue
        split = SPLIT_NAMES.get((row.get(split_key) or "train").strip().lower()) if split_key else "train"
        if split is None:
            raise UserError(f"{csv_path}, line {number}: split {row.get(split_key)!r}; use train, validation or test")
        files.append(found)
        labels.append(label)
        splits.append(split)
    if missing:
        if request.on_bad_image == "error":
            raise UserError(f"{csv_path}: {len(missing)} listed file(s) not found in {images}, e.g. {missing[0]}; "
                            "fix the names or dataset.images, or set dataset.on_bad_image=skip")
        log.warning("%s: %d listed file(s) not found in %s (skipped), e.g. %s", csv_path, len(missing), images,
                    ", ".join(missing[:3]))
    good = set(keep_decodable(files, request.on_bad_image, request.max_pixels))
    class_names = sorted(set(labels))
    if len(class_names) < 2:
        raise UserError(f"{csv_path}: {len(class_names)} label(s) in column {label_key}; a classifier needs two or more")
    index = {name: i for i, name in enumerate(class_names)}
    by_split = {name: [(f, index[l]) for f, l, s in zip(files, labels, splits) if s == name and f in good]
                for name in ("train", "validation", "test")}
    if not by_split["train"]:
        raise UserError(f"{csv_path}: no readable training images; check the file column ({file_key}) and the images")
    as_split = lambda pairs: Split(labels=np.asarray([l for _, l in pairs], np.int32),  # noqa: E731
                                   paths=[str(f) for f, _ in pairs]) if pairs else None
    train, validation, test = carve_splits(as_split(by_split["train"]), as_split(by_split["validation"]),
                                           as_split(by_split["test"]), request)
    return ImageSource(class_names=class_names, train=train, validation=validation, test=test)
