"""One writer per folder: an exclusive lock the kernel releases when its process dies.

A run, a multirun job and a search hold `.lock` in their folder while they
write there (`fcntl.flock`: a SIGKILL or a power cut never leaves a stale lock,
so the next command starts at once). A second process on the same folder
stops with one line naming the process that holds it. The lock file says
who holds it (pid, host, since) for that line and for `imgexp.compare`, which
calls a run `running` only while its lock is held.
"""

import fcntl
import json
import os
import socket
import time
from contextlib import suppress
from pathlib import Path

from imgexp.errors import UserError

LOCK_FILE = ".lock"
_held: dict[Path, int] = {}  # folders this process holds, and how many FolderLocks share each hold
_descriptors: dict[Path, int] = {}  # ... and the open lock file of each


def holder(folder: Path) -> dict:
    """Who wrote the lock file last (pid, host, since), or {} when it cannot be read."""
    try:
        with open(folder / LOCK_FILE, "rb") as f:  # bounded: a lock file is one short JSON line
            found = json.loads(f.read(4096) or b"{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def describe(info: dict) -> str:
    if not info:
        return "another process"
    return f"process {info.get('pid', '?')} on {info.get('host', '?')}"


class FolderLock:
    """`with FolderLock(folder, what="run"):` ... the folder is this process's alone."""

    def __init__(self, folder: Path, what: str = "run"):
        self.folder, self.what = Path(folder), what
        self.fd: int | None = None
        self.key: Path | None = None

    def acquire(self) -> "FolderLock":
        """Take the folder (again, if this process holds it already: the CLI takes a run's folder before
        the run itself does)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        key = self.folder.resolve()
        if key in _held:
            _held[key] += 1
            self.key = key
            return self
        path = self.folder / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"{self.folder}: this {self.what} is in use by {describe(holder(self.folder))}; "
                            "wait for it to end (or stop it), then run the command again") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode())
        self.fd, self.key = fd, key
        _held[key] = 1
        _descriptors[key] = fd
        return self

    def release(self) -> None:
        key = self.key
        if key is None or key not in _held:
            return
        _held[key] -= 1
        self.key = None
        if _held[key] > 0:
            return
        del _held[key]
        self.fd = _descriptors.pop(key)
        if self.fd is not None:
            with suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(folder: Path) -> bool:
    """True while some process holds `folder`'s lock (this one included)."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock taken to look
    return False
