# -*- test-case-name: tests.test_lock -*-
"""
Tests for L{txtezosp2p.node.lock}: one node per data directory, across
processes (a real second process holds the lock) and within one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p.node.lock import DataDirLock, DataDirLocked

from .helpers import capture_events, named

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: A child that takes the lock of argv[1], says so, and holds it until its stdin closes.
HOLDER = (
    "import sys; from txtezosp2p.node.lock import DataDirLock; "
    "lock = DataDirLock(sys.argv[1]); lock.acquire(); print('locked', flush=True); "
    "sys.stdin.read(); lock.release()"
)


@contextmanager
def held_elsewhere(data_dir: str) -> Iterator[int]:
    """Another process holds the lock of ``data_dir``; yields its pid."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, data_dir],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # bounded: the child prints at once or dies
        if line.strip() != "locked":
            raise AssertionError(f"the holder did not lock: {line!r}")
        yield child.pid
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
        assert child.stdout is not None
        child.stdout.close()


class LockTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.data_dir = os.path.abspath(self.mktemp())

    def test_acquire_release(self) -> None:
        """The lock file holds our pid while held, and nothing after."""
        lock = DataDirLock(self.data_dir)
        lock.acquire()
        self.addCleanup(lock.release)
        self.assertTrue(lock.held)
        with open(os.path.join(self.data_dir, "lock")) as handle:
            self.assertEqual(handle.read(), str(os.getpid()))
        lock.acquire()  # again: nothing changes
        lock.release()
        self.assertFalse(lock.held)
        with open(os.path.join(self.data_dir, "lock")) as handle:
            self.assertEqual(handle.read(), "")
        lock.release()  # again: nothing happens
        again = DataDirLock(self.data_dir)
        again.acquire()
        again.release()

    def test_other_process(self) -> None:
        """A directory another process locked is refused, naming that process."""
        with held_elsewhere(self.data_dir) as pid:
            error = self.assertRaises(DataDirLocked, DataDirLock(self.data_dir).acquire)
            self.assertEqual(error.pid, pid)
            self.assertIn(f"locked by process {pid}", str(error))
            self.assertIn("--data-dir", str(error))
        # the holder is gone: the directory is free
        lock = DataDirLock(self.data_dir)
        lock.acquire()
        lock.release()

    def test_same_process(self) -> None:
        """Two nodes of one process cannot share a directory either (through a symlink neither)."""
        first = DataDirLock(self.data_dir)
        first.acquire()
        self.addCleanup(first.release)
        self.assertRaises(DataDirLocked, DataDirLock(self.data_dir).acquire)
        link = os.path.abspath(self.mktemp())
        os.symlink(self.data_dir, link)
        self.assertRaises(DataDirLocked, DataDirLock(link).acquire)
        self.assertTrue(first.held)

    def test_stale_lock(self) -> None:
        """A lock file left by a dead process is taken over, and the log says so."""
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        pid = int(dead.stdout)
        os.makedirs(self.data_dir)
        with open(os.path.join(self.data_dir, "lock"), "w") as handle:
            handle.write(str(pid))
        events = capture_events(self)
        lock = DataDirLock(self.data_dir)
        lock.acquire()
        self.addCleanup(lock.release)
        [stale] = named(events, "stale_lock")
        self.assertEqual(stale["pid"], pid)

    def test_without_record_locks(self) -> None:
        """Where lockf is not supported, a live pid in the file holds the directory."""

        def unsupported(fd: int, command: int) -> None:
            raise OSError(errno.ENOLCK, "No locks available")

        self.patch(fcntl, "lockf", unsupported)
        os.makedirs(self.data_dir)
        path = os.path.join(self.data_dir, "lock")
        with open(path, "w") as handle:
            handle.write(str(os.getppid()))  # alive
        error = self.assertRaises(DataDirLocked, DataDirLock(self.data_dir).acquire)
        self.assertEqual(error.pid, os.getppid())
        with open(path, "w") as handle:
            handle.write("999999999")  # no such process
        lock = DataDirLock(self.data_dir)
        lock.acquire()
        lock.release()
