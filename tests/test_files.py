# -*- test-case-name: tests.test_files -*-
"""
Tests for :func:`txtezosp2p._files.atomic_write`: content and mode, atomic
replacement, no temporary file left behind, and the old file intact when
writing fails part of the way.
"""

from __future__ import annotations

import os
import stat

from twisted.trial.unittest import SynchronousTestCase

from txtezosp2p import _files
from txtezosp2p._files import atomic_write

#: The ``os`` module as ``_files`` sees it (patching its attributes patches ``os``).
FILES_OS = vars(_files)["os"]


class Abort(BaseException):
    """Not an ``Exception``: the cleanup must run for these too."""


class AtomicWriteTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "state.json")

    def read(self) -> bytes:
        with open(self.path, "rb") as handle:
            return handle.read()

    def mode(self) -> int:
        return stat.S_IMODE(os.stat(self.path).st_mode)

    def assertOnlyTarget(self) -> None:
        """The directory holds the target file and nothing else."""
        self.assertEqual(os.listdir(self.directory), ["state.json"])

    def test_write(self) -> None:
        atomic_write(self.path, b"content\n")
        self.assertEqual(self.read(), b"content\n")
        self.assertEqual(self.mode(), 0o644)
        self.assertOnlyTarget()

    def test_mode(self) -> None:
        for mode in (0o600, 0o640, 0o444):
            atomic_write(self.path, b"x", mode=mode)
            self.assertEqual(self.mode(), mode)

    def test_mode_ignores_umask(self) -> None:
        old = os.umask(0o077)
        self.addCleanup(os.umask, old)
        atomic_write(self.path, b"x", mode=0o644)
        self.assertEqual(self.mode(), 0o644)

    def test_empty_and_binary(self) -> None:
        atomic_write(self.path, b"")
        self.assertEqual(self.read(), b"")
        data = bytes(range(256)) * 1000
        atomic_write(self.path, data)
        self.assertEqual(self.read(), data)

    def test_replace(self) -> None:
        """An existing file is replaced by a new one (a rename, not a rewrite)."""
        with open(self.path, "wb") as handle:
            handle.write(b"old content that is longer")
        os.chmod(self.path, 0o600)
        old_inode = os.stat(self.path).st_ino
        atomic_write(self.path, b"new", mode=0o640)
        self.assertEqual(self.read(), b"new")
        self.assertEqual(self.mode(), 0o640)
        self.assertNotEqual(os.stat(self.path).st_ino, old_inode)
        self.assertOnlyTarget()

    def test_read_only_target(self) -> None:
        """A read-only file is replaced too: only the directory must be writable."""
        atomic_write(self.path, b"old", mode=0o400)
        atomic_write(self.path, b"new", mode=0o400)
        self.assertEqual(self.read(), b"new")

    def test_creates_directory(self) -> None:
        path = os.path.join(self.directory, "a", "b", "file")
        atomic_write(path, b"deep")
        with open(path, "rb") as handle:
            self.assertEqual(handle.read(), b"deep")
        self.assertEqual(os.listdir(os.path.dirname(path)), ["file"])

    def test_relative_path(self) -> None:
        cwd = os.getcwd()
        self.addCleanup(os.chdir, cwd)
        os.chdir(self.directory)
        atomic_write("state.json", b"here")
        self.assertEqual(self.read(), b"here")
        self.assertOnlyTarget()

    def test_many_writes(self) -> None:
        for n in range(20):
            atomic_write(self.path, b"%d" % n)
        self.assertEqual(self.read(), b"19")
        self.assertOnlyTarget()

    def fail_in(self, name: str, error: BaseException) -> list[str]:
        """Make ``os.<name>`` raise ``error``; returns the paths it was called with."""
        calls: list[str] = []

        def raiser(*args: object, **kwargs: object) -> None:
            calls.append(repr(args))
            raise error

        self.patch(FILES_OS, name, raiser)
        return calls

    def assertFailureKeepsOld(self, name: str, error: BaseException) -> None:
        atomic_write(self.path, b"old", mode=0o600)
        calls = self.fail_in(name, error)
        self.assertRaises(type(error), atomic_write, self.path, b"new", 0o644)
        self.assertTrue(calls)
        self.assertEqual(self.read(), b"old")
        self.assertEqual(self.mode(), 0o600)
        self.assertOnlyTarget()

    def test_replace_fails(self) -> None:
        self.assertFailureKeepsOld("replace", OSError(28, "No space left on device"))

    def test_fsync_fails(self) -> None:
        self.assertFailureKeepsOld("fsync", OSError(5, "Input/output error"))

    def test_chmod_fails(self) -> None:
        self.assertFailureKeepsOld("chmod", PermissionError(1, "Operation not permitted"))

    def test_interrupted(self) -> None:
        """A ``BaseException`` (e.g. ``KeyboardInterrupt``) also cleans up."""
        self.assertFailureKeepsOld("fsync", Abort())

    def test_failure_without_old_file(self) -> None:
        self.fail_in("replace", OSError(28, "No space left on device"))
        self.assertRaises(OSError, atomic_write, self.path, b"new")
        self.assertEqual(os.listdir(self.directory), [])

    def test_write_fails(self) -> None:
        """A failure while writing the data (here ``fdopen``) leaves nothing behind."""
        atomic_write(self.path, b"old")
        self.fail_in("fdopen", OSError(27, "File too large"))
        self.assertRaises(OSError, atomic_write, self.path, b"new")
        self.assertEqual(self.read(), b"old")
        self.assertOnlyTarget()

    def test_directory_fsync_failure_ignored(self) -> None:
        """
        An ``fsync`` failure on the directory, after the rename, is not an
        error: the new file is in place.
        """
        real_fsync = os.fsync
        file_fds: list[int] = []

        def fsync(fd: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                raise OSError(22, "Invalid argument")
            file_fds.append(fd)
            real_fsync(fd)

        self.patch(FILES_OS, "fsync", fsync)
        atomic_write(self.path, b"new")
        self.assertEqual(self.read(), b"new")
        self.assertEqual(len(file_fds), 1)
        self.assertOnlyTarget()
