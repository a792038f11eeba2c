"""The one way imgexp writes a file: whole or not at all, and never through a link out of its folder.

A run folder is read after crashes (a resume, a pruner, a promoted Hyperband
trial, the tools) and it travels (a colleague's run, a download), so every
write here:

- goes to a fresh temporary file beside the target (created with O_EXCL |
  O_NOFOLLOW), is flushed and fsynced, then `os.replace`d over the target: a
  reader sees the old file or the new one, never half of one, and a kill
  leaves at most a `.tmp-*` file that no reader looks at;
- refuses a target whose folder, resolved, lies outside `root` (a symlinked
  `export/` pointing at `~/.ssh`), and replaces a symlink at the target itself
  instead of following it (`os.replace` renames over the link).

Nothing here imports TensorFlow: library writers (Keras' `model.save`, h5py,
NumPy) are given the temporary path through `write_with`.
"""

import csv
import io
import json
import os
import secrets
import shutil
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from imgexp.errors import UserError

TEMP_PREFIX = ".tmp-"  # a kill mid-write leaves only such a file; readers never look at one


def checked_target(path: Path, root: Path | None) -> Path:
    """`path` with its folder created, refused if that folder resolves outside `root`
    (the target's own folder when no root is given: only its parents' links are followed)."""
    path = Path(path)
    root = Path(root if root is not None else path.parent)
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    relative = os.path.relpath(path.absolute().parent, root.absolute())
    folder = real_root
    for part in Path(relative).parts:  # one component at a time: a link among them is refused
        if part == os.curdir:
            continue
        if part == os.pardir:
            raise UserError(f"{path}: outside the folder {root} that imgexp writes into; give a path inside it")
        folder = folder / part
        if folder.is_symlink():
            raise UserError(f"{folder}: a symbolic link inside {root}; imgexp never writes through links, "
                            "remove it or write somewhere else")
        folder.mkdir(exist_ok=True)
    if not folder.resolve().is_relative_to(real_root):
        raise UserError(f"{path}: outside the folder {root} that imgexp writes into; give a path inside it")
    return folder / path.name


def checked_folder(folder: Path, root: Path) -> Path:
    """`folder` created inside `root`, every part of it checked as `checked_target` checks a file's folder."""
    return checked_target(Path(folder) / "_", root).parent


def temporary_name(target: Path) -> Path:
    """A name beside the target that keeps its suffixes (Keras checks them: `.keras`, `.weights.h5`)."""
    return target.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}.{target.name}")


def temporary_beside(target: Path) -> Path:
    """A new, empty file in the target's folder, named by `temporary_name`."""
    while True:
        temp = temporary_name(target)
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
            return temp
        except FileExistsError:
            continue


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a power cut after os.replace keeps the new file)."""
    with suppress(OSError):  # some filesystems cannot open a directory for fsync
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_with(path: Path, writer: Callable[[Path], Any], root: Path | None = None) -> Path:
    """Have `writer(temporary_path)` write the file, then put it in place atomically; returns the target."""
    target = checked_target(path, root)
    temp = temporary_beside(target)
    try:
        writer(temp)
        fsync_file(temp)
        os.replace(temp, target)
    except BaseException:
        with suppress(OSError):
            temp.unlink()
        raise
    fsync_folder(target.parent)
    return target


def write_folder_with(path: Path, writer: Callable[[Path], Any], root: Path | None = None) -> Path:
    """A folder (a SavedModel) written by `writer(temporary_folder)`, then renamed into place; an
    existing target (or a link there) is refused, never merged into."""
    target = checked_target(path, root)
    if target.exists() or target.is_symlink():
        raise UserError(f"{target} exists already; remove it or choose another path")
    temp = temporary_name(target)
    temp.mkdir()
    try:
        writer(temp)
        os.rename(temp, target)  # fails, rather than merging, if the target appeared meanwhile
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    fsync_folder(target.parent)
    return target


def write_bytes(path: Path, data: bytes, root: Path | None = None) -> Path:
    return write_with(path, lambda temp: temp.write_bytes(data), root)


def write_text(path: Path, text: str, root: Path | None = None) -> Path:
    return write_with(path, lambda temp: temp.write_text(text), root)


def write_json(path: Path, data: Any, root: Path | None = None) -> Path:
    return write_text(path, json.dumps(data, indent=2) + "\n", root)


def write_csv(path: Path, rows: list[list[Any]], root: Path | None = None) -> Path:
    """Rows (the header first) as a CSV file."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return write_text(path, out.getvalue(), root)


def copy_file(source: Path, path: Path, root: Path | None = None) -> Path:
    """A copy of `source`'s content (a link at `source` is read through: it is the input)."""
    return write_with(path, lambda temp: shutil.copyfile(source, temp), root)


def append_line(path: Path, line: str, root: Path | None = None) -> None:
    """Append one line to a log that readers take line by line (a cut last line is skipped by them)."""
    target = checked_target(path, root)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode())
    finally:
        os.close(fd)


def remove_leftovers(folder: Path) -> None:
    """Delete the temporary files a killed writer left in `folder`."""
    for leftover in folder.glob(f"{TEMP_PREFIX}*"):
        with suppress(OSError):
            leftover.unlink()
