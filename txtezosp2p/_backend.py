# -*- test-case-name: tests.test_backend -*-
"""
Choice between the compiled modules (``cext/``) and their pure twins.

* ``TXTEZOSP2P_NO_EXTENSIONS=1``: always use the pure twins.
* ``TXTEZOSP2P_REQUIRE_EXTENSIONS=1``: a missing or failing extension is an
  ``ImportError`` (CI sets this so a silently missing ``.so`` fails the run).
* otherwise: use the extension if it imports, binds and passes its
  known-answer self-test, else fall back to the twin.

The compiled crypto module reaches libsodium through the function addresses
of PyNaCl's bundled copy (``nacl._sodium``); binding is followed by a
self-test against ``nacl.bindings`` so that a change in PyNaCl's private
surface makes us fall back instead of corrupting traffic.
"""

from __future__ import annotations

import hashlib
import os
from typing import Protocol, cast

from . import _cbox_py, _quota_py

Buffer = bytes | bytearray | memoryview


class CboxModule(Protocol):
    """What both the compiled ``_cbox`` and its twin ``_cbox_py`` provide."""

    __name__: str
    OPEN_OK: int
    OPEN_DECIPHER_ERROR: int
    OPEN_INVALID_SIZE: int
    BACKEND: str

    def bind(self, seal_addr: int, open_addr: int, blake2b_addr: int) -> None: ...
    def is_bound(self) -> bool: ...
    def increment_nonce(self, nonce: bytearray) -> None: ...
    def seal_chunks(
        self, key: Buffer, nonce: bytearray, data: Buffer, chunk_size: int
    ) -> bytes: ...
    def seal_batch(
        self, key: Buffer, nonce: bytearray, items: list[bytes], framed: Buffer, chunk_size: int
    ) -> bytes: ...
    def open_chunks(
        self, key: Buffer, nonce: bytearray, buf: Buffer, offset: int, max_frames: int
    ) -> tuple[bytes, int, int, int]: ...
    def check_pow(self, public_key: Buffer, stamp: Buffer, target_le: Buffer) -> bool: ...
    def mine(
        self, public_key: Buffer, stamp: bytearray, target_le: Buffer, attempts: int
    ) -> int: ...
    def RecordBuffer(self, size: int) -> RecordBufferLike: ...


class RecordBufferLike(Protocol):
    """A bytes builder: written once, in order, then taken (``_cbox.RecordBuffer``)."""

    @property
    def filled(self) -> int: ...
    @property
    def missing(self) -> int: ...
    def write(self, data: Buffer) -> int: ...
    def take(self) -> bytes: ...


NO_EXTENSIONS = os.environ.get("TXTEZOSP2P_NO_EXTENSIONS") == "1"
REQUIRE_EXTENSIONS = os.environ.get("TXTEZOSP2P_REQUIRE_EXTENSIONS") == "1"

_SELF_TEST_KEY = bytes(range(32))
_SELF_TEST_NONCE = bytes(range(100, 124))
_SELF_TEST_DATA = b"txtezosp2p self-test " * 5


def _sodium_addresses() -> tuple[int, int, int]:
    from nacl._sodium import ffi, lib

    def address(name: str) -> int:
        return int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))

    return (
        address("crypto_box_easy_afternm"),
        address("crypto_box_open_easy_afternm"),
        address("crypto_generichash_blake2b_salt_personal"),
    )


def self_test(module: CboxModule) -> None:
    """Known-answer test of a crypto backend; raises ``RuntimeError`` on mismatch."""
    from nacl.bindings import crypto_box_easy_afternm

    nonce = bytearray(_SELF_TEST_NONCE)
    sealed = module.seal_chunks(_SELF_TEST_KEY, nonce, _SELF_TEST_DATA, 40)
    expected = []
    reference = bytearray(_SELF_TEST_NONCE)
    for start in range(0, len(_SELF_TEST_DATA), 40):
        box = crypto_box_easy_afternm(
            _SELF_TEST_DATA[start : start + 40], bytes(reference), _SELF_TEST_KEY
        )
        expected.append(len(box).to_bytes(2, "big") + box)
        _cbox_py.increment_nonce(reference)
    if sealed != b"".join(expected) or nonce != reference:
        raise RuntimeError(f"{module.__name__}: seal self-test failed")
    nonce = bytearray(_SELF_TEST_NONCE)
    batch = module.seal_batch(_SELF_TEST_KEY, nonce, [_SELF_TEST_DATA[:-4], b""], b"\x01\x00", 40)
    reference = bytearray(_SELF_TEST_NONCE)
    framed = len(_SELF_TEST_DATA[:-4]).to_bytes(4, "big") + _SELF_TEST_DATA[:-4]
    expected_batch = _cbox_py.seal_chunks(_SELF_TEST_KEY, reference, framed, 40)
    expected_batch += _cbox_py.seal_chunks(_SELF_TEST_KEY, reference, b"", 40)
    if batch != expected_batch or nonce != reference:
        raise RuntimeError(f"{module.__name__}: batch self-test failed")
    nonce = bytearray(_SELF_TEST_NONCE)
    plain, offset, frames, status = module.open_chunks(_SELF_TEST_KEY, nonce, sealed, 0, -1)
    if (plain, offset, frames, status) != (_SELF_TEST_DATA, len(sealed), 3, module.OPEN_OK):
        raise RuntimeError(f"{module.__name__}: open self-test failed")
    stamp = bytes(24)
    pk = bytes(32)
    level = int.from_bytes(hashlib.blake2b(pk + stamp, digest_size=32).digest(), "little")
    for target in (level, level - 1):
        if module.check_pow(pk, stamp, target.to_bytes(32, "little")) != (target >= level):
            raise RuntimeError(f"{module.__name__}: proof-of-work self-test failed")


def _load_cbox() -> CboxModule:
    if NO_EXTENSIONS:
        return cast(CboxModule, _cbox_py)
    try:
        from . import _cbox

        _cbox.bind(*_sodium_addresses())
        self_test(cast(CboxModule, _cbox))
    except (ImportError, AttributeError, RuntimeError) as exc:
        if REQUIRE_EXTENSIONS:
            raise ImportError(f"txtezosp2p._cbox is required but unusable: {exc}") from exc
        return cast(CboxModule, _cbox_py)
    return cast(CboxModule, _cbox)


#: The crypto backend in use: the compiled module or its pure twin.
cbox: CboxModule = _load_cbox()


class QuotaModule(Protocol):
    """What both the compiled ``_quota`` and its twin ``_quota_py`` provide."""

    __name__: str
    BACKEND: str
    QuotaTable: type[_quota_py.QuotaTable]


def _quota_script(module: QuotaModule) -> dict[int, tuple[int, int, int]]:
    table = module.QuotaTable()
    slots = [table.add() for _ in range(3)]
    for step, slot in enumerate(slots * 5):
        table.count(slot, 1000 * (step + 1), step % 2 == 0)
    table.refresh(1000, 50_000)
    table.count(slots[1], 70_000, True)
    table.refresh(900, -1)
    table.remove(slots[0])
    return table.snapshot() | {-1: (table.global_quota, table.global_total, table.global_average)}


def self_test_quota(module: QuotaModule) -> None:
    """The compiled accounting must take the same decisions as its twin."""
    if _quota_script(module) != _quota_script(cast(QuotaModule, _quota_py)):
        raise RuntimeError(f"{module.__name__}: quota self-test failed")


def _load_quota() -> QuotaModule:
    if NO_EXTENSIONS:
        return cast(QuotaModule, _quota_py)
    try:
        from . import _quota

        self_test_quota(cast(QuotaModule, _quota))
    except (ImportError, AttributeError, RuntimeError) as exc:
        if REQUIRE_EXTENSIONS:
            raise ImportError(f"txtezosp2p._quota is required but unusable: {exc}") from exc
        return cast(QuotaModule, _quota_py)
    return cast(QuotaModule, _quota)


#: The scheduler accounting backend in use, and its pure twin.
quota: QuotaModule = _load_quota()
quota_py: QuotaModule = cast(QuotaModule, _quota_py)


def compiled_quota() -> QuotaModule | None:
    """The compiled accounting module, tested, or ``None`` when unavailable."""
    try:
        from . import _quota

        self_test_quota(cast(QuotaModule, _quota))
    except (ImportError, AttributeError, RuntimeError):
        return None
    return cast(QuotaModule, _quota)


#: The pure twin, always available (tests compare it with ``cbox``).
cbox_py: CboxModule = cast(CboxModule, _cbox_py)


def compiled_cbox() -> CboxModule | None:
    """The compiled module, bound and tested, or ``None`` when unavailable."""
    if cbox is not cbox_py:
        return cbox
    try:
        from . import _cbox

        _cbox.bind(*_sodium_addresses())
        self_test(cast(CboxModule, _cbox))
    except (ImportError, AttributeError, RuntimeError):
        return None
    return cast(CboxModule, _cbox)


def describe() -> dict[str, str]:
    """Which implementation each accelerated module uses (for logs and ``--version``)."""
    return {"cbox": cbox.BACKEND, "quota": quota.BACKEND}
