# -*- test-case-name: tests.test_crypto -*-
"""
Tests for :mod:`txtezosp2p.wire.crypto` and the two crypto backends (the Cython
module ``txtezosp2p._cbox`` and its pure twin ``txtezosp2p._cbox_py``).

Everything that touches a backend (chunk sealing and opening, nonce
increment, proof-of-work checking and mining, the self-test) is written once
in a mixin and run once per entry of :func:`tests.helpers.backends`; the
generated classes are named ``<Topic>PythonTests`` and ``<Topic>CythonTests``.
Functions that never reach a backend (nonce derivation, the channel key, the
target formula) are tested once.

The fixed vectors are wire.md Appendix A (TezEdge's vectors, A.1, and the
end-to-end example, A.2).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_box_easy_afternm
from twisted.trial.unittest import SynchronousTestCase

from tests import helpers
from tests.helpers import IDENTITY_A, IDENTITY_B
from txtezosp2p import _backend
from txtezosp2p.wire import crypto
from txtezosp2p.wire.crypto import (
    MAX_CHUNK_PLAINTEXT,
    ChunkCipher,
    PowTarget,
    check_binary_chunks_size,
    check_proof_of_work,
    generate_nonces,
    increment_nonce,
    make_pow_target,
    pow_level,
    precompute,
)
from txtezosp2p.wire.encoding import ConnectionMessage, NetworkVersion
from txtezosp2p.wire.errors import (
    DecipherError,
    InvalidChunksSize,
    InvalidIncomingCiphertextSize,
    P2PError,
)

if TYPE_CHECKING:
    from txtezosp2p._backend import CboxModule

    _MixinBase = SynchronousTestCase
else:
    _MixinBase = object

h = bytes.fromhex

# -- wire.md Appendix A.1 (TezEdge) --------------------------------------------------------

A1_SENT = h(
    "00874d1b98317bd6efad8352a7144c9eb0b218c9130e0a875973908ddc894b764ffc0d7f176cf800b978af9e91"
    "9bdc35122585168475096d0ebcaca1f2a1172412b91b363ff484d1c64c03417e0e755e696c386a0000002d5341"
    "4e44424f5845445f54455a4f535f414c5048414e45545f323031382d31312d33305431353a33303a35365a0000"
    "0000"
)
A1_RECV = h(
    "00874d1ab3845960b32b039fef38ca5c9f8f867df1d522f27a83e07d9dfbe3b296a6c076412d98b369ab015d57"
    "247e5380d708b9edfcca0ca2c865346ef9c3d7ed00182cf4f613a6303c9b2a28cda8ff93687bd20000002d5341"
    "4e44424f5845445f54455a4f535f414c5048414e45545f323031382d31312d33305431353a33303a35365a0000"
    "0000"
)
A1_OUTGOING_LOCAL = h("8dde158c55cff52f4be9352787d333e616a67853640d72c5")
A1_OUTGOING_REMOTE = h("e67481a23cf9b404626a12bd405066e161b32dc53f469153")
A1_INCOMING_LOCAL = h("ff0451d94af9f75a46d74a2a9f685cff20222a15829f121d")
A1_INCOMING_REMOTE = h("8a09a2c43a61aa6eccee084aa66da9bc94b441b17615be58")
A1_SK = h("a18dc11cb480ebd31081e1541df8bd70c57da0fa419b5036242f8619d605e75a")
A1_PK = h("96678b88756dd6cfd6c129980247b70a6e44da77823c3672a2ec0eae870d8646")
A1_KEY = h("5228751a6f5a6494e38e1042f578e3a64ae3462b7899356f49e50be846c9609c")
A1_BOX = h(
    "45d82d5c4067f5c32748596c1bbc93a9f87b5b1f2058ddd82b6f081ca484b672395c7473ab897c64c01c33878a"
    "c1ccb6919a75c9938d8bcf0e7917ddac13a787cfb5c9a5aea50d24502cf86b5c9b000358c039334ec077afe989"
    "36feec0dabfff35f14cafd2cd3173bbd56a7c6e5bf6f5f57c92b59b129918a5895e883e7d999b191aad078c4a5"
    "b164144c1beaed58b49ba9be094abf3a3bd9"
)
TEZEDGE_POW_PK = h("d8246d13d0270cbfff4046b6d94b05ab19920bc5ad9fb77f3e945c40b340e874")
TEZEDGE_POW_STAMP = h("d1d0ebd55784bc92852d913dbf0fb5152d505b567d930fb2")

# -- wire.md Appendix A.2 (end-to-end example, A dials B) ---------------------------------

A2_KEY = h("6b729cb4429a5b44ffbe91d6e1c2341ab76125ed6cac9f4de82c36d0b4ec1673")
A2_A_SEND = h("adc2a09850c79cf529235a23dbe42cedc1e7d5653cf2fbf9")
A2_B_SEND = h("a700ac4e0b069173fcead2187c3a99b3c378a61c3b720123")
A2_A_CONN = h(
    "006726045fd7ba1d15650abc9a510c37a8bee566b708fe6577f0d832b903e8f13d71c94a"
    "4b1354dcfc087e52c8fb510317b9464c297b8a55b79bfc95111111111111111111111111111111111111111111111111"
    "0000000d54455a4f535f4d41494e4e455400020001"
)
A2_B_CONN = h(
    "006726056e699289a794e629a13335c6fb7cfe6ee143c29609b020a49b5a575593824459"
    "657ef08d3a806354c1a310b64b86a13a79f76302d249995f222222222222222222222222222222222222222222222222"
    "0000000d54455a4f535f4d41494e4e455400020001"
)
A2_A_METADATA = h("001274e5663a789d104321278f41e57420371ac9")
A2_B_METADATA = h("0012d8418dbebbe0ec70a7e7e7e90d1adac5f501")
A2_A_ACK = h("0011a50fe6a6a48e5b9b0b98a0762230fd58e2")
A2_A_BOOTSTRAP = h("00161b38163eb93aa60d4f1590bc076339ffe24c26a5b42d")
MAINNET = NetworkVersion("TEZOS_MAINNET", 2, 1)

NONCE_MASK = (1 << 192) - 1
KEY = bytes(range(32))
NONCE = h("000102030405060708090a0b0c0d0e0f1011121314151617")


def mixin_settings(**options: Any) -> settings:
    """
    Settings for properties in the per-backend mixins: the same ``@given``
    function runs with one ``self`` type per backend, which is intended.
    """
    return settings(suppress_health_check=[HealthCheck.differing_executors], **options)


keys = st.binary(min_size=32, max_size=32)
nonces = st.binary(min_size=24, max_size=24)
chunk_sizes = st.one_of(st.integers(1, 64), st.integers(1, MAX_CHUNK_PLAINTEXT))


def difficulties(top: float) -> st.SearchStrategy[float]:
    """
    Difficulties in [0, top], leaving out (0, 2**-40), where the target
    overflows 256 bits (that range has its own ``test_tiny_fraction`` tests).
    """
    return st.floats(0, top).filter(lambda f: f == 0 or f >= 2.0**-40)


def nonce_plus(nonce: bytes, n: int) -> bytes:
    """``nonce + n`` as a 24-byte big-endian counter, modulo 2**192."""
    return ((int.from_bytes(nonce, "big") + n) & NONCE_MASK).to_bytes(24, "big")


def pow_value(public_key: bytes, stamp: bytes) -> int:
    """wire.md §1.4: Blake2b-256(pk || stamp) read as a little-endian integer."""
    digest = hashlib.blake2b(public_key + stamp, digest_size=32).digest()
    return int.from_bytes(digest, "little")


def frame_ends(stream: bytes) -> list[int]:
    """The offsets just after each frame of a well-formed sealed stream."""
    ends = []
    pos = 0
    while pos < len(stream):
        pos += 2 + int.from_bytes(stream[pos : pos + 2], "big")
        ends.append(pos)
    if pos != len(stream):
        raise AssertionError("truncated stream")
    return ends


def expected_frames(key: bytes, nonce: bytes, data: bytes, chunk_size: int) -> bytes:
    """wire.md §4 built from ``nacl.bindings``: ``len || MAC || ct`` per piece."""
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]
    out = []
    for index, piece in enumerate(pieces):
        box = crypto_box_easy_afternm(piece, nonce_plus(nonce, index), key)
        out.append(len(box).to_bytes(2, "big") + box)
    return b"".join(out)


def per_backend(mixin: type, topic: str) -> dict[str, type[SynchronousTestCase]]:
    """
    One ``SynchronousTestCase`` subclass of ``mixin`` per backend, named
    ``<topic><Backend>Tests``; a missing compiled backend gives a skipped class.
    """
    found = dict(helpers.backends())
    classes: dict[str, type[SynchronousTestCase]] = {}
    for name in dict.fromkeys([*found, "python", "cython"]):
        class_name = f"{topic}{name.capitalize()}Tests"
        namespace: dict[str, Any] = {
            "__module__": __name__,
            "__qualname__": class_name,
            "__doc__": f"{mixin.__doc__.strip() if mixin.__doc__ else topic} ({name} backend)",
            "backend": found.get(name, _backend.cbox_py),
            "backend_name": name,
        }
        if name not in found:
            namespace["skip"] = "extension not built"
        classes[class_name] = type(class_name, (mixin, SynchronousTestCase), namespace)
    return classes


# -- Backend-independent functions ---------------------------------------------------------


class NonceDerivationTests(SynchronousTestCase):
    """``generate_nonces`` and ``precompute`` (wire.md §3.1, §3.2); no backend involved."""

    def test_outgoing_vector(self) -> None:
        """A.1: the dialler's (local, remote) nonces."""
        self.assertEqual(
            generate_nonces(incoming=False, sent_msg=A1_SENT, recv_msg=A1_RECV),
            (A1_OUTGOING_LOCAL, A1_OUTGOING_REMOTE),
        )

    def test_incoming_vector(self) -> None:
        """A.1: the acceptor's (local, remote) nonces from the same two messages."""
        self.assertEqual(
            generate_nonces(incoming=True, sent_msg=A1_SENT, recv_msg=A1_RECV),
            (A1_INCOMING_LOCAL, A1_INCOMING_REMOTE),
        )

    def test_formula(self) -> None:
        """
        The nonces are Blake2b-256(init || resp || seed)[:24] and the dialler
        sends with the ``Resp -> Init`` one (wire.md §3.2).
        """

        def derive(seed: bytes) -> bytes:
            return hashlib.blake2b(A1_SENT + A1_RECV + seed, digest_size=32).digest()[:24]

        self.assertEqual(A1_OUTGOING_LOCAL, derive(b"Resp -> Init"))
        self.assertEqual(A1_OUTGOING_REMOTE, derive(b"Init -> Resp"))

    @given(sent=st.binary(max_size=200), recv=st.binary(max_size=200))
    def test_two_ends_agree(self, sent: bytes, recv: bytes) -> None:
        """The dialler's local nonce is the acceptor's remote nonce and vice versa."""
        local, remote = generate_nonces(incoming=False, sent_msg=sent, recv_msg=recv)
        their_local, their_remote = generate_nonces(incoming=True, sent_msg=recv, recv_msg=sent)
        self.assertEqual((local, remote), (their_remote, their_local))
        self.assertEqual((len(local), len(remote)), (24, 24))

    def test_precompute_vector(self) -> None:
        """A.1: ``crypto_box_beforenm(pk, sk)``."""
        self.assertEqual(precompute(A1_SK, A1_PK), A1_KEY)

    def test_a2_channel_key(self) -> None:
        """A.2: both ends compute the same channel key."""
        self.assertEqual(precompute(IDENTITY_A.secret_key, IDENTITY_B.public_key), A2_KEY)
        self.assertEqual(precompute(IDENTITY_B.secret_key, IDENTITY_A.public_key), A2_KEY)

    def test_low_order_public_key(self) -> None:
        """A low-order public key (here the all-zero point) is refused (wire.md §3.1)."""
        self.assertRaises(ValueError, precompute, IDENTITY_A.secret_key, bytes(32))

    def test_a2_connection_messages(self) -> None:
        """A.2: the framed connection messages built with ``ConnectionMessage``."""
        self.assertEqual(a2_connection_messages(), (A2_A_CONN, A2_B_CONN))
        self.assertEqual((len(A2_A_CONN), len(A2_B_CONN)), (105, 105))

    def test_a2_nonces(self) -> None:
        """A.2: A dials B; A sends with N_r2i, B with N_i2r."""
        a_conn, b_conn = a2_connection_messages()
        self.assertEqual(
            generate_nonces(incoming=False, sent_msg=a_conn, recv_msg=b_conn),
            (A2_A_SEND, A2_B_SEND),
        )
        self.assertEqual(
            generate_nonces(incoming=True, sent_msg=b_conn, recv_msg=a_conn), (A2_B_SEND, A2_A_SEND)
        )

    def test_public_key_of_secret(self) -> None:
        """The fixtures' public keys are X25519(sk, 9) (wire.md §1.1)."""
        for identity in (IDENTITY_A, IDENTITY_B):
            self.assertEqual(crypto.public_key_of_secret(identity.secret_key), identity.public_key)


def a2_connection_messages() -> tuple[bytes, bytes]:
    """The framed connection messages of wire.md A.2 (A on 9732, B on 9733)."""
    a_conn = ConnectionMessage(
        9732, IDENTITY_A.public_key, IDENTITY_A.proof_of_work_stamp, 24 * b"\x11", MAINNET
    )
    b_conn = ConnectionMessage(
        9733, IDENTITY_B.public_key, IDENTITY_B.proof_of_work_stamp, 24 * b"\x22", MAINNET
    )
    return a_conn.frame(), b_conn.frame()


class IncrementNonceTests(SynchronousTestCase):
    """``crypto.increment_nonce``: 24-byte big-endian add-one (wire.md §3.3)."""

    def test_vector(self) -> None:
        self.assertEqual(increment_nonce(A1_OUTGOING_LOCAL), h(A1_OUTGOING_LOCAL.hex()[:-2] + "c6"))
        self.assertEqual(increment_nonce(A1_OUTGOING_LOCAL).hex()[-8:], "640d72c6")

    def test_carry(self) -> None:
        self.assertEqual(increment_nonce(bytes(21) + b"\x01\xff\xff"), bytes(21) + b"\x02\x00\x00")
        self.assertEqual(increment_nonce(b"\x00" + b"\xff" * 23), b"\x01" + bytes(23))

    def test_wrap(self) -> None:
        self.assertEqual(increment_nonce(b"\xff" * 24), bytes(24))

    @given(nonces)
    def test_matches_integers(self, nonce: bytes) -> None:
        self.assertEqual(increment_nonce(nonce), nonce_plus(nonce, 1))


class PowTargetTests(SynchronousTestCase):
    """``make_pow_target`` (wire.md §1.4)."""

    def test_whole_difficulties(self) -> None:
        self.assertEqual(make_pow_target(26), 2**230 - 1)
        self.assertEqual(make_pow_target(26.0), 2**230 - 1)
        self.assertEqual(make_pow_target(24), 2**232 - 1)
        self.assertEqual(make_pow_target(0), 2**256 - 1)
        self.assertEqual(make_pow_target(256), 0)

    @given(st.integers(0, 256))
    def test_whole_is_power_of_two_minus_one(self, difficulty: int) -> None:
        self.assertEqual(make_pow_target(difficulty), 2 ** (256 - difficulty) - 1)
        self.assertEqual(make_pow_target(float(difficulty)), 2 ** (256 - difficulty) - 1)

    def test_fractional_vector(self) -> None:
        """f = 26.5: the top 54 bits are 0x2d413cccfe779a, every lower bit is set."""
        mantissa = 0x2D413CCCFE779A
        self.assertEqual(make_pow_target(26.5), (mantissa << (202 - 26)) | ((1 << 176) - 1))

    def test_fractional_above_202(self) -> None:
        """With ``shift >= 202`` the mantissa is shifted right."""
        self.assertEqual(make_pow_target(203.5), int(2.0**53.5) >> 1)
        self.assertEqual(make_pow_target(255.5), int(2.0**53.5) >> 53)

    @given(st.floats(0, 256))
    def test_formula(self, difficulty: float) -> None:
        """The spec's formula, written out independently."""
        frac, whole = math.modf(difficulty)
        shift = int(whole)
        mantissa = (1 << 54) - 1 if frac == 0.0 else int(2.0 ** (54.0 - frac))
        if shift < 202:
            expected = (mantissa << (202 - shift)) | ((1 << (202 - shift)) - 1)
        else:
            expected = mantissa >> (shift - 202)
        self.assertEqual(make_pow_target(difficulty), expected)
        target = PowTarget.of_difficulty(difficulty)
        self.assertEqual(target.value, expected)
        # A target beyond 256 bits (see test_tiny_fraction) accepts every hash.
        self.assertEqual(target.le_bytes, min(expected, 2**256 - 1).to_bytes(32, "little"))

    @given(st.floats(0, 200))
    def test_probability(self, difficulty: float) -> None:
        """The acceptance probability ``(target + 1) / 2**256`` is about 2**-f."""
        self.assertAlmostEqual(math.log2(make_pow_target(difficulty) + 1) - 256, -difficulty, 9)

    def test_tiny_fraction(self) -> None:
        """
        A fraction so small that ``2.0 ** (54 - frac)`` rounds to 2**54 gives
        a 55-bit mantissa (the formula, like Octez's, does not clamp it); with
        a whole part of 0 the target then exceeds 2**256 - 1 and accepts every
        stamp.
        """
        for difficulty in (5e-324, 1e-20, 2.0**-49):
            self.assertEqual(make_pow_target(difficulty), 2**256 + 2**202 - 1)
            self.assertEqual(PowTarget.of_difficulty(difficulty).value, 2**256 + 2**202 - 1)
        self.assertEqual(make_pow_target(26 + 2.0**-48), 2**230 + 2**176 - 1)

    def test_out_of_range(self) -> None:
        for bad in (-1, -0.5, 256.5, 257, math.nan, math.inf, -math.inf):
            self.assertRaises(ValueError, make_pow_target, bad)
            self.assertRaises(ValueError, PowTarget.of_difficulty, bad)

    def test_pow_level(self) -> None:
        """The TezEdge vector and both fixtures have the documented levels."""
        self.assertEqual(pow_level(TEZEDGE_POW_PK, TEZEDGE_POW_STAMP), 26)
        self.assertEqual(pow_level(IDENTITY_A.public_key, IDENTITY_A.proof_of_work_stamp), 26)
        self.assertEqual(pow_level(IDENTITY_B.public_key, IDENTITY_B.proof_of_work_stamp), 36)

    def test_little_endian(self) -> None:
        """
        The zero bits are at the end of the digest (wire.md §1.4): fixture A's
        hash ends with three zero bytes.
        """
        digest = hashlib.blake2b(
            IDENTITY_A.public_key + IDENTITY_A.proof_of_work_stamp, digest_size=32
        ).digest()
        self.assertEqual(digest[-3:], bytes(3))
        self.assertEqual(digest[-4] >> 6, 0)
        self.assertNotEqual(digest[-4] >> 5, 0)


class ChunksSizeTests(SynchronousTestCase):
    """``check_binary_chunks_size`` (wire.md §4, §11)."""

    def test_valid(self) -> None:
        for size in (19, 20, 1024, 65534, 65535):
            self.assertEqual(check_binary_chunks_size(size), size - 18)

    @given(st.integers(19, 65535))
    def test_valid_range(self, size: int) -> None:
        self.assertEqual(check_binary_chunks_size(size), size - 18)

    def test_invalid(self) -> None:
        for size in (-1, 0, 18, 65536, 1 << 20):
            error = self.assertRaises(InvalidChunksSize, check_binary_chunks_size, size)
            self.assertEqual((error.value, error.minimum, error.maximum), (size, 19, 65535))


class ChunkCipherArgumentTests(SynchronousTestCase):
    """``ChunkCipher`` construction."""

    def test_bad_sizes(self) -> None:
        self.assertRaises(ValueError, ChunkCipher, bytes(31), NONCE, NONCE)
        self.assertRaises(ValueError, ChunkCipher, KEY, NONCE[:23], NONCE)
        self.assertRaises(ValueError, ChunkCipher, KEY, NONCE, NONCE + b"\x00")

    def test_default_backend(self) -> None:
        """Without ``backend`` the cipher uses the selected one."""
        cipher = ChunkCipher(KEY, NONCE, NONCE)
        self.assertEqual(cipher.seal(b"x"), expected_frames(KEY, NONCE, b"x", 1))
        self.assertEqual(cipher.local_nonce, nonce_plus(NONCE, 1))
        self.assertEqual(cipher.remote_nonce, NONCE)


class BackendModuleTests(SynchronousTestCase):
    """``txtezosp2p._backend``: selection, ``describe`` and the self-test."""

    def test_describe(self) -> None:
        description = _backend.describe()
        self.assertEqual(description["cbox"], _backend.cbox.BACKEND)
        self.assertIn(description["cbox"], ("python", "cython"))

    def test_backend_names(self) -> None:
        """Each backend reports its own name and is bound."""
        for name, module in helpers.backends():
            self.assertEqual(module.BACKEND, name)
            self.assertTrue(module.is_bound())

    def test_selection(self) -> None:
        """The compiled backend is used whenever it passes its self-test."""
        if _backend.NO_EXTENSIONS:
            self.assertIs(_backend.cbox, _backend.cbox_py)
        elif _backend.compiled_cbox() is not None:
            self.assertIs(_backend.cbox, _backend.compiled_cbox())
        else:
            self.assertIs(_backend.cbox, _backend.cbox_py)

    def _fake(self, **overrides: Callable[..., Any]) -> CboxModule:
        fake = _FakeBackend(**overrides)
        return cast("CboxModule", fake)

    def test_fake_passes(self) -> None:
        """The fake below is faithful when nothing is overridden."""
        _backend.self_test(self._fake())

    def test_wrong_seal(self) -> None:
        def seal(key: bytes, nonce: bytearray, data: bytes, size: int) -> bytes:
            sealed = bytearray(_backend.cbox_py.seal_chunks(key, nonce, data, size))
            sealed[5] ^= 1
            return bytes(sealed)

        error = self.assertRaises(RuntimeError, _backend.self_test, self._fake(seal_chunks=seal))
        self.assertIn("seal self-test failed", str(error))

    def test_seal_without_increment(self) -> None:
        """A seal that uses the right nonce but does not advance it is caught."""

        def seal(key: bytes, nonce: bytearray, data: bytes, size: int) -> bytes:
            return _backend.cbox_py.seal_chunks(key, bytearray(nonce), data, size)

        self.assertRaises(RuntimeError, _backend.self_test, self._fake(seal_chunks=seal))

    def test_wrong_open(self) -> None:
        def open_(key: bytes, nonce: bytearray, buf: bytes, offset: int, n: int) -> Any:
            plain, end, frames, status = _backend.cbox_py.open_chunks(key, nonce, buf, offset, n)
            return plain[:-1], end, frames, status

        error = self.assertRaises(RuntimeError, _backend.self_test, self._fake(open_chunks=open_))
        self.assertIn("open self-test failed", str(error))

    def test_wrong_pow(self) -> None:
        def check_pow(public_key: bytes, stamp: bytes, target: bytes) -> bool:
            return True

        error = self.assertRaises(RuntimeError, _backend.self_test, self._fake(check_pow=check_pow))
        self.assertIn("proof-of-work self-test failed", str(error))

    def test_big_endian_pow(self) -> None:
        """A check that reads the hash big-endian fails the self-test."""

        def check_pow(public_key: bytes, stamp: bytes, target: bytes) -> bool:
            digest = hashlib.blake2b(public_key + stamp, digest_size=32).digest()
            return int.from_bytes(digest, "big") <= int.from_bytes(target, "little")

        self.assertRaises(RuntimeError, _backend.self_test, self._fake(check_pow=check_pow))


class _FakeBackend:
    """A backend delegating to the pure twin, with some functions replaced."""

    __name__ = "fake_backend"
    OPEN_OK = 0
    OPEN_DECIPHER_ERROR = 1
    OPEN_INVALID_SIZE = 2
    BACKEND = "fake"

    def __init__(self, **overrides: Callable[..., Any]) -> None:
        self.seal_chunks = _backend.cbox_py.seal_chunks
        self.seal_batch = _backend.cbox_py.seal_batch
        self.open_chunks = _backend.cbox_py.open_chunks
        self.check_pow = _backend.cbox_py.check_pow
        self.increment_nonce = _backend.cbox_py.increment_nonce
        for name, function in overrides.items():
            setattr(self, name, function)


class BackendAgreementTests(SynchronousTestCase):
    """The compiled module and the pure twin give identical results."""

    def setUp(self) -> None:
        found = dict(helpers.backends())
        if "cython" not in found:
            self.skipTest("extension not built")
        self.python = found["python"]
        self.cython = found["cython"]

    @settings(max_examples=100)
    @given(key=keys, nonce=nonces, data=st.binary(max_size=3000), chunk_size=chunk_sizes)
    def test_seal(self, key: bytes, nonce: bytes, data: bytes, chunk_size: int) -> None:
        python_nonce, cython_nonce = bytearray(nonce), bytearray(nonce)
        sealed = self.python.seal_chunks(key, python_nonce, data, chunk_size)
        self.assertEqual(self.cython.seal_chunks(key, cython_nonce, data, chunk_size), sealed)
        self.assertEqual(python_nonce, cython_nonce)

    @settings(max_examples=100)
    @given(
        key=keys,
        nonce=nonces,
        data=st.binary(max_size=500),
        chunk_size=st.integers(1, 64),
        garbage=st.binary(max_size=100),
        cut=st.integers(0, 10_000),
        max_frames=st.integers(-1, 12),
    )
    def test_open(
        self,
        *,
        key: bytes,
        nonce: bytes,
        data: bytes,
        chunk_size: int,
        garbage: bytes,
        cut: int,
        max_frames: int,
    ) -> None:
        """Same result and nonce state on valid, truncated and corrupted input."""
        stream = self.python.seal_chunks(key, bytearray(nonce), data, chunk_size)
        buffer = stream[: cut % (len(stream) + 1)] + garbage
        python_nonce, cython_nonce = bytearray(nonce), bytearray(nonce)
        result = self.python.open_chunks(key, python_nonce, buffer, 0, max_frames)
        self.assertEqual(self.cython.open_chunks(key, cython_nonce, buffer, 0, max_frames), result)
        self.assertEqual(python_nonce, cython_nonce)

    @settings(max_examples=50)
    @given(
        public_key=keys,
        stamp=nonces,
        difficulty=difficulties(12),
        attempts=st.integers(0, 3000),
    )
    def test_mine(self, public_key: bytes, stamp: bytes, difficulty: float, attempts: int) -> None:
        target = PowTarget.of_difficulty(difficulty).le_bytes
        python_stamp, cython_stamp = bytearray(stamp), bytearray(stamp)
        tried = self.python.mine(public_key, python_stamp, target, attempts)
        self.assertEqual(self.cython.mine(public_key, cython_stamp, target, attempts), tried)
        self.assertEqual(python_stamp, cython_stamp)


# -- Per-backend tests ---------------------------------------------------------------------


class _BackendMixin(_MixinBase):
    backend: CboxModule
    backend_name: str

    def cipher(self, key: bytes = KEY, local: bytes = NONCE, remote: bytes = NONCE) -> ChunkCipher:
        return ChunkCipher(key, local, remote, backend=self.backend)


class VectorsMixin(_BackendMixin):
    """The sealed bytes of wire.md Appendix A"""

    def test_a1_seal(self) -> None:
        """A.1: sealing the "sent" message gives the published box, MAC first."""
        cipher = self.cipher(A1_KEY, A1_OUTGOING_LOCAL, A1_OUTGOING_REMOTE)
        frame = cipher.seal(A1_SENT)
        self.assertEqual(len(A1_BOX), 153)
        self.assertEqual(frame, h("0099") + A1_BOX)
        self.assertEqual(cipher.local_nonce, increment_nonce(A1_OUTGOING_LOCAL))
        self.assertEqual(cipher.remote_nonce, A1_OUTGOING_REMOTE)

    def test_a1_open(self) -> None:
        """A.1: the receiving end opens the box back into the message."""
        cipher = self.cipher(A1_KEY, A1_INCOMING_LOCAL, A1_OUTGOING_LOCAL)
        self.assertEqual(cipher.open(h("0099") + A1_BOX), (A1_SENT, 155, 1, None))
        self.assertEqual(cipher.remote_nonce, increment_nonce(A1_OUTGOING_LOCAL))

    def test_a1_module_functions(self) -> None:
        nonce = bytearray(A1_OUTGOING_LOCAL)
        frame = self.backend.seal_chunks(A1_KEY, nonce, A1_SENT, MAX_CHUNK_PLAINTEXT)
        self.assertEqual(frame, h("0099") + A1_BOX)
        self.assertEqual(bytes(nonce), increment_nonce(A1_OUTGOING_LOCAL))
        nonce = bytearray(A1_OUTGOING_LOCAL)
        opened = self.backend.open_chunks(A1_KEY, nonce, frame, 0, -1)
        self.assertEqual(opened, (A1_SENT, 155, 1, self.backend.OPEN_OK))

    def a2_ciphers(self) -> tuple[ChunkCipher, ChunkCipher]:
        """A's and B's ciphers of wire.md A.2, from the connection messages."""
        a_conn, b_conn = a2_connection_messages()
        a_key = precompute(IDENTITY_A.secret_key, IDENTITY_B.public_key)
        b_key = precompute(IDENTITY_B.secret_key, IDENTITY_A.public_key)
        a_local, a_remote = generate_nonces(incoming=False, sent_msg=a_conn, recv_msg=b_conn)
        b_local, b_remote = generate_nonces(incoming=True, sent_msg=b_conn, recv_msg=a_conn)
        return self.cipher(a_key, a_local, a_remote), self.cipher(b_key, b_local, b_remote)

    def test_a2_chunks(self) -> None:
        """A.2: metadata, Ack and Bootstrap chunks, byte for byte."""
        a, b = self.a2_ciphers()
        self.assertEqual((a.local_nonce, b.local_nonce), (A2_A_SEND, A2_B_SEND))
        self.assertEqual(a.seal(b"\x00\x00"), A2_A_METADATA)
        self.assertEqual(b.seal(b"\x00\x00"), A2_B_METADATA)
        self.assertEqual(a.seal(b"\x00"), A2_A_ACK)
        self.assertEqual(a.seal(h("000000020002")), A2_A_BOOTSTRAP)
        self.assertEqual(a.local_nonce, nonce_plus(A2_A_SEND, 3))
        self.assertEqual(b.local_nonce, nonce_plus(A2_B_SEND, 1))

    def test_a2_open_in_sequence(self) -> None:
        """A.2: B opens A's three chunks one by one, A opens B's metadata."""
        a, b = self.a2_ciphers()
        stream = A2_A_METADATA + A2_A_ACK + A2_A_BOOTSTRAP
        offset = 0
        for plain in (b"\x00\x00", b"\x00", h("000000020002")):
            opened, offset, frames, error = b.open(stream, offset, max_frames=1)
            self.assertEqual((opened, frames, error), (plain, 1, None))
        self.assertEqual(offset, len(stream))
        self.assertEqual(b.remote_nonce, nonce_plus(A2_A_SEND, 3))
        self.assertEqual(a.open(A2_B_METADATA), (b"\x00\x00", 20, 1, None))

    def test_a2_open_at_once(self) -> None:
        _, b = self.a2_ciphers()
        stream = A2_A_METADATA + A2_A_ACK + A2_A_BOOTSTRAP
        self.assertEqual(b.open(stream), (h("000000000000020002"), len(stream), 3, None))

    def test_a2_swapped_nonces(self) -> None:
        """Receiving with the wrong nonce (the swap of wire.md §3.2) fails to decipher."""
        _, b = self.a2_ciphers()
        swapped = self.cipher(A2_KEY, b.remote_nonce, b.local_nonce)
        plain, offset, frames, error = swapped.open(A2_A_METADATA)
        self.assertEqual((plain, offset, frames), (b"", 0, 0))
        self.assertIsInstance(error, DecipherError)


class NonceMixin(_BackendMixin):
    """The backend's in-place nonce increment"""

    def bump(self, nonce: bytes) -> bytes:
        buffer = bytearray(nonce)
        self.backend.increment_nonce(buffer)
        return bytes(buffer)

    def test_vector(self) -> None:
        self.assertEqual(self.bump(A1_OUTGOING_LOCAL).hex()[-8:], "640d72c6")
        self.assertEqual(self.bump(A1_OUTGOING_LOCAL)[:-1], A1_OUTGOING_LOCAL[:-1])

    def test_carry(self) -> None:
        self.assertEqual(self.bump(bytes(21) + b"\x01\xff\xff"), bytes(21) + b"\x02\x00\x00")
        self.assertEqual(self.bump(b"\x00" + b"\xff" * 23), b"\x01" + bytes(23))
        self.assertEqual(self.bump(b"\x12" * 23 + b"\xff"), b"\x12" * 22 + b"\x13\x00")

    def test_wrap(self) -> None:
        self.assertEqual(self.bump(b"\xff" * 24), bytes(24))

    def test_bad_size(self) -> None:
        for size in (0, 23, 25):
            self.assertRaises(ValueError, self.backend.increment_nonce, bytearray(size))

    @mixin_settings()
    @given(nonces)
    def test_matches_integers(self, nonce: bytes) -> None:
        self.assertEqual(self.bump(nonce), nonce_plus(nonce, 1))
        self.assertEqual(self.bump(nonce), increment_nonce(nonce))


class ProofOfWorkMixin(_BackendMixin):
    """Proof-of-work checking and mining"""

    def check(self, public_key: bytes, stamp: bytes, target: float | PowTarget) -> bool:
        return check_proof_of_work(public_key, stamp, target, backend=self.backend)

    def test_tezedge_vector(self) -> None:
        """A.1: the TezEdge stamp passes 24 (its level is 26)."""
        self.assertTrue(self.check(TEZEDGE_POW_PK, TEZEDGE_POW_STAMP, 24))
        self.assertTrue(self.check(TEZEDGE_POW_PK, TEZEDGE_POW_STAMP, 26))
        self.assertFalse(self.check(TEZEDGE_POW_PK, TEZEDGE_POW_STAMP, 27))

    def test_identity_a(self) -> None:
        """Fixture A has level exactly 26."""
        pk, stamp = IDENTITY_A.public_key, IDENTITY_A.proof_of_work_stamp
        self.assertTrue(self.check(pk, stamp, 26))
        self.assertTrue(self.check(pk, stamp, 26.0))
        self.assertTrue(self.check(pk, stamp, PowTarget.of_difficulty(26)))
        self.assertFalse(self.check(pk, stamp, 27))
        self.assertFalse(self.check(pk, stamp, PowTarget.of_difficulty(27)))

    def test_identity_b(self) -> None:
        pk, stamp = IDENTITY_B.public_key, IDENTITY_B.proof_of_work_stamp
        self.assertTrue(self.check(pk, stamp, 36))
        self.assertTrue(self.check(pk, stamp, 26))
        self.assertFalse(self.check(pk, stamp, 37))

    def test_extremes(self) -> None:
        """0 accepts every stamp, 256 accepts only the all-zero hash."""
        pk, stamp = IDENTITY_A.public_key, IDENTITY_A.proof_of_work_stamp
        self.assertTrue(self.check(pk, stamp, 0))
        self.assertFalse(self.check(pk, stamp, 256))

    def test_tiny_fraction(self) -> None:
        """
        Difficulties in (0, 2**-48] give a target above 2**256 - 1 (see
        ``PowTargetTests.test_tiny_fraction``): every stamp passes, as in
        Octez, whose targets are unbounded integers.
        """
        pk, stamp = IDENTITY_B.public_key, IDENTITY_A.proof_of_work_stamp
        for difficulty in (5e-324, 1e-20, 2.0**-49):
            self.assertTrue(self.check(pk, stamp, difficulty))

    def test_wrong_stamp(self) -> None:
        """Stamp A with key B (or a changed stamp) does not reach 26."""
        stamp = bytearray(IDENTITY_A.proof_of_work_stamp)
        stamp[0] ^= 1
        self.assertFalse(self.check(IDENTITY_A.public_key, bytes(stamp), 26))
        self.assertFalse(self.check(IDENTITY_B.public_key, IDENTITY_A.proof_of_work_stamp, 26))

    def test_bad_sizes(self) -> None:
        target = PowTarget.of_difficulty(1).le_bytes
        self.assertRaises(ValueError, self.backend.check_pow, bytes(31), bytes(24), target)
        self.assertRaises(ValueError, self.backend.check_pow, bytes(32), bytes(23), target)
        self.assertRaises(ValueError, self.backend.check_pow, bytes(32), bytes(24), target[:31])
        self.assertRaises(ValueError, self.backend.mine, bytes(31), bytearray(24), target, 1)
        self.assertRaises(ValueError, self.backend.mine, bytes(32), bytearray(23), target, 1)

    @mixin_settings()
    @given(public_key=keys, stamp=nonces, delta=st.integers(-3, 3))
    def test_boundary(self, public_key: bytes, stamp: bytes, delta: int) -> None:
        """The comparison is ``<=`` on little-endian integers, exactly at the hash."""
        value = pow_value(public_key, stamp)
        target = min(max(value + delta, 0), 2**256 - 1)
        result = self.backend.check_pow(public_key, stamp, target.to_bytes(32, "little"))
        self.assertEqual(result, value <= target)

    @mixin_settings()
    @given(public_key=keys, stamp=nonces, data=st.data())
    def test_fractional_targets(self, public_key: bytes, stamp: bytes, data: st.DataObject) -> None:
        """Agreement with ``v <= make_pow_target(f)`` near and away from the stamp's level."""
        level = pow_level(public_key, stamp)
        difficulty = data.draw(
            st.one_of(
                difficulties(256),
                st.floats(max(1, level - 1.5), min(256, level + 1.5)),
            )
        )
        expected = pow_value(public_key, stamp) <= make_pow_target(difficulty)
        self.assertEqual(self.check(public_key, stamp, difficulty), expected)

    def reference_mine(
        self, public_key: bytes, start: bytes, difficulty: float
    ) -> tuple[int, bytes]:
        """The first passing stamp from ``start`` on, and the attempts it takes."""
        target = make_pow_target(difficulty)
        stamp = start
        tried = 1
        while pow_value(public_key, stamp) > target:
            stamp = nonce_plus(stamp, 1)
            tried += 1
        return tried, stamp

    def test_mine_low_difficulty(self) -> None:
        """``mine`` stops at the first stamp that passes and leaves it in place."""
        for start in (bytes(24), b"\xff" * 24, os.urandom(24)):
            expected_tried, expected_stamp = self.reference_mine(IDENTITY_A.public_key, start, 8)
            stamp = bytearray(start)
            target = PowTarget.of_difficulty(8).le_bytes
            tried = self.backend.mine(IDENTITY_A.public_key, stamp, target, 1 << 20)
            self.assertEqual((tried, bytes(stamp)), (expected_tried, expected_stamp))
            self.assertTrue(self.check(IDENTITY_A.public_key, bytes(stamp), 8))

    def test_mine_exhausted(self) -> None:
        """Nothing found: returns ``attempts`` and advances the stamp by as much."""
        target = PowTarget.of_difficulty(256).le_bytes
        start = h("00112233445566778899aabbccddeeff0011223344ffff00")
        stamp = bytearray(start)
        self.assertEqual(self.backend.mine(IDENTITY_A.public_key, stamp, target, 1000), 1000)
        self.assertEqual(bytes(stamp), nonce_plus(start, 1000))

    def test_mine_wraps(self) -> None:
        """The stamp counter wraps at 2**192 like a nonce."""
        target = PowTarget.of_difficulty(256).le_bytes
        stamp = bytearray(b"\xff" * 22 + b"\xff\xfd")
        self.assertEqual(self.backend.mine(IDENTITY_A.public_key, stamp, target, 5), 5)
        self.assertEqual(bytes(stamp), bytes(22) + b"\x00\x02")

    def test_mine_first_attempt(self) -> None:
        """Difficulty 0 accepts the starting stamp: one attempt, stamp unchanged."""
        stamp = bytearray(IDENTITY_B.proof_of_work_stamp)
        target = PowTarget.of_difficulty(0).le_bytes
        self.assertEqual(self.backend.mine(IDENTITY_A.public_key, stamp, target, 100), 1)
        self.assertEqual(bytes(stamp), IDENTITY_B.proof_of_work_stamp)

    def test_mine_known_stamp(self) -> None:
        """Starting just before fixture A's stamp finds it at level 26."""
        start = nonce_plus(IDENTITY_A.proof_of_work_stamp, -10)
        stamp = bytearray(start)
        target = PowTarget.of_difficulty(26).le_bytes
        self.assertEqual(self.backend.mine(IDENTITY_A.public_key, stamp, target, 11), 11)
        self.assertEqual(bytes(stamp), IDENTITY_A.proof_of_work_stamp)

    def test_mine_zero_attempts(self) -> None:
        stamp = bytearray(IDENTITY_B.proof_of_work_stamp)
        target = PowTarget.of_difficulty(0).le_bytes
        self.assertEqual(self.backend.mine(IDENTITY_A.public_key, stamp, target, 0), 0)
        self.assertEqual(bytes(stamp), IDENTITY_B.proof_of_work_stamp)


class ChunksMixin(_BackendMixin):
    """Chunk sealing and opening (wire.md §4)"""

    def test_round_trips(self) -> None:
        """Sizes around one chunk and several chunk sizes, through one cipher pair."""
        data = os.urandom(200_000)
        for size in (0, 1, 65517, 65518, 200_000):
            for chunk_size in (1, 21, MAX_CHUNK_PLAINTEXT):
                sender = self.cipher(KEY, NONCE, NONCE)
                receiver = self.cipher(KEY, NONCE, NONCE)
                stream = sender.seal(data[:size], chunk_size)
                count = max(1, -(-size // chunk_size))
                self.assertEqual(len(stream), size + 18 * count)
                self.assertEqual(receiver.open(stream), (data[:size], len(stream), count, None))
                self.assertEqual(sender.local_nonce, nonce_plus(NONCE, count))
                self.assertEqual(receiver.remote_nonce, nonce_plus(NONCE, count))

    def test_layout(self) -> None:
        """``uint16 (16 + n) || MAC || ct`` per piece, the last piece shorter."""
        data = bytes(range(50))
        stream = self.cipher().seal(data, 21)
        self.assertEqual(stream, expected_frames(KEY, NONCE, data, 21))
        ends = frame_ends(stream)
        self.assertEqual(ends, [39, 78, 104])
        self.assertEqual(
            [stream[0:2], stream[39:41], stream[78:80]], [h("0025"), h("0025"), h("0018")]
        )

    def test_mac_first(self) -> None:
        """
        Two plaintexts differing only in their last byte, sealed with one nonce:
        the frames differ in the first 16 body bytes (the MAC) and in the
        last byte, so the ciphertext follows the MAC with no padding.
        """
        first = self.backend.seal_chunks(KEY, bytearray(NONCE), bytes(40), 40)
        second = self.backend.seal_chunks(KEY, bytearray(NONCE), bytes(39) + b"\x01", 40)
        self.assertEqual((len(first), first[:2]), (58, h("0038")))
        self.assertNotEqual(first[2:18], second[2:18])
        self.assertEqual(first[18:-1], second[18:-1])
        self.assertEqual(first[-1] ^ second[-1], 1)

    def test_empty(self) -> None:
        """Empty data gives one empty chunk of 18 bytes, which opens to nothing."""
        cipher = self.cipher()
        stream = cipher.seal(b"")
        self.assertEqual(len(stream), 18)
        self.assertEqual(stream[:2], h("0010"))
        self.assertEqual(stream, expected_frames(KEY, NONCE, b"", 1))
        self.assertEqual(cipher.local_nonce, nonce_plus(NONCE, 1))
        self.assertEqual(self.cipher().open(stream), (b"", 18, 1, None))

    def test_largest_incoming_frame(self) -> None:
        """Receivers accept a 65519-byte plaintext (enc_len 65535), larger than Octez sends."""
        data = os.urandom(65519)
        box = crypto_box_easy_afternm(data, NONCE, KEY)
        self.assertEqual(len(box), 0xFFFF)
        self.assertEqual(self.cipher().open(h("ffff") + box), (data, 65537, 1, None))

    def test_seal_arguments(self) -> None:
        cipher = self.cipher()
        for chunk_size in (0, -1, MAX_CHUNK_PLAINTEXT + 1):
            self.assertRaises(ValueError, cipher.seal, b"data", chunk_size)
        self.assertRaises(ValueError, self.backend.seal_chunks, bytes(31), bytearray(24), b"", 1)
        self.assertRaises(ValueError, self.backend.seal_chunks, KEY, bytearray(23), b"", 1)
        self.assertEqual(cipher.local_nonce, NONCE)

    def test_open_arguments(self) -> None:
        cipher = self.cipher()
        self.assertRaises(ValueError, cipher.open, b"abc", 4)
        self.assertRaises(ValueError, cipher.open, b"abc", -1)
        self.assertRaises(
            ValueError, self.backend.open_chunks, bytes(31), bytearray(24), b"", 0, -1
        )
        self.assertRaises(ValueError, self.backend.open_chunks, KEY, bytearray(25), b"", 0, -1)
        self.assertEqual(cipher.open(b"abc", 3), (b"", 3, 0, None))

    def test_buffer_types(self) -> None:
        """``bytearray`` and ``memoryview`` are accepted for data and buffers."""
        data = bytearray(os.urandom(100))
        stream = self.cipher().seal(memoryview(data), 30)
        self.assertEqual(stream, self.cipher().seal(bytes(data), 30))
        self.assertEqual(self.cipher().seal(data, 30), stream)
        self.assertEqual(self.cipher().open(bytearray(stream))[0], data)
        self.assertEqual(self.cipher().open(memoryview(stream))[0], data)
        opened = self.cipher().open(memoryview(b"xyz" + stream)[3:])
        self.assertEqual(opened, (data, len(stream), 4, None))

    def test_offset(self) -> None:
        """Opening from an offset skips what comes before it."""
        stream = self.cipher().seal(b"hello world", 5)
        self.assertEqual(
            self.cipher().open(b"junk" + stream, 4), (b"hello world", 4 + 11 + 3 * 18, 3, None)
        )

    def test_max_frames(self) -> None:
        cipher = self.cipher()
        stream = self.cipher().seal(bytes(range(30)), 10)
        self.assertEqual(cipher.open(stream, 0, max_frames=0), (b"", 0, 0, None))
        self.assertEqual(cipher.remote_nonce, NONCE)
        self.assertEqual(cipher.open(stream, 0, max_frames=1), (bytes(range(10)), 28, 1, None))
        self.assertEqual(cipher.remote_nonce, nonce_plus(NONCE, 1))
        self.assertEqual(cipher.open(stream, 28, max_frames=2), (bytes(range(10, 30)), 84, 2, None))
        self.assertEqual(cipher.open(stream, 84, max_frames=1), (b"", 84, 0, None))
        self.assertEqual(cipher.remote_nonce, nonce_plus(NONCE, 3))

    def test_every_split_point(self) -> None:
        """
        A prefix of a three-frame stream opens exactly its complete frames,
        then the rest opens from the returned offset.
        """
        data = bytes(range(25))
        stream = self.cipher().seal(data, 10)
        ends = frame_ends(stream)
        self.assertEqual(ends, [28, 56, 79])
        for cut in range(len(stream) + 1):
            cipher = self.cipher()
            complete = sum(1 for end in ends if end <= cut)
            boundary = ends[complete - 1] if complete else 0
            plain, offset, frames, error = cipher.open(stream[:cut])
            self.assertEqual(
                (plain, offset, frames, error), (data[: 10 * complete], boundary, complete, None)
            )
            self.assertEqual(cipher.remote_nonce, nonce_plus(NONCE, complete))
            rest = cipher.open(stream, offset)
            self.assertEqual(rest, (data[10 * complete :], len(stream), 3 - complete, None))

    @mixin_settings(max_examples=100)
    @given(data=st.binary(max_size=400), chunk_size=st.integers(1, 50), draw=st.data())
    def test_arbitrary_splits(self, data: bytes, chunk_size: int, draw: st.DataObject) -> None:
        """A sealed stream fed in arbitrary pieces into a growing buffer reassembles."""
        stream = self.cipher().seal(data, chunk_size)
        ends = [0, *frame_ends(stream)]
        cuts = sorted(draw.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
        receiver = self.cipher()
        buffer = bytearray()
        offset = 0
        received = []
        for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            buffer += stream[start:stop]
            plain, offset, _, error = receiver.open(buffer, offset)
            self.assertIsNone(error)
            self.assertEqual(offset, max(end for end in ends if end <= len(buffer)))
            received.append(plain)
        self.assertEqual(b"".join(received), data)
        self.assertEqual(offset, len(stream))
        self.assertEqual(receiver.remote_nonce, nonce_plus(NONCE, len(ends) - 1))

    def test_flipped_bit_every_frame(self) -> None:
        """A corrupted frame fails after the earlier frames' plaintext is returned."""
        data = bytes(range(30))
        stream = self.cipher().seal(data, 10)
        ends = [0, *frame_ends(stream)]
        for index in range(3):
            for position in (
                ends[index] + 2,
                ends[index] + 17,
                ends[index] + 18,
                ends[index + 1] - 1,
            ):
                corrupted = bytearray(stream)
                corrupted[position] ^= 0x80
                plain, offset, frames, error = self.cipher().open(corrupted)
                self.assertEqual((plain, offset, frames), (data[: 10 * index], ends[index], index))
                self.assertIsInstance(error, DecipherError)

    @mixin_settings(max_examples=100)
    @given(data=st.binary(max_size=200), chunk_size=st.integers(1, 40), draw=st.data())
    def test_flipped_bit(self, data: bytes, chunk_size: int, draw: st.DataObject) -> None:
        stream = self.cipher().seal(data, chunk_size)
        ends = [0, *frame_ends(stream)]
        index = draw.draw(st.integers(0, len(ends) - 2))
        position = draw.draw(st.integers(ends[index] + 2, ends[index + 1] - 1))
        bit = draw.draw(st.integers(0, 7))
        corrupted = bytearray(stream)
        corrupted[position] ^= 1 << bit
        plain, offset, frames, error = self.cipher().open(corrupted)
        self.assertEqual((plain, offset, frames), (data[: chunk_size * index], ends[index], index))
        self.assertIsInstance(error, DecipherError)

    def test_short_ciphertext(self) -> None:
        """enc_len < 16 is ``InvalidIncomingCiphertextSize``, even before its body arrives."""
        for enc_len in (0, 1, 15):
            for buffer in (enc_len.to_bytes(2, "big"), enc_len.to_bytes(2, "big") + bytes(enc_len)):
                plain, offset, frames, error = self.cipher().open(buffer)
                self.assertEqual((plain, offset, frames), (b"", 0, 0))
                self.assertIsInstance(error, InvalidIncomingCiphertextSize)

    def test_short_ciphertext_after_frames(self) -> None:
        data = b"0123456789"
        stream = self.cipher().seal(data, 5)
        plain, offset, frames, error = self.cipher().open(stream + h("000f") + bytes(15))
        self.assertEqual((plain, offset, frames), (data, len(stream), 2))
        self.assertIsInstance(error, InvalidIncomingCiphertextSize)

    @mixin_settings()
    @given(
        garbage=st.binary(max_size=300), offset=st.integers(0, 300), max_frames=st.integers(-1, 5)
    )
    def test_garbage(self, garbage: bytes, offset: int, max_frames: int) -> None:
        """Arbitrary bytes never raise: a 4-tuple with ``None`` or a ``P2PError``."""
        offset = min(offset, len(garbage))
        result = self.cipher().open(garbage, offset, max_frames)
        self.assertEqual(len(result), 4)
        plain, new_offset, frames, error = result
        self.assertIsInstance(plain, bytes)
        self.assertTrue(offset <= new_offset <= len(garbage))
        self.assertTrue(frames >= 0)
        if error is not None:
            self.assertIsInstance(error, P2PError)
            self.assertIsInstance(error, (DecipherError, InvalidIncomingCiphertextSize))

    @mixin_settings()
    @given(
        data=st.binary(max_size=200), chunk_size=st.integers(1, 40), garbage=st.binary(max_size=100)
    )
    def test_valid_then_garbage(self, data: bytes, chunk_size: int, garbage: bytes) -> None:
        """Garbage after valid frames: the valid plaintext comes out first."""
        stream = self.cipher().seal(data, chunk_size)
        plain, offset, frames, error = self.cipher().open(stream + garbage)
        self.assertEqual(plain, data)
        self.assertEqual((offset, frames), (len(stream), len(frame_ends(stream))))
        if error is not None:
            self.assertIsInstance(error, (DecipherError, InvalidIncomingCiphertextSize))

    @mixin_settings()
    @given(key=keys, nonce=nonces, data=st.binary(max_size=2000), chunk_size=chunk_sizes)
    def test_matches_nacl(self, key: bytes, nonce: bytes, data: bytes, chunk_size: int) -> None:
        """Sealed output is byte-identical to the ``nacl.bindings`` construction."""
        state = bytearray(nonce)
        stream = self.backend.seal_chunks(key, state, data, chunk_size)
        self.assertEqual(stream, expected_frames(key, nonce, data, chunk_size))
        self.assertEqual(bytes(state), nonce_plus(nonce, len(frame_ends(stream))))
        state = bytearray(nonce)
        opened = self.backend.open_chunks(key, state, stream, 0, -1)
        self.assertEqual(opened, (data, len(stream), len(frame_ends(stream)), 0))

    def test_self_test(self) -> None:
        """The backend passes ``_backend.self_test``."""
        _backend.self_test(self.backend)


globals().update(per_backend(VectorsMixin, "Vectors"))
globals().update(per_backend(NonceMixin, "Nonce"))
globals().update(per_backend(ProofOfWorkMixin, "ProofOfWork"))
globals().update(per_backend(ChunksMixin, "Chunks"))


class UnboundCythonTests(SynchronousTestCase):
    """The compiled module refuses to run before ``bind`` instead of crashing."""

    def setUp(self) -> None:
        module = _backend.compiled_cbox()
        if module is None:
            self.skipTest("extension not built")
        self.module = module
        module.bind(0, 0, 0)
        self.addCleanup(lambda: module.bind(*_backend._sodium_addresses()))

    def test_unbound(self) -> None:
        self.assertFalse(self.module.is_bound())
        target = bytes(32)
        self.assertRaises(RuntimeError, self.module.seal_chunks, KEY, bytearray(24), b"", 1)
        self.assertRaises(RuntimeError, self.module.open_chunks, KEY, bytearray(24), b"", 0, -1)
        self.assertRaises(RuntimeError, self.module.check_pow, KEY, bytes(24), target)
        self.assertRaises(RuntimeError, self.module.mine, KEY, bytearray(24), target, 1)


class SealBatchTests(SynchronousTestCase):
    """``seal_batch`` equals sealing each record (4-byte length + body) in turn."""

    @settings(max_examples=80)
    @given(
        items=st.lists(st.tuples(st.binary(max_size=3000), st.booleans()), min_size=0, max_size=6),
        chunk=st.sampled_from([1, 3, 4, 5, 17, 1000, 65517]),
    )
    def test_matches_seal_chunks(self, items: list[tuple[bytes, bool]], chunk: int) -> None:
        key = bytes(range(32))
        bodies = [body for body, _ in items]
        flags = bytes(framed for _, framed in items)
        for _, backend in helpers.backends():
            nonce = bytearray(24)
            reference = bytearray(24)
            expected = b"".join(
                backend.seal_chunks(
                    key, reference, (len(b).to_bytes(4, "big") + b) if f else b, chunk
                )
                for b, f in items
            )
            self.assertEqual(backend.seal_batch(key, nonce, bodies, flags, chunk), expected)
            self.assertEqual(nonce, reference)

    def test_bad_arguments(self) -> None:
        for _, backend in helpers.backends():
            self.assertRaises(
                ValueError, backend.seal_batch, bytes(32), bytearray(24), [b"x"], b"", 10
            )
            self.assertRaises(ValueError, backend.seal_batch, bytes(32), bytearray(24), [], b"", 0)
            self.assertRaises(
                TypeError, backend.seal_batch, bytes(32), bytearray(24), ["x"], b"\x01", 10
            )
