# -*- test-case-name: tests.test_session -*-
"""
A test kit for applications built on txtezosp2p: fixed identities, fresh
identities that skip or miss the proof of work, and a session
configuration for tests (sandbox versions, byte-string messages).

The identities are public test identities (published with TezEdge), with
proof-of-work levels 26 and 36, so they pass any default target without
mining.  Never use them on a real network.
"""

from __future__ import annotations

import os
from typing import Any

from .identity import Identity
from .session import SessionConfig
from .wire.crypto import check_proof_of_work, public_key_of_secret
from .wire.encoding import BytesCodec
from .wire.ids import PeerId
from .wire.versions import Versions

#: Proof-of-work level 26 (``idrRoknJh9zwEePNswF3MPGFzmKaVp``).
IDENTITY_A = Identity.from_json(
    {
        "peer_id": "idrRoknJh9zwEePNswF3MPGFzmKaVp",
        "public_key": "5fd7ba1d15650abc9a510c37a8bee566b708fe6577f0d832b903e8f13d71c94a",
        "secret_key": "213d61d6e41b443bec6bf0d00f17f59dfb4bdca409c9c03887cc5196be12502e",
        "proof_of_work_stamp": "4b1354dcfc087e52c8fb510317b9464c297b8a55b79bfc95",
    }
)
#: Proof-of-work level 36 (``idt6jzf5Sj4MVXTzxtwXUmJpsHR1bf``).
IDENTITY_B = Identity.from_json(
    {
        "peer_id": "idt6jzf5Sj4MVXTzxtwXUmJpsHR1bf",
        "public_key": "6e699289a794e629a13335c6fb7cfe6ee143c29609b020a49b5a575593824459",
        "secret_key": "1053658cc2676b1aa59558b4b693bb77bbce6cbbcb6f2129ed703b056515bd17",
        "proof_of_work_stamp": "657ef08d3a806354c1a310b64b86a13a79f76302d249995f",
    }
)

#: The versions Octez's own socket tests announce.
SANDBOX_VERSIONS = Versions("SANDBOXED_TEZOS")


def unchecked_identity() -> Identity:
    """
    A fresh identity whose stamp is *not* mined: a cheap identity for
    sessions whose proof-of-work target is 0.
    """
    secret = os.urandom(32)
    public = public_key_of_secret(secret)
    return Identity(PeerId.of_public_key(public), public, secret, os.urandom(24))


def weak_identity(below: float = 16.0) -> Identity:
    """A fresh identity whose stamp misses ``below`` (for proof-of-work failures)."""
    while True:
        identity = unchecked_identity()
        if not check_proof_of_work(identity.public_key, identity.proof_of_work_stamp, below):
            return identity


def session_config(identity: Identity, **overrides: Any) -> SessionConfig:
    """
    A session configuration for tests: sandbox versions, byte-string
    messages, proof-of-work target 16, advertised port 9732.
    """
    params: dict[str, Any] = {
        "identity": identity,
        "versions": SANDBOX_VERSIONS,
        "codec": BytesCodec(),
        "pow_target": 16.0,
        "advertised_port": 9732,
    }
    params.update(overrides)
    return SessionConfig(**params)
