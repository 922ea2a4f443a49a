# -*- test-case-name: tests.test_fuzz_decoders -*-
"""
The decoder fuzz campaign of ``bench/fuzz_decoders.py``, small and seeded:
every network decoder on a few thousand mutated real encodings raises only
typed errors, and the compiled and pure chunk openers agree on every input.
The full campaign (10^6 inputs per decoder) is in docs/hardening.md.
"""

from __future__ import annotations

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from bench import fuzz_decoders as F
from txtezosp2p import _backend
from txtezosp2p.wire.encoding import ConnectionMessage, MessageEncoding, P2PMessageCodec

INPUTS = 3000


class CampaignTests(SynchronousTestCase):
    def check(self, name: str, seed: int) -> F.Result:
        result = F.run_one(name, INPUTS, seed)
        self.assertEqual(result.inputs, INPUTS)
        self.assertEqual((result.untyped, result.disagreements), (0, 0), result.examples)
        self.assertEqual(result.decoded + result.typed, INPUTS)
        # the mutations reach the decoder's checks, and some inputs still decode
        self.assertTrue(result.reasons, name)
        self.assertGreater(result.decoded, 0, name)
        return result

    def test_every_decoder(self) -> None:
        for seed, name in enumerate(target.name for target in F.TARGETS):
            self.check(name, seed + 100)

    def test_chunk_twins(self) -> None:
        if _backend.compiled_cbox() is None:
            raise SkipTest("no compiled module to compare with its twin")
        result = self.check(F.CHUNKS, 7)
        self.assertIn("decipher_error", result.reasons)

    def test_bounds_reached(self) -> None:
        """Lists one over their bound and inflated lengths are among the inputs."""
        for name in ("ack", "p2p_message"):
            result = F.run_one(name, INPUTS, 3)
            self.assertIn("List_too_long", result.reasons)
            self.assertIn("Size_limit_exceeded", result.reasons)

    def test_untyped_errors_are_caught(self) -> None:
        """A decoder that raises something else than a typed error is reported."""

        def sloppy(data: bytes) -> object:
            return ConnectionMessage.decode(data) if len(data) > 90 else data[90]

        target = F.Target("sloppy", sloppy, F.connection_message_seeds)
        result = F.fuzz(target, 500, 1)
        self.assertGreater(result.untyped, 0)
        self.assertFalse(result.ok)
        [(_, description), *_] = result.examples
        self.assertIn("IndexError", description)

    def test_wrapped_untyped_errors_are_caught(self) -> None:
        """
        The envelope turns what an application case raises into a typed
        error; the campaign still counts an untyped cause as a bug.
        """

        def fragile(payload: bytes) -> bytes:
            if payload[:1] == b"\xff":
                return bytes([payload[10**6]])  # an IndexError: a bug in the case's decoder
            return payload

        codec = P2PMessageCodec(
            [MessageEncoding(tag=0x1000, title="Fragile", type=bytes, encode=bytes, decode=fragile)]
        )
        seeds = [b"\x10\x00" + bytes([first]) * 20 for first in (0, 0xFF)]
        result = F.fuzz(F.Target("fragile", codec.decode, lambda: seeds), 500, 1)
        self.assertGreater(result.untyped, 0)
        self.assertTrue(any("IndexError" in d for _, d in result.examples), result.examples)

    def test_deterministic(self) -> None:
        first = F.run_one("ack", 500, 42)
        second = F.run_one("ack", 500, 42)
        self.assertEqual(
            (first.decoded, first.typed, first.reasons),
            (second.decoded, second.typed, second.reasons),
        )

    def test_campaign_splits_and_merges(self) -> None:
        [result] = F.campaign(["metadata"], 1001, seed=5, jobs=1)
        self.assertEqual(result.inputs, 1001)
        self.assertTrue(result.ok)

    def test_mutations_bounded(self) -> None:
        """No mutation grows an input past 64 KiB."""
        import random

        rng = random.Random(9)
        seeds = F.p2p_message_seeds()
        sizes = [len(F.mutate(rng, seeds)) for _ in range(2000)]
        self.assertLessEqual(max(sizes), F.MAX_INPUT)
        self.assertIn(0, sizes)
