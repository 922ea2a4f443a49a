"""
Crypto benchmarks: chunk sealing and opening, proof-of-work hashing.

Each measurement is compared, in the same run, with a baseline doing the
same work at C speed: a bare cffi call into the same libsodium for chunks,
a plain C mining loop (``bench/baseline.c``) for proof of work.  Rounds of
the candidates are interleaved, so that noise from the machine affects them
alike; each figure is the median over rounds with the lowest and highest
round, and each ratio is taken round by round (``bench/stats.py``).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from nacl._sodium import ffi, lib

from txtezosp2p import _backend
from txtezosp2p.wire.crypto import MAX_CHUNK_PLAINTEXT, PowTarget

from .stats import interleaved_rates, ratios, spread

KEY = bytes(range(32))
NONCE = bytes(24)


def _pieces(size: int) -> list[int]:
    return [min(MAX_CHUNK_PLAINTEXT, size - start) for start in range(0, size, MAX_CHUNK_PLAINTEXT)]


def _chunk_candidates(
    size: int, compiled: Any
) -> tuple[dict[str, Callable[[], int]], dict[str, Callable[[], int]]]:
    """Sealers and openers of ``size`` bytes, cut into protocol-sized chunks."""
    pure = _backend.cbox_py
    data = os.urandom(size)
    pieces = _pieces(size)
    src = ffi.from_buffer("unsigned char[]", data)
    out = ffi.new("unsigned char[]", size + 16 * len(pieces))
    sealed = ffi.new("unsigned char[]", size + 16 * len(pieces))
    plain_out = ffi.new("unsigned char[]", size)
    position = 0
    for piece in pieces:
        lib.crypto_box_easy_afternm(
            sealed + position + 16 * (position // MAX_CHUNK_PLAINTEXT),
            src + position,
            piece,
            NONCE,
            KEY,
        )
        position += piece

    def bare_seal() -> int:
        # the same libsodium calls, one per chunk, into a preallocated buffer
        position = written = 0
        for piece in pieces:
            lib.crypto_box_easy_afternm(out + written, src + position, piece, NONCE, KEY)
            position += piece
            written += piece + 16
        return size

    def bare_open() -> int:
        position = read = 0
        for piece in pieces:
            lib.crypto_box_open_easy_afternm(
                plain_out + position, sealed + read, piece + 16, NONCE, KEY
            )
            position += piece
            read += piece + 16
        return size

    def sealer(module: Any) -> Callable[[], int]:
        nonce = bytearray(24)

        def run() -> int:
            module.seal_chunks(KEY, nonce, data, MAX_CHUNK_PLAINTEXT)
            return size

        return run

    def opener(module: Any) -> Callable[[], int]:
        frames = module.seal_chunks(KEY, bytearray(24), data, MAX_CHUNK_PLAINTEXT)

        def run() -> int:
            module.open_chunks(KEY, bytearray(24), frames, 0, -1)
            return size

        return run

    seal: dict[str, Callable[[], int]] = {"bare_cffi": bare_seal, "python": sealer(pure)}
    open_: dict[str, Callable[[], int]] = {"bare_cffi": bare_open, "python": opener(pure)}
    if compiled is not None:
        seal["cython"] = sealer(compiled)
        open_["cython"] = opener(compiled)
    return seal, open_


def chunk_benchmarks(rounds: int, min_time: float) -> dict[str, Any]:
    compiled = _backend.compiled_cbox()
    results: dict[str, Any] = {}
    for size in (65536, 4096):
        seal, open_ = _chunk_candidates(size, compiled)
        label = f"{size // 1024}KiB"
        for name, candidates in (("seal", seal), ("open", open_)):
            rates = interleaved_rates(candidates, rounds, min_time)
            entry: dict[str, Any] = {k: spread(v, 1e6, 1) for k, v in rates.items()}
            entry["unit"] = "MB/s"
            if "cython" in rates:
                entry["cython_vs_bare"] = ratios(rates["cython"], rates["bare_cffi"])
            entry["python_vs_bare"] = ratios(rates["python"], rates["bare_cffi"])
            results[f"{name}_{label}"] = entry
    return results


def _compile_baseline() -> ctypes.CDLL:
    source = os.path.join(os.path.dirname(__file__), "baseline.c")
    directory = tempfile.mkdtemp(prefix="txtezosp2p-bench-")
    library = os.path.join(directory, "baseline.so")
    subprocess.run(
        ["gcc", "-O3", "-shared", "-fPIC", "-o", library, source],
        check=True,
        stdout=sys.stderr,
    )
    return ctypes.CDLL(library)


def pow_benchmarks(rounds: int, min_time: float) -> dict[str, Any]:
    compiled = _backend.compiled_cbox()
    baseline = _compile_baseline()
    mine_c = baseline.mine
    mine_c.restype = ctypes.c_ulonglong
    mine_c.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulonglong,
    ]
    blake2b = int(
        ffi.cast("uintptr_t", ffi.addressof(lib, "crypto_generichash_blake2b_salt_personal"))
    )
    public_key = os.urandom(32)
    never = PowTarget.of_difficulty(256.0).le_bytes  # only an all-zero hash passes
    batch = 200_000
    cores = os.cpu_count() or 1

    def c_loop() -> int:
        stamp = ctypes.create_string_buffer(os.urandom(24), 24)
        return int(mine_c(blake2b, public_key, stamp, never, batch))

    def module_loop(module: Any, count: int = batch) -> Callable[[], int]:
        def run() -> int:
            return int(module.mine(public_key, bytearray(os.urandom(24)), never, count))

        return run

    def parallel(run: Callable[[], int]) -> Callable[[], int]:
        def all_cores() -> int:
            totals = [0] * cores

            def work(index: int) -> None:
                totals[index] = run()

            threads = [threading.Thread(target=work, args=(i,)) for i in range(cores)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sum(totals)

        return all_cores

    candidates: dict[str, Callable[[], int]] = {
        "c_loop_1_core": c_loop,
        "c_loop_all_cores": parallel(c_loop),
        "python_1_core": module_loop(_backend.cbox_py, 5_000),
    }
    if compiled is not None:
        candidates["cython_1_core"] = module_loop(compiled)
        candidates["cython_all_cores"] = parallel(module_loop(compiled))
    rates = interleaved_rates(candidates, rounds, min_time)
    result: dict[str, Any] = {k: spread(v, 1e6, 3) for k, v in rates.items()}
    result["unit"] = "M hashes/s"
    result["cores"] = cores
    if compiled is not None:
        result["cython_vs_c_per_core"] = ratios(rates["cython_1_core"], rates["c_loop_1_core"])
        result["cython_all_cores_vs_1_core"] = ratios(
            rates["cython_all_cores"], rates["cython_1_core"]
        )
    return result
