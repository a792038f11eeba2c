"""provenance.json: what made a run, so a row of a ranked table can be traced to code, packages and data.

The imgexp version and the versions of the packages it trains with, Python, the
devices, the host, the command line, start and end time (UTC), the git commit
of the working directory's repository (and whether it had uncommitted changes),
and the data fingerprint (imgexp.data.fingerprint).
"""

import datetime
import functools
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from imgexp import safe_write
from imgexp.data.fingerprint import ContentHashes, fingerprint, split_rows
from imgexp.data.source import ImageSource
from imgexp.errors import UserError
from imgexp.run_folder import PROVENANCE_FILE, SPLIT_FILE, read_json, write_json

PACKAGES = ("imgexp", "tensorflow", "keras", "keras-tuner", "hydra-core", "omegaconf", "numpy")


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@functools.cache  # the packages this process imported do not change under it; ~15 ms a run saved
def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


# Repository settings under which `git status` runs programs the repository names (a downloaded repository
# is someone else's): the fsmonitor hook, clean/smudge filters, textconv, includes that could add either.
RISKY_GIT_SETTINGS = ("core.fsmonitor", "filter.", "diff.", "include.", "includeif.", "core.hookspath",
                      "core.attributesfile")


def git_state(directory: Path) -> dict | None:
    """{"commit", "dirty"} of the repository holding `directory`, or None (no git, or not a repository).

    Nothing the repository configures is run: the commit comes from `rev-parse` with fsmonitor off, and
    "dirty" is null (unknown) where the repository's own config names programs `git status` would run.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "core.fsmonitor=false", *args], cwd=directory, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        local = git("config", "--local", "--list", "--no-includes").lower().splitlines()
        attributes = Path(git("rev-parse", "--show-toplevel")) / ".gitattributes"
        risky = any(line.startswith(RISKY_GIT_SETTINGS) for line in local) or (
            attributes.is_file() and "filter=" in attributes.read_text(errors="replace"))
        dirty = None if risky else bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def devices() -> list[str]:
    import tensorflow as tf

    return [f"{d.device_type}:{d.name}" for d in tf.config.list_logical_devices()]


def provenance(data: dict, started: str) -> dict:
    return {
        "versions": {**package_versions(), "python": platform.python_version()},
        "devices": devices(),
        "host": platform.node(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "started_utc": started,
        "ended_utc": None,
        "git": git_state(Path.cwd()),
        "data": data,
    }


def as_markdown(record: dict) -> str:
    """The same facts as text, for the run's TensorBoard session."""
    git = record["git"]
    lines = [
        f"**data** `{record['data']['sha256'][:12]}`: " + ", ".join(
            f"{name} {split['images']} images ({', '.join(f'{c} {n}' for c, n in split['per_class'].items())})"
            for name, split in record["data"]["splits"].items()),
        "**versions** " + ", ".join(f"{k} {v}" for k, v in record["versions"].items()),
        f"**git** {git['commit'][:12]}{' (uncommitted changes)' if git['dirty'] else ''}" if git else "**git** none",
        f"**host** {record['host']}, devices {', '.join(record['devices'])}",
        f"**command** `{' '.join(record['command'])}`, started {record['started_utc']}",
    ]
    return "\n\n".join(lines)


def record_data(run_dir: Path, listing: ImageSource, root: str | None, resumed: bool, recorder,
                hashes: ContentHashes) -> None:
    """provenance.json, split.csv and their summary in the run's TensorBoard session (`recorder`);
    a resumed run must see the data it started with."""
    data = fingerprint(listing, root, hashes)  # files hashed once per machine, then only stat-ed
    path = run_dir / PROVENANCE_FILE
    saved = read_json(path) if resumed else None
    if isinstance(saved, dict) and "sha256" in (saved.get("data") or {}):
        before = saved["data"]["sha256"]
        if before != data["sha256"]:
            raise UserError(f"{run_dir}: its data changed since the run started (data fingerprint {before[:12]}, "
                            f"now {data['sha256'][:12]}; split.csv lists what it trained on); run it in a new "
                            "hydra.run.dir, or restore the data")
        return
    record = provenance(data, utc_now())
    write_json(path, record, run_dir)
    safe_write.write_csv(run_dir / SPLIT_FILE, [["split", "image", "label"], *split_rows(listing, root)], run_dir)
    recorder.text("provenance", as_markdown(record))


def finish_provenance(run_dir: Path) -> None:
    """The end time, once the run finished."""
    path = run_dir / PROVENANCE_FILE
    if path.is_file():
        write_json(path, {**json.loads(path.read_text()), "ended_utc": utc_now()}, run_dir)
