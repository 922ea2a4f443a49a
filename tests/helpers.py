"""
Shared test fixtures: fixed identities, backend parametrisation, session
pairs over iosim.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import settings
from twisted.internet.task import Clock
from twisted.test import iosim

from txtezosp2p import _backend
from txtezosp2p.encoding import BytesCodec
from txtezosp2p.identity import Identity
from txtezosp2p.ids import Point
from txtezosp2p.session import Session, SessionConfig, Versions

settings.register_profile("ci", deadline=None, max_examples=200)
settings.load_profile("ci")

#: Public test identity (TezEdge ``docker/identities/identity_ocaml.json``), PoW level 26.
IDENTITY_A = Identity.from_json(
    {
        "peer_id": "idrRoknJh9zwEePNswF3MPGFzmKaVp",
        "public_key": "5fd7ba1d15650abc9a510c37a8bee566b708fe6577f0d832b903e8f13d71c94a",
        "secret_key": "213d61d6e41b443bec6bf0d00f17f59dfb4bdca409c9c03887cc5196be12502e",
        "proof_of_work_stamp": "4b1354dcfc087e52c8fb510317b9464c297b8a55b79bfc95",
    }
)
#: Public test identity (TezEdge ``light_node/etc/drone/identities/identity_1.json``), PoW level 36.
IDENTITY_B = Identity.from_json(
    {
        "peer_id": "idt6jzf5Sj4MVXTzxtwXUmJpsHR1bf",
        "public_key": "6e699289a794e629a13335c6fb7cfe6ee143c29609b020a49b5a575593824459",
        "secret_key": "1053658cc2676b1aa59558b4b693bb77bbce6cbbcb6f2129ed703b056515bd17",
        "proof_of_work_stamp": "657ef08d3a806354c1a310b64b86a13a79f76302d249995f",
    }
)

SANDBOX_VERSIONS = Versions("SANDBOXED_TEZOS")


def weak_identity() -> Identity:
    """A fresh identity whose stamp is almost surely below difficulty 16."""
    from txtezosp2p.crypto import check_proof_of_work, public_key_of_secret
    from txtezosp2p.ids import PeerId

    while True:
        secret = os.urandom(32)
        public = public_key_of_secret(secret)
        stamp = os.urandom(24)
        if not check_proof_of_work(public, stamp, 16.0):
            return Identity(PeerId.of_public_key(public), public, secret, stamp)


def backends() -> list[tuple[str, Any]]:
    """The crypto backends to test: the pure twin, and the compiled module if present."""
    found = [("python", _backend.cbox_py)]
    compiled = _backend.compiled_cbox()
    if compiled is not None:
        found.append(("cython", compiled))
    return found


def session_config(identity: Identity, **overrides: Any) -> SessionConfig:
    params: dict[str, Any] = {
        "identity": identity,
        "versions": SANDBOX_VERSIONS,
        "codec": BytesCodec(),
        "pow_target": 16.0,
        "advertised_port": 9732,
    }
    params.update(overrides)
    return SessionConfig(**params)


def connected_sessions(
    server_config: SessionConfig,
    client_config: SessionConfig,
    clock: Clock | None = None,
    point: Point | None = None,
) -> tuple[Session, Session, iosim.IOPump, Clock]:
    """An incoming and an outgoing session joined by iosim (not yet pumped)."""
    clock = clock or Clock()
    server = Session(server_config, clock, incoming=True)
    client = Session(
        client_config, clock, incoming=False, point=point or Point("127.0.0.1", 9732)
    )
    pump = iosim.connect(
        server,
        iosim.makeFakeServer(server),
        client,
        iosim.makeFakeClient(client),
        clock=clock,
    )
    return server, client, pump, clock
