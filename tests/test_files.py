# -*- test-case-name: tests.test_files -*-
"""
Tests for :mod:`txtezosp2p._files`: ``atomic_write`` (content and mode,
atomic replacement, no temporary file left behind, the old file intact when
writing fails part of the way) and the removal of the temporary files that
crashed writers leave.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import capture_events, named
from txtezosp2p import _files
from txtezosp2p._files import STALE_TEMP_AGE, atomic_write, pid_alive, remove_stale_temp_files

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


class StaleTempFilesTests(SynchronousTestCase):
    """
    :func:`remove_stale_temp_files`: only the temporary files of the given
    file, only those of dead writers or older than the age limit.
    """

    NOW = 1_767_225_600.0

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "peers.json")
        self.events = capture_events(self)

    def make(self, name: str, age: float = 0.0) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "wb") as handle:
            handle.write(b"[{partial")
        os.utime(path, (self.NOW - age, self.NOW - age))
        return path

    def remove(self, alive: set[int] | None = None) -> list[str]:
        living = alive or set()
        removed = remove_stale_temp_files(
            self.path, now=lambda: self.NOW, alive=lambda pid: pid in living
        )
        return sorted(os.path.basename(path) for path in removed)

    def test_name_records_the_writer(self) -> None:
        """The temporary file of a write is ``<name>.<pid>.<random>.tmp``."""
        names: list[str] = []
        real_replace = os.replace

        def replace(source: str, target: str) -> None:
            names.append(os.path.basename(source))
            real_replace(source, target)

        self.patch(FILES_OS, "replace", replace)
        atomic_write(self.path, b"[]")
        [name] = names
        self.assertRegex(name, rf"\Apeers\.json\.{os.getpid()}\.[a-z0-9_]{{8}}\.tmp\Z")

    def test_dead_writer(self) -> None:
        self.make("peers.json.4242.abcd_123.tmp")
        self.make("peers.json.4343.abcd_123.tmp")
        self.assertEqual(self.remove(alive={4343}), ["peers.json.4242.abcd_123.tmp"])
        self.assertEqual(sorted(os.listdir(self.directory)), ["peers.json.4343.abcd_123.tmp"])
        [event] = named(self.events, "stale_temp_files_removed")
        self.assertEqual(event["count"], 1)
        self.assertEqual(event["files"], ["peers.json.4242.abcd_123.tmp"])

    def test_own_pid_is_a_previous_life(self) -> None:
        """
        A file named with this process's pid was left by an earlier process
        with the same pid (pid 1 in a container): this one has not written yet.
        """
        self.make(f"peers.json.{os.getpid()}.abcd_123.tmp")
        self.assertEqual(
            self.remove(alive={os.getpid()}), [f"peers.json.{os.getpid()}.abcd_123.tmp"]
        )

    def test_age(self) -> None:
        """A living (or reused) pid protects a file for ``STALE_TEMP_AGE`` seconds."""
        self.make("peers.json.4343.young___.tmp", age=STALE_TEMP_AGE - 1)
        self.make("peers.json.4343.old_____.tmp", age=STALE_TEMP_AGE + 1)
        self.assertEqual(self.remove(alive={4343}), ["peers.json.4343.old_____.tmp"])

    def test_without_pid(self) -> None:
        """Names without a pid (earlier versions) are removed by age only."""
        self.make("peers.json.young___.tmp", age=10)
        self.make("peers.json.old_____.tmp", age=STALE_TEMP_AGE + 1)
        self.assertEqual(self.remove(), ["peers.json.old_____.tmp"])

    def test_others_untouched(self) -> None:
        """Other files, other names, directories and links stay, however old."""
        old = STALE_TEMP_AGE * 10
        kept = [
            "peers.json",
            "peers.json.tmp",
            "peers.json.abc123.tmp",
            "peers.json.4242.abc.tmp",
            "peers.json.corrupt-20260101T000000Z",
            "identity.json.4242.abcd_123.tmp",
            "xpeers.json.4242.abcd_123.tmp",
            "peers.json.4242.abcd_123.tmp.bak",
            "peers.jsonx4242.abcd_123.tmp",
        ]
        for name in kept:
            self.make(name, age=old)
        os.mkdir(os.path.join(self.directory, "peers.json.4242.dir_____.tmp"))
        os.symlink(self.path, os.path.join(self.directory, "peers.json.4242.link____.tmp"))
        self.assertEqual(self.remove(), [])
        self.assertEqual(len(os.listdir(self.directory)), len(kept) + 2)
        self.assertEqual(named(self.events, "stale_temp_files_removed"), [])

    def test_relative_path(self) -> None:
        """Removed paths are given relative to the same directory as the file."""
        cwd = os.getcwd()
        self.addCleanup(os.chdir, cwd)
        os.chdir(self.directory)
        self.make("peers.json.4242.abcd_123.tmp")
        self.assertEqual(
            remove_stale_temp_files("peers.json", alive=lambda pid: False),
            ["peers.json.4242.abcd_123.tmp"],
        )

    def test_missing_directory(self) -> None:
        self.assertEqual(remove_stale_temp_files(os.path.join(self.directory, "a", "b")), [])

    def test_killed_writer(self) -> None:
        """
        A real process killed with SIGKILL in the middle of a write leaves its
        temporary file; it is removed, the target is intact.
        """
        atomic_write(self.path, b"old")
        child = subprocess.run(
            [sys.executable, "-c", KILLED_WRITER, self.path],
            capture_output=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(child.returncode, -signal.SIGKILL, child.stderr)
        [leftover] = [name for name in os.listdir(self.directory) if name.endswith(".tmp")]
        removed = remove_stale_temp_files(self.path)
        self.assertEqual([os.path.basename(path) for path in removed], [leftover])
        self.assertEqual(os.listdir(self.directory), ["peers.json"])
        with open(self.path, "rb") as handle:
            self.assertEqual(handle.read(), b"old")

    def test_pid_alive(self) -> None:
        self.assertTrue(pid_alive(os.getpid()))
        self.assertFalse(pid_alive(0))
        self.assertFalse(pid_alive(-5))
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        self.assertFalse(pid_alive(child.pid))  # reaped: gone (pids are not reused at once)


#: Writes its argument with atomic_write and dies (SIGKILL) at the fsync.
KILLED_WRITER = """
import os, signal, sys
from txtezosp2p import _files
vars(_files)["os"].fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
_files.atomic_write(sys.argv[1], b"new" * 1000)
"""
