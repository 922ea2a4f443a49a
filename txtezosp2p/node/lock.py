# -*- test-case-name: tests.test_lock -*-
"""
The data directory's lock, as Octez's ``Lwt_lock_file`` (``<data-dir>/lock``,
``Data_version.lock_file``): one node per data directory, so that two never
share a peer id nor write the same ``peers.json``.

The lock is a POSIX record lock (``lockf``) on ``<data-dir>/lock``, taken
without waiting and held until the node stops; the file holds the pid of the
holder.  The kernel releases the lock when its process dies, so a lock left
by a crashed node is stale by construction: the next node takes it and says
so.  Where the file system has no record locks (some network file systems),
the pid in the file decides: a live process other than ours holds it.

Unlike Octez, the file is not truncated before the lock is taken (Octez opens
it with ``O_TRUNC``, which erases the holder's pid for whoever is refused).

Record locks belong to a process, not to a file descriptor: a second lock
of the same file in the same process would succeed, and closing it would
drop the first.  Locks taken in this process are therefore also kept in a
table, so that two nodes of one process (the sandbox, tests) cannot share a
directory either.
"""

from __future__ import annotations

import errno
import os

from .. import _events as ev
from .config.tree import LOCK_FILE

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["DataDirLock", "DataDirLocked"]

_log = ev.logger("p2p.node")

#: Locks held by this process, by real path of the lock file.
_HELD: dict[str, DataDirLock] = {}
#: lockf errors that mean "held by someone else".
_BUSY = (errno.EAGAIN, errno.EACCES)
#: The largest pid text we read back.
_PID_SIZE = 32


class DataDirLocked(Exception):
    """The data directory is in use by another node."""

    def __init__(self, data_dir: str, pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "another process"
        self.reason = f"data directory {data_dir} is locked by {holder}"
        self.hint = "another node uses it; stop that node or give this one another --data-dir"
        super().__init__(f"{self.reason} ({self.hint})")
        self.data_dir = data_dir
        self.pid = pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, _PID_SIZE, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class DataDirLock:
    """The lock of one data directory; :meth:`acquire`, then :meth:`release`."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.path = os.path.join(data_dir, LOCK_FILE)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock now, or raise :class:`DataDirLocked` (``OSError`` if the file cannot be opened)."""  # noqa: E501
        if self._fd is not None:
            return
        os.makedirs(self.data_dir, exist_ok=True)
        key = os.path.realpath(self.path)
        if key in _HELD:
            raise DataDirLocked(self.data_dir, os.getpid())
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            previous = _read_pid(fd)
            self._lock(fd, previous)
            if previous is not None and previous != os.getpid():
                _log.info(
                    "stale lock of process {pid} in {data_dir} taken over",
                    event=ev.STALE_LOCK,
                    pid=previous,
                    data_dir=self.data_dir,
                )
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        _HELD[key] = self

    def _lock(self, fd: int, previous: int | None) -> None:
        if fcntl is None:  # pragma: no cover - not POSIX
            self._by_pid(previous)
            return
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in _BUSY:
                raise DataDirLocked(self.data_dir, _read_pid(fd)) from None
            if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                self._by_pid(previous)
                return
            raise

    def _by_pid(self, previous: int | None) -> None:
        """No record locks here: a live holder other than us keeps the directory."""
        if previous is not None and previous != os.getpid() and _alive(previous):
            raise DataDirLocked(self.data_dir, previous)

    def release(self) -> None:
        """Give the lock back (the file stays, empty, as Octez leaves its own)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _HELD.pop(os.path.realpath(self.path), None)
        try:
            os.ftruncate(fd, 0)
        except OSError:  # pragma: no cover - the lock goes with the descriptor anyway
            pass
        os.close(fd)
