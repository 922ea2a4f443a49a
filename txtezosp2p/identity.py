# -*- test-case-name: tests.test_identity -*-
"""
Node identities (wire.md §1): a crypto_box key pair, its peer id and a
proof-of-work stamp; ``identity.json`` in Octez's format; identity mining.

Mining runs the compiled loop of ``cext/_cbox.pyx`` without the GIL in one
thread per core, each from its own random starting stamp; it reports
progress and can be cancelled.

Octez sources: ``src/lib_base/p2p_identity.ml``,
``src/lib_base/p2p_identity_file/identity_file.ml``,
``src/bin_node/node_identity_command.ml``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from nacl.public import PrivateKey
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from zope.interface import implementer

from . import _backend
from ._files import atomic_write, remove_stale_temp_files
from .interfaces import IIdentityStore
from .wire.crypto import PowTarget, check_proof_of_work, public_key_of_secret
from .wire.errors import (
    DecodingError,
    ExistentIdentityFile,
    IdentityFileError,
    IdentityGenerationCancelled,
    IdentityKeysMismatch,
    IdentityMismatch,
)
from .wire.ids import PeerId

if TYPE_CHECKING:
    from ._backend import CboxModule

#: The file name Octez uses in a data directory.
IDENTITY_FILE_NAME = "identity.json"
#: The proof-of-work difficulty a node expects by default (``expected-proof-of-work``).
DEFAULT_EXPECTED_POW = 26.0
#: Largest identity file we are willing to read.
MAX_IDENTITY_FILE_SIZE = 64 * 1024


@attrs.frozen(repr=False)
class Identity:
    """A node identity.  ``repr`` never shows the secret key."""

    peer_id: PeerId
    public_key: bytes
    secret_key: bytes
    proof_of_work_stamp: bytes

    @classmethod
    def from_keys(cls, secret_key: bytes, proof_of_work_stamp: bytes) -> Identity:
        public_key = public_key_of_secret(secret_key)
        return cls(PeerId.of_public_key(public_key), public_key, secret_key, proof_of_work_stamp)

    def check(self, difficulty: float | PowTarget) -> bool:
        """Whether the stamp reaches ``difficulty``."""
        return check_proof_of_work(self.public_key, self.proof_of_work_stamp, difficulty)

    def to_json(self) -> dict[str, str]:
        """Octez's JSON object, fields in Octez's order."""
        return {
            "peer_id": str(self.peer_id),
            "public_key": self.public_key.hex(),
            "secret_key": self.secret_key.hex(),
            "proof_of_work_stamp": self.proof_of_work_stamp.hex(),
        }

    def public_json(self) -> dict[str, str]:
        """The fields that are safe to show."""
        return {
            "peer_id": str(self.peer_id),
            "public_key": self.public_key.hex(),
            "proof_of_work_stamp": self.proof_of_work_stamp.hex(),
        }

    @classmethod
    def from_json(cls, value: Any) -> Identity:
        """
        Parse Octez's JSON object and run Octez's checks: the peer id (when
        present) must be the hash of the public key (``IdentityMismatch``),
        the secret key must give the public key (``IdentityKeysMismatch``).
        """
        if not isinstance(value, dict):
            raise IdentityFileError("an identity is a JSON object")

        def hex_field(name: str, size: int) -> bytes:
            text = value.get(name)
            if not isinstance(text, str):
                raise IdentityFileError(f"missing or invalid field {name!r}")
            try:
                data = bytes.fromhex(text)
            except ValueError:
                raise IdentityFileError(f"field {name!r} is not hexadecimal") from None
            if len(data) != size:
                raise IdentityFileError(f"field {name!r} must hold {size} bytes")
            return data

        public_key = hex_field("public_key", 32)
        secret_key = hex_field("secret_key", 32)
        stamp = hex_field("proof_of_work_stamp", 24)
        computed = PeerId.of_public_key(public_key)
        if "peer_id" in value:
            text = value["peer_id"]
            try:
                declared = PeerId.from_b58check(text) if isinstance(text, str) else None
            except DecodingError:
                declared = None
            if declared is None:
                raise IdentityFileError("field 'peer_id' is not a peer id")
            if declared != computed:
                raise IdentityMismatch(f"peer id {declared} is not the hash of the public key")
        if public_key_of_secret(secret_key) != public_key:
            raise IdentityKeysMismatch("the secret key does not match the public key")
        return cls(computed, public_key, secret_key, stamp)

    def __repr__(self) -> str:
        return f"Identity(peer_id={self.peer_id})"


@implementer(IIdentityStore)
class IdentityFile:
    """``identity.json`` on disk, read with Octez's checks and written atomically."""

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def in_directory(cls, data_dir: str) -> IdentityFile:
        return cls(os.path.join(data_dir, IDENTITY_FILE_NAME))

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def remove_stale_temp_files(self) -> list[str]:
        """Remove what interrupted saves left behind (before this process saves)."""
        return remove_stale_temp_files(self.path)

    def load(self) -> Identity:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_IDENTITY_FILE_SIZE + 1)
        except OSError as exc:
            raise IdentityFileError(f"cannot read {self.path}: {exc.strerror}") from exc
        if len(data) > MAX_IDENTITY_FILE_SIZE:
            raise IdentityFileError(f"{self.path} is too large for an identity file")
        if not data.strip():
            raise IdentityFileError(f"{self.path} is empty")
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise IdentityFileError(f"{self.path} is not valid JSON: {exc}") from exc
        try:
            return Identity.from_json(value)
        except (IdentityFileError, IdentityMismatch, IdentityKeysMismatch) as exc:
            # the same error, naming the file
            raise type(exc)(f"{self.path}: {exc}") from None

    def save(self, identity: object, overwrite: bool = False) -> None:
        if not isinstance(identity, Identity):
            raise TypeError("expected an Identity")
        if not overwrite and self.exists():
            raise ExistentIdentityFile(f"{self.path} already exists")
        text = json.dumps(identity.to_json(), indent=2) + "\n"
        atomic_write(self.path, text.encode("ascii"), mode=0o600)


# -- Mining -----------------------------------------------------------------

#: Stamps tried per call into the mining loop (about 50 ms at 5 M/s); the
#: granularity of cancellation and progress.
MINING_BATCH = 1 << 18

ProgressCallback = Callable[[int, float], None]


def expected_attempts(difficulty: float) -> float:
    """Stamps tried on average to reach ``difficulty``: each one succeeds with probability 2^-d."""
    return float(2.0**difficulty)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@attrs.frozen
class MiningProgress:
    """
    Where a search for a stamp stands.  Mining is a lottery: ``fraction`` is
    the share of the *expected* number of stamps tried so far (it may pass
    100%), and ``remaining`` the expected time to reach that number at the
    current rate (``None`` before a rate is known or once it is passed).
    """

    difficulty: float
    attempts: int
    elapsed: float

    @property
    def expected(self) -> float:
        return expected_attempts(self.difficulty)

    @property
    def rate(self) -> float:
        return self.attempts / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def fraction(self) -> float:
        return self.attempts / self.expected

    @property
    def remaining(self) -> float | None:
        if self.rate <= 0 or self.attempts >= self.expected:
            return None
        return (self.expected - self.attempts) / self.rate

    @property
    def expected_total(self) -> float | None:
        """Expected duration of the whole search at the current rate."""
        return self.expected / self.rate if self.rate > 0 else None

    def describe(self) -> str:
        """``42% of 67.1 M expected stamps, 3.20 M/s, 0:09 elapsed, about 0:12 left``."""
        text = (
            f"{self.fraction:.0%} of {self.expected / 1e6:,.1f} M expected stamps, "
            f"{self.rate / 1e6:.2f} M/s, {_duration(self.elapsed)} elapsed"
        )
        remaining = self.remaining
        if remaining is not None:
            return f"{text}, about {_duration(remaining)} left"
        if self.rate > 0:
            return f"{text}, any moment now (mining is a lottery)"
        return text


def mine_stamp(
    public_key: bytes,
    difficulty: float,
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 0.5,
    cancel: threading.Event | None = None,
    backend: CboxModule | None = None,
    batch: int = MINING_BATCH,
) -> bytes:
    """
    Find a stamp that gives ``public_key`` the proof of work ``difficulty``.

    ``workers`` threads (one per core by default) search from independent
    random starting points; the compiled loop releases the GIL, so they run
    in parallel.  ``progress(attempts, elapsed_seconds)`` is called from this
    thread about every ``progress_interval`` seconds.  Setting ``cancel``
    stops the search with :class:`IdentityGenerationCancelled`.
    """
    module = backend or _backend.cbox
    target = PowTarget.of_difficulty(difficulty).le_bytes
    workers = max(1, workers or os.cpu_count() or 1)
    stop = threading.Event()
    found: list[bytes] = []
    counts = [0] * workers
    failures: list[BaseException] = []

    def search(index: int) -> None:
        stamp = bytearray(os.urandom(24))
        try:
            while not stop.is_set():
                if cancel is not None and cancel.is_set():
                    stop.set()  # wake the waiting thread at once
                    return
                tried = module.mine(public_key, stamp, target, batch)
                counts[index] += tried
                if tried < batch or module.check_pow(public_key, bytes(stamp), target):
                    found.append(bytes(stamp))
                    stop.set()
                    return
        except BaseException as exc:  # pragma: no cover - backend failure
            failures.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=search, args=(i,), name=f"pow-miner-{i}", daemon=True)
        for i in range(workers)
    ]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while not stop.wait(progress_interval):
            if cancel is not None and cancel.is_set():
                break
            if progress is not None:
                progress(sum(counts), time.monotonic() - start)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    if not found:
        raise IdentityGenerationCancelled("identity generation cancelled")
    if progress is not None:
        progress(sum(counts), time.monotonic() - start)
    return found[0]


def generate_identity(
    difficulty: float = DEFAULT_EXPECTED_POW,
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    backend: CboxModule | None = None,
) -> Identity:
    """A fresh key pair and a stamp reaching ``difficulty`` (blocking)."""
    secret = PrivateKey.generate()
    public_key = bytes(secret.public_key)
    stamp = mine_stamp(
        public_key, difficulty, workers=workers, progress=progress, cancel=cancel, backend=backend
    )
    return Identity(PeerId.of_public_key(public_key), public_key, bytes(secret), stamp)


def generate_identity_in_thread(
    reactor: IReactorThreads,
    difficulty: float = DEFAULT_EXPECTED_POW,
    *,
    workers: int | None = None,
    progress: Callable[[MiningProgress], object] | None = None,
) -> Deferred[Identity]:
    """
    Mine an identity off the reactor thread.  Cancelling the returned
    ``Deferred`` stops the miners.  ``progress`` is called in the reactor
    thread about every half second.
    """
    cancel = threading.Event()

    def report(attempts: int, elapsed: float) -> None:  # in the mining thread
        if progress is not None:
            reactor.callFromThread(progress, MiningProgress(difficulty, attempts, elapsed))

    result = deferToThreadPool(
        reactor,
        reactor.getThreadPool(),
        generate_identity,
        difficulty,
        workers=workers,
        cancel=cancel,
        progress=report if progress is not None else None,
    )
    outer: Deferred[Identity] = Deferred(lambda _: cancel.set())

    def relay(value: Identity | Failure) -> None:
        if outer.called:  # cancelled: the miners stopped, drop their outcome
            return
        if isinstance(value, Failure):
            outer.errback(value)
        else:
            outer.callback(value)

    result.addBoth(relay)
    return outer
