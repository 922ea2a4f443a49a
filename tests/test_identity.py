# -*- test-case-name: tests.test_identity -*-
"""
Tests for :mod:`txtezosp2p.identity`: the ``identity.json`` format and its
checks (wire.md §1.3), proof-of-work checks of an identity (§1.4), and
identity mining with progress and cancellation, on both crypto backends.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import IReactorThreads
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests import helpers
from tests.helpers import IDENTITY_A, IDENTITY_B
from txtezosp2p import identity
from txtezosp2p.identity import (
    IDENTITY_FILE_NAME,
    MAX_IDENTITY_FILE_SIZE,
    Identity,
    IdentityFile,
    generate_identity,
    generate_identity_in_thread,
    mine_stamp,
)
from txtezosp2p.interfaces import IIdentityStore
from txtezosp2p.wire.crypto import check_proof_of_work, public_key_of_secret
from txtezosp2p.wire.errors import (
    ExistentIdentityFile,
    IdentityError,
    IdentityFileError,
    IdentityGenerationCancelled,
    IdentityKeysMismatch,
    IdentityMismatch,
)
from txtezosp2p.wire.ids import PeerId

if TYPE_CHECKING:
    from txtezosp2p._backend import CboxModule

A_JSON = {
    "peer_id": "idrRoknJh9zwEePNswF3MPGFzmKaVp",
    "public_key": "5fd7ba1d15650abc9a510c37a8bee566b708fe6577f0d832b903e8f13d71c94a",
    "secret_key": "213d61d6e41b443bec6bf0d00f17f59dfb4bdca409c9c03887cc5196be12502e",
    "proof_of_work_stamp": "4b1354dcfc087e52c8fb510317b9464c297b8a55b79bfc95",
}
B_JSON = {
    "peer_id": "idt6jzf5Sj4MVXTzxtwXUmJpsHR1bf",
    "public_key": "6e699289a794e629a13335c6fb7cfe6ee143c29609b020a49b5a575593824459",
    "secret_key": "1053658cc2676b1aa59558b4b693bb77bbce6cbbcb6f2129ed703b056515bd17",
    "proof_of_work_stamp": "657ef08d3a806354c1a310b64b86a13a79f76302d249995f",
}
FIELD_ORDER = ["peer_id", "public_key", "secret_key", "proof_of_work_stamp"]

#: How Octez writes the file (wire.md §1.3).
OCTEZ_TEXT = """{ "peer_id": "idrRoknJh9zwEePNswF3MPGFzmKaVp",
  "public_key":
    "5fd7ba1d15650abc9a510c37a8bee566b708fe6577f0d832b903e8f13d71c94a",
  "secret_key":
    "213d61d6e41b443bec6bf0d00f17f59dfb4bdca409c9c03887cc5196be12502e",
  "proof_of_work_stamp": "4b1354dcfc087e52c8fb510317b9464c297b8a55b79bfc95" }
"""


def with_fields(base: dict[str, str], **fields: Any) -> dict[str, Any]:
    """A copy of ``base`` with ``fields`` replaced (``None`` removes a field)."""
    value: dict[str, Any] = dict(base)
    for name, field in fields.items():
        if field is None:
            del value[name]
        else:
            value[name] = field
    return value


class IdentityJsonTests(SynchronousTestCase):
    """``Identity.from_json`` / ``to_json`` and Octez's read checks."""

    def test_fixtures(self) -> None:
        for text, fixture in ((A_JSON, IDENTITY_A), (B_JSON, IDENTITY_B)):
            parsed = Identity.from_json(text)
            self.assertEqual(parsed, fixture)
            self.assertEqual(str(parsed.peer_id), text["peer_id"])
            self.assertEqual(parsed.public_key.hex(), text["public_key"])
            self.assertEqual(parsed.secret_key.hex(), text["secret_key"])
            self.assertEqual(parsed.proof_of_work_stamp.hex(), text["proof_of_work_stamp"])

    def test_peer_id_is_hash(self) -> None:
        """The peer id is Blake2b-128 of the public key (wire.md §1.2, A.2)."""
        self.assertEqual(IDENTITY_A.peer_id.raw.hex(), "47f5c302e9ed3c9a73279fe9f4ad99b6")
        self.assertEqual(IDENTITY_A.peer_id, PeerId.of_public_key(IDENTITY_A.public_key))

    def test_to_json(self) -> None:
        """Octez's field names, order and lowercase hex."""
        self.assertEqual(IDENTITY_A.to_json(), A_JSON)
        self.assertEqual(list(IDENTITY_A.to_json()), FIELD_ORDER)
        self.assertEqual(Identity.from_json(IDENTITY_B.to_json()), IDENTITY_B)

    def test_public_json(self) -> None:
        public = IDENTITY_A.public_json()
        self.assertNotIn("secret_key", public)
        self.assertNotIn(A_JSON["secret_key"], json.dumps(public))
        self.assertEqual(public["peer_id"], A_JSON["peer_id"])

    def test_peer_id_optional(self) -> None:
        """A missing ``peer_id`` is recomputed from the public key."""
        self.assertEqual(Identity.from_json(with_fields(A_JSON, peer_id=None)), IDENTITY_A)

    def test_peer_id_mismatch(self) -> None:
        value = with_fields(A_JSON, peer_id=B_JSON["peer_id"])
        self.assertRaises(IdentityMismatch, Identity.from_json, value)

    def test_peer_id_not_a_peer_id(self) -> None:
        bad_values: tuple[Any, ...] = (
            "",
            "idrRoknJh9zwEePNswF3MPGFzmKaVq",
            "base58 0OIl",
            12,
            [],
            {},
        )
        for bad in bad_values:
            value = with_fields(A_JSON, peer_id=bad)
            self.assertRaises(IdentityFileError, Identity.from_json, value)

    def test_keys_mismatch(self) -> None:
        """A secret key that does not give the public key."""
        value = with_fields(A_JSON, secret_key=B_JSON["secret_key"])
        self.assertRaises(IdentityKeysMismatch, Identity.from_json, value)
        value = with_fields(A_JSON, peer_id=None, secret_key=B_JSON["secret_key"])
        self.assertRaises(IdentityKeysMismatch, Identity.from_json, value)

    def test_check_order(self) -> None:
        """The peer id is checked before the key pair, as in Octez."""
        value = with_fields(B_JSON, peer_id=A_JSON["peer_id"], secret_key=A_JSON["secret_key"])
        self.assertRaises(IdentityMismatch, Identity.from_json, value)

    def test_bad_fields(self) -> None:
        bad_values: list[tuple[str, Any]] = [
            ("public_key", "zz" * 32),
            ("public_key", A_JSON["public_key"][:-2]),
            ("public_key", A_JSON["public_key"] + "00"),
            ("public_key", A_JSON["public_key"][:-1]),
            ("public_key", None),
            ("public_key", 5),
            ("secret_key", "g" + A_JSON["secret_key"][1:]),
            ("secret_key", A_JSON["secret_key"][:62]),
            ("secret_key", None),
            ("proof_of_work_stamp", A_JSON["proof_of_work_stamp"][:46]),
            ("proof_of_work_stamp", A_JSON["proof_of_work_stamp"] + "00"),
            ("proof_of_work_stamp", "xy" * 24),
            ("proof_of_work_stamp", None),
            ("proof_of_work_stamp", [1, 2]),
        ]
        for name, bad in bad_values:
            value = with_fields(A_JSON, **{name: bad})
            error = self.assertRaises(IdentityFileError, Identity.from_json, value)
            self.assertIn(name, str(error))

    def test_not_an_object(self) -> None:
        for bad in (None, [], [A_JSON], "idrRoknJh9zwEePNswF3MPGFzmKaVp", 3, True):
            self.assertRaises(IdentityFileError, Identity.from_json, bad)

    def test_errors_are_identity_errors(self) -> None:
        for error in (IdentityFileError, IdentityMismatch, IdentityKeysMismatch):
            self.assertTrue(issubclass(error, IdentityError))

    def test_from_keys(self) -> None:
        self.assertEqual(
            Identity.from_keys(IDENTITY_A.secret_key, IDENTITY_A.proof_of_work_stamp), IDENTITY_A
        )

    def test_check(self) -> None:
        """Fixture A reaches exactly 26, fixture B 36."""
        self.assertTrue(IDENTITY_A.check(26))
        self.assertTrue(IDENTITY_A.check(24.5))
        self.assertFalse(IDENTITY_A.check(27))
        self.assertTrue(IDENTITY_B.check(36))
        self.assertFalse(IDENTITY_B.check(37))

    def test_repr_hides_secret(self) -> None:
        for text in (repr(IDENTITY_A), str(IDENTITY_A)):
            self.assertIn(A_JSON["peer_id"], text)
            self.assertNotIn(A_JSON["secret_key"], text)
            self.assertNotIn(repr(IDENTITY_A.secret_key), text)
            self.assertNotIn(IDENTITY_A.secret_key.hex()[:16], text)


class IdentityFileTests(SynchronousTestCase):
    """``identity.json`` on disk."""

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.store = IdentityFile.in_directory(self.directory)
        self.path = os.path.join(self.directory, IDENTITY_FILE_NAME)

    def write(self, data: bytes) -> None:
        with open(self.path, "wb") as handle:
            handle.write(data)

    def test_stale_temp_files(self) -> None:
        """What a killed save left is removed; the identity stays."""
        self.store.save(IDENTITY_A)
        leftover = f"{self.path}.{os.getpid()}.abcd_123.tmp"
        with open(leftover, "wb") as handle:
            handle.write(b"{")
        self.assertEqual(self.store.remove_stale_temp_files(), [leftover])
        self.assertEqual(os.listdir(self.directory), [IDENTITY_FILE_NAME])
        self.assertEqual(self.store.load(), IDENTITY_A)

    def test_interface(self) -> None:
        self.assertTrue(verifyObject(IIdentityStore, self.store))

    def test_path(self) -> None:
        self.assertEqual(IDENTITY_FILE_NAME, "identity.json")
        self.assertEqual(self.store.path, self.path)
        self.assertFalse(self.store.exists())

    def test_save_and_load(self) -> None:
        self.store.save(IDENTITY_A)
        self.assertTrue(self.store.exists())
        self.assertEqual(self.store.load(), IDENTITY_A)
        self.assertEqual(IdentityFile(self.path).load(), IDENTITY_A)

    def test_saved_format(self) -> None:
        """Octez's JSON object, fields in Octez's order, readable only by the owner."""
        self.store.save(IDENTITY_B)
        with open(self.path, "rb") as handle:
            text = handle.read().decode("ascii")
        pairs = json.loads(text, object_pairs_hook=list)
        self.assertEqual(pairs, list(B_JSON.items()))
        self.assertEqual([name for name, _ in pairs], FIELD_ORDER)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_mode_ignores_umask(self) -> None:
        old = os.umask(0o000)
        self.addCleanup(os.umask, old)
        self.store.save(IDENTITY_A)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_no_overwrite(self) -> None:
        """``save`` refuses an existing file (Octez ``Existent_identity_file``)."""
        self.store.save(IDENTITY_A)
        self.assertRaises(ExistentIdentityFile, self.store.save, IDENTITY_B)
        self.assertEqual(self.store.load(), IDENTITY_A)

    def test_no_overwrite_of_other_file(self) -> None:
        self.write(b"not an identity")
        self.assertRaises(ExistentIdentityFile, self.store.save, IDENTITY_A)
        with open(self.path, "rb") as handle:
            self.assertEqual(handle.read(), b"not an identity")

    def test_overwrite(self) -> None:
        self.store.save(IDENTITY_A)
        self.store.save(IDENTITY_B, overwrite=True)
        self.assertEqual(self.store.load(), IDENTITY_B)
        self.assertEqual(os.listdir(self.directory), [IDENTITY_FILE_NAME])
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_save_creates_directory(self) -> None:
        store = IdentityFile.in_directory(os.path.join(self.directory, "a", "b"))
        store.save(IDENTITY_A)
        self.assertEqual(store.load(), IDENTITY_A)

    def test_save_wrong_type(self) -> None:
        self.assertRaises(TypeError, self.store.save, A_JSON)
        self.assertFalse(self.store.exists())

    def test_load_octez_file(self) -> None:
        """The pretty-printed file Octez writes (wire.md §1.3)."""
        self.write(OCTEZ_TEXT.encode("ascii"))
        self.assertEqual(self.store.load(), IDENTITY_A)

    def test_load_without_peer_id(self) -> None:
        self.write(json.dumps(with_fields(B_JSON, peer_id=None)).encode("ascii"))
        self.assertEqual(self.store.load(), IDENTITY_B)

    def test_load_checks(self) -> None:
        """The ``from_json`` checks apply to files too."""
        self.write(json.dumps(with_fields(A_JSON, peer_id=B_JSON["peer_id"])).encode("ascii"))
        self.assertRaises(IdentityMismatch, self.store.load)
        self.write(json.dumps(with_fields(A_JSON, secret_key=B_JSON["secret_key"])).encode("ascii"))
        self.assertRaises(IdentityKeysMismatch, self.store.load)

    def test_load_missing(self) -> None:
        self.assertRaises(IdentityFileError, self.store.load)

    def test_load_directory(self) -> None:
        os.makedirs(self.path)
        self.assertRaises(IdentityFileError, self.store.load)

    def test_load_invalid_json(self) -> None:
        for data in (b"", b"{", b'{"peer_id": }', OCTEZ_TEXT.encode()[:-3], b"\x80\x81", b"[]"):
            self.write(data)
            self.assertRaises(IdentityFileError, self.store.load)

    def test_load_too_large(self) -> None:
        """A file over the size limit is refused, even when it is valid JSON."""
        text = json.dumps(A_JSON).encode("ascii")
        self.write(text + b" " * (MAX_IDENTITY_FILE_SIZE + 1 - len(text)))
        error = self.assertRaises(IdentityFileError, self.store.load)
        self.assertIn("too large", str(error))

    def test_load_at_size_limit(self) -> None:
        text = json.dumps(A_JSON).encode("ascii")
        self.write(text + b" " * (MAX_IDENTITY_FILE_SIZE - len(text)))
        self.assertEqual(self.store.load(), IDENTITY_A)


class Progress:
    """A progress callback that records its calls and may set a cancel event."""

    def __init__(self, cancel: threading.Event | None = None) -> None:
        self.calls: list[tuple[int, float]] = []
        self.cancel = cancel

    def __call__(self, tried: int, elapsed: float) -> None:
        self.calls.append((tried, elapsed))
        if self.cancel is not None:
            self.cancel.set()


class MiningTests(SynchronousTestCase):
    """``mine_stamp`` and ``generate_identity`` on every backend."""

    def backends(self) -> list[tuple[str, CboxModule]]:
        return helpers.backends()

    def test_mine_stamp(self) -> None:
        public_key = public_key_of_secret(os.urandom(32))
        for name, module in self.backends():
            for workers in (1, 2):
                progress = Progress()
                stamp = mine_stamp(
                    public_key,
                    8,
                    workers=workers,
                    backend=module,
                    progress=progress,
                )
                where = f"{name} backend, {workers} workers"
                self.assertEqual(len(stamp), 24, where)
                self.assertTrue(check_proof_of_work(public_key, stamp, 8), where)
                self.assertTrue(progress.calls, where)
                tried, elapsed = progress.calls[-1]
                self.assertGreater(tried, 0, where)
                self.assertGreaterEqual(elapsed, 0, where)

    def test_mine_stamp_small_batch(self) -> None:
        """A batch smaller than the expected work still finds a stamp."""
        public_key = IDENTITY_A.public_key
        for name, module in self.backends():
            stamp = mine_stamp(public_key, 6.5, workers=2, backend=module, batch=7)
            self.assertTrue(check_proof_of_work(public_key, stamp, 6.5), name)

    def test_mine_stamp_batch_of_one(self) -> None:
        for name, module in self.backends():
            stamp = mine_stamp(IDENTITY_B.public_key, 3, workers=1, backend=module, batch=1)
            self.assertTrue(check_proof_of_work(IDENTITY_B.public_key, stamp, 3), name)

    def test_generate_identity(self) -> None:
        for name, module in self.backends():
            for workers in (1, 2):
                progress = Progress()
                generated = generate_identity(
                    8,
                    workers=workers,
                    backend=module,
                    progress=progress,
                )
                where = f"{name} backend, {workers} workers"
                self.assertTrue(generated.check(8), where)
                self.assertTrue(progress.calls, where)
                self.assertEqual(public_key_of_secret(generated.secret_key), generated.public_key)
                self.assertEqual(generated.peer_id, PeerId.of_public_key(generated.public_key))
                self.assertEqual(Identity.from_json(generated.to_json()), generated)
                self.assertNotEqual(generated.secret_key, IDENTITY_A.secret_key)

    def test_cancel_before(self) -> None:
        """A cancel event set beforehand stops the search at once."""
        cancel = threading.Event()
        cancel.set()
        for name, module in self.backends():
            for workers in (1, 2):
                started = time.monotonic()
                self.assertRaises(
                    IdentityGenerationCancelled,
                    mine_stamp,
                    IDENTITY_A.public_key,
                    64,
                    workers=workers,
                    cancel=cancel,
                    backend=module,
                    batch=256,
                    progress_interval=0.01,
                )
                self.assertLess(time.monotonic() - started, 10, name)

    def test_cancel_while_mining(self) -> None:
        """Setting the event from the progress callback stops an endless search."""
        for name, module in self.backends():
            for workers in (1, 2):
                cancel = threading.Event()
                progress = Progress(cancel)
                self.assertRaises(
                    IdentityGenerationCancelled,
                    mine_stamp,
                    IDENTITY_A.public_key,
                    64,
                    workers=workers,
                    progress=progress,
                    progress_interval=0.01,
                    cancel=cancel,
                    backend=module,
                    batch=256,
                )
                self.assertTrue(progress.calls, name)
                self.assertTrue(cancel.is_set(), name)

    def test_cancel_generate_identity(self) -> None:
        cancel = threading.Event()
        cancel.set()
        self.assertRaises(
            IdentityGenerationCancelled, generate_identity, 64, workers=1, cancel=cancel
        )

    def test_backend_failure(self) -> None:
        """An exception in a miner thread comes out of ``mine_stamp``."""

        class Broken(Exception):
            pass

        class BrokenBackend:
            def mine(self, *args: object) -> int:
                raise Broken()

            def check_pow(self, *args: object) -> bool:
                raise Broken()

        backend = cast("CboxModule", BrokenBackend())
        self.assertRaises(Broken, mine_stamp, IDENTITY_A.public_key, 8, workers=2, backend=backend)

    def test_invalid_difficulty(self) -> None:
        self.assertRaises(ValueError, mine_stamp, IDENTITY_A.public_key, 257, workers=1)

    def test_default_backend(self) -> None:
        stamp = mine_stamp(IDENTITY_B.public_key, 4, workers=1)
        self.assertTrue(check_proof_of_work(IDENTITY_B.public_key, stamp, 4))


class FakeThreadPool:
    """Records ``callInThreadWithCallback`` calls instead of running them."""

    def __init__(self) -> None:
        self.calls: list[
            tuple[
                Callable[[bool, object], None], Callable[..., Any], tuple[Any, ...], dict[str, Any]
            ]
        ] = []

    def callInThreadWithCallback(
        self,
        on_result: Callable[[bool, object], None],
        function: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.calls.append((on_result, function, args, kwargs))


class FakeReactor:
    """Just enough of ``IReactorThreads`` for ``deferToThreadPool``."""

    def __init__(self) -> None:
        self.pool = FakeThreadPool()

    def getThreadPool(self) -> FakeThreadPool:
        return self.pool

    def callFromThread(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        function(*args, **kwargs)


class GenerateInThreadTests(SynchronousTestCase):
    """``generate_identity_in_thread`` with a fake reactor and thread pool."""

    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.result = generate_identity_in_thread(
            cast(IReactorThreads, self.reactor), 8.0, workers=1
        )
        self.assertEqual(len(self.reactor.pool.calls), 1)
        self.on_result, self.function, self.args, self.kwargs = self.reactor.pool.calls[0]

    def test_call(self) -> None:
        """``generate_identity`` runs in the pool with a fresh cancel event."""
        self.assertIs(self.function, identity.generate_identity)
        self.assertEqual(self.args, (8.0,))
        self.assertEqual(self.kwargs["workers"], 1)
        self.assertIsInstance(self.kwargs["cancel"], threading.Event)
        self.assertFalse(self.kwargs["cancel"].is_set())
        self.assertNoResult(self.result)

    def test_success(self) -> None:
        """Running the pooled call (here, synchronously) fires the Deferred."""
        generated = self.function(*self.args, **self.kwargs)
        self.on_result(True, generated)
        self.assertIs(self.successResultOf(self.result), generated)
        self.assertTrue(generated.check(8))

    def test_failure(self) -> None:
        self.on_result(False, Failure(IdentityGenerationCancelled("stopped")))
        self.failureResultOf(self.result, IdentityGenerationCancelled)

    def test_cancel(self) -> None:
        """Cancelling sets the miners' event; their late failure is dropped."""
        self.result.cancel()
        self.failureResultOf(self.result, CancelledError)
        self.assertTrue(self.kwargs["cancel"].is_set())
        self.on_result(False, Failure(IdentityGenerationCancelled("cancelled")))
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_progress(self) -> None:
        """Progress reaches the caller through the reactor, as a MiningProgress."""
        seen: list[identity.MiningProgress] = []
        result = generate_identity_in_thread(
            cast(IReactorThreads, self.reactor), 8.0, workers=1, progress=seen.append
        )
        on_result, function, args, kwargs = self.reactor.pool.calls[-1]
        generated = function(*args, **kwargs)  # reports at least once, at the end
        on_result(True, generated)
        self.successResultOf(result)
        self.assertTrue(seen)
        self.assertEqual(seen[-1].difficulty, 8.0)
        self.assertGreater(seen[-1].attempts, 0)

    def test_cancel_then_success(self) -> None:
        """A stamp found just as the caller cancelled is dropped too."""
        self.result.cancel()
        self.on_result(True, IDENTITY_A)
        self.failureResultOf(self.result, CancelledError)


class MiningProgressTests(SynchronousTestCase):
    def test_progress(self) -> None:
        from txtezosp2p.identity import MiningProgress, expected_attempts

        self.assertEqual(expected_attempts(26), 2.0**26)
        state = MiningProgress(26.0, 2**24, 8.0)  # a quarter, at 2**21 stamps per second
        self.assertEqual(state.fraction, 0.25)
        self.assertEqual(state.rate, 2**21)
        self.assertEqual(state.remaining, 24.0)
        self.assertEqual(state.expected_total, 32.0)
        self.assertEqual(
            state.describe(),
            "25% of 67.1 M expected stamps, 2.10 M/s, 0:08 elapsed, about 0:24 left",
        )
        self.assertIsNone(MiningProgress(26.0, 0, 0.0).remaining)
        self.assertIn("0:00 elapsed", MiningProgress(26.0, 0, 0.0).describe())
        long = MiningProgress(36.0, 2**30, 3600.0)
        self.assertIn("2% of 68,719.5 M expected stamps", long.describe())
        self.assertIn("1:00:00 elapsed, about 63:00:00 left", long.describe())
