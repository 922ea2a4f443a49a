# -*- test-case-name: tests.test_files -*-
"""
Crash-safe file writes: a temporary file in the same directory, flushed and
fsynced, then renamed over the target, then the directory fsynced.  A crash
at any moment leaves either the old file or the new one, never a mix.

A crash (``kill -9``, power loss) during a write leaves the temporary file
behind.  Its name says whose it is, ``<name>.<pid>.<random>.tmp``, so that
:func:`remove_stale_temp_files`, called when a process starts using a file,
removes the leftovers of dead writers and nothing else.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable

from . import _events as ev

_log = ev.logger("files")

#: Age after which a temporary file is stale whoever wrote it: a write takes
#: well under a second, and a pid may be reused by an unrelated process.
STALE_TEMP_AGE = 600.0

#: The random part ``tempfile.mkstemp`` puts in a name.
_RANDOM = r"[a-z0-9_]{8}"


def atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically (temp file + fsync + rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    prefix = f"{os.path.basename(path)}.{os.getpid()}."
    fd, temp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (``True`` when it cannot be known)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, ValueError, OverflowError):
        return True  # someone else's process, or no way to ask
    return True


def remove_stale_temp_files(
    path: str,
    *,
    max_age: float = STALE_TEMP_AGE,
    now: Callable[[], float] = time.time,
    alive: Callable[[int], bool] = pid_alive,
) -> list[str]:
    """
    Remove the temporary files :func:`atomic_write` left next to ``path``
    when a writer died mid-write; returns the paths removed.

    Only regular files named ``<name>.<pid>.<random>.tmp`` (or
    ``<name>.<random>.tmp``, from versions that did not record the pid) are
    considered, and only stale ones: their process is gone, or they are
    older than ``max_age`` seconds.  Files of this process count as stale:
    call this before the process first writes ``path`` (at start).  Errors
    (a file removed meanwhile, a directory that cannot be read) are ignored.
    """
    directory = os.path.dirname(path)
    pattern = re.compile(re.escape(os.path.basename(path)) + rf"\.(?:(\d+)\.)?{_RANDOM}\.tmp")
    removed: list[str] = []
    try:
        entries = list(os.scandir(directory or os.curdir))
    except OSError:
        return removed
    me = os.getpid()
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now() - entry.stat(follow_symlinks=False).st_mtime
            pid = match.group(1)
            dead = pid is not None and (int(pid) == me or not alive(int(pid)))
            if dead or age > max_age:
                removed_path = os.path.join(directory, entry.name)
                os.unlink(removed_path)
                removed.append(removed_path)
        except OSError:
            continue
    if removed:
        _log.info(
            "removed {count} stale temporary files of {path}",
            event=ev.STALE_TEMP_FILES_REMOVED,
            count=len(removed),
            path=path,
            files=[os.path.basename(p) for p in removed],
        )
    return removed
