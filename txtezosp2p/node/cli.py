# -*- test-case-name: tests.test_cli -*-
"""
The ``tezos-p2p`` command line, modelled on ``octez-node identity`` and
``octez-codec``:

* ``tezos-p2p identity generate|show|check`` — ``identity.json`` files;
* ``tezos-p2p codec list|decode|encode`` — the wire encodings, binary as
  lowercase hex, values as Octez's JSON;
* ``tezos-p2p session decode`` — decrypt and print both directions of a
  recorded connection, given one side's identity;
* ``tezos-p2p sandbox`` — a small network of nodes on loopback, with a
  live table of their connections;
* ``tezos-p2p rpc``, ``peers``, ``connections``, ``points``, ``stat``,
  ``ban``, ``unban``, ``trust``, ``kick`` — a running node's admin HTTP API
  (:mod:`txtezosp2p.node.admin_client`).

Errors print one line on standard error and exit with status 1; a
traceback is a bug.

This module holds the parser, ``main``, ``identity`` and ``sandbox``; the
other command groups live beside it: :mod:`~txtezosp2p.node.cli_codec`,
:mod:`~txtezosp2p.node.cli_session`, :mod:`~txtezosp2p.node.cli_crawl`,
with what they share in :mod:`~txtezosp2p.node.cli_args`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from .. import __version__
from ..identity import (
    DEFAULT_EXPECTED_POW,
    IdentityFile,
    MiningProgress,
    expected_attempts,
    generate_identity,
)
from ..wire.crypto import PowTarget
from ..wire.errors import P2PError
from .admin_client import AdminClientError, add_commands
from .admin_client import run as run_admin
from .cli_args import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, CommandError, difficulty, positive
from .cli_codec import add_codec_commands
from .cli_crawl import add_crawl_command, run_crawl
from .cli_session import add_session_commands
from .config import default_data_dir
from .simulate import add_simulate_command

# -- identity ---------------------------------------------------------------


def _identity_store(args: argparse.Namespace) -> IdentityFile:
    if args.file is not None:
        return IdentityFile(args.file)
    return IdentityFile.in_directory(args.data_dir)


def _progress_printer(
    stream: TextIO, difficulty: float, clock: Callable[[], float] = time.monotonic
) -> Callable[[int, float], None]:
    """
    Mining progress on ``stream``: redrawn in place on a terminal, a line
    every 10 seconds otherwise (a log, a pipe).
    """
    terminal = stream.isatty()
    last = [clock()]

    def show(attempts: int, elapsed: float) -> None:
        line = f"mining: {MiningProgress(difficulty, attempts, elapsed).describe()}"
        if terminal:
            stream.write(f"\r{line}\x1b[K")
        elif clock() - last[0] >= 10.0:
            last[0] = clock()
            stream.write(line + "\n")
        else:
            return
        stream.flush()

    return show


def cmd_identity_generate(args: argparse.Namespace, out: TextIO) -> int:
    store = _identity_store(args)
    if store.exists() and not args.force:
        raise CommandError(f"{store.path} already exists (use --force to replace it)")
    cancel = threading.Event()
    sys.stderr.write(
        f"mining an identity of difficulty {args.target:g}: about "
        f"{expected_attempts(args.target) / 1e6:,.1f} M stamps to try on average\n"
    )
    progress = _progress_printer(sys.stderr, args.target)
    terminal = sys.stderr.isatty()
    try:
        identity = generate_identity(
            args.target, workers=args.workers, progress=progress, cancel=cancel
        )
    except KeyboardInterrupt:
        cancel.set()
        if terminal:
            sys.stderr.write("\n")
        sys.stderr.write("tezos-p2p: identity generation cancelled\n")
        return EXIT_INTERRUPTED
    if terminal:
        sys.stderr.write("\n")
    store.save(identity, overwrite=args.force)
    out.write(f"Stored the new identity ({identity.peer_id}) into '{store.path}'.\n")
    return EXIT_OK


def cmd_identity_show(args: argparse.Namespace, out: TextIO) -> int:
    identity = _identity_store(args).load()
    out.write(json.dumps(identity.public_json(), indent=2) + "\n")
    return EXIT_OK


def cmd_identity_check(args: argparse.Namespace, out: TextIO) -> int:
    store = _identity_store(args)
    identity = store.load()  # checks the keys and the peer id
    if not identity.check(PowTarget.of_difficulty(args.target)):
        raise CommandError(
            f"the proof of work of {identity.peer_id} does not reach difficulty {args.target}"
        )
    out.write(
        f"Peer_id {identity.peer_id} proves a proof of work of difficulty "
        f"{args.target} and its keys match.\n"
    )
    return EXIT_OK


# -- main -------------------------------------------------------------------


def _identity_location(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="data directory holding identity.json (default: ~/.tezos-p2p)",
    )
    where.add_argument("--file", help="path of the identity file")


def cmd_sandbox(args: argparse.Namespace, out: TextIO) -> int:
    from .sandbox import SandboxOptions, run

    if args.maintenance_idle_time <= 0 or args.interval <= 0:
        raise CommandError("durations must be positive")
    for name in ("base_port", "admin_base_port"):
        port = getattr(args, name)
        if port and not 0 < port <= 0xFFFF - args.nodes:
            raise CommandError(f"--{name.replace('_', '-')} leaves no room for every node")
    return run(
        SandboxOptions(
            nodes=args.nodes,
            base_dir=args.dir,
            base_port=args.base_port,
            connections=args.connections,
            expected_pow=args.expected_pow,
            maintenance_idle_time=args.maintenance_idle_time,
            interval=args.interval,
            admin_base_port=args.admin_base_port,
        ),
        out,
    )


def cmd_admin(args: argparse.Namespace, out: TextIO) -> int:
    return run_admin(args, out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tezos-p2p", description="Tools for the Tezos peer-to-peer layer."
    )
    parser.add_argument("--version", action="version", version=f"txtezosp2p {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    identity = commands.add_parser("identity", help="generate, show or check an identity")
    identity_commands = identity.add_subparsers(dest="identity_command", required=True)
    generate = identity_commands.add_parser("generate", help="mine a new identity")
    _identity_location(generate)
    generate.add_argument(
        "--target",
        type=difficulty,
        default=DEFAULT_EXPECTED_POW,
        help="proof-of-work difficulty (default 26)",
    )
    generate.add_argument(
        "--workers", type=int, default=None, help="mining threads (default: one per core)"
    )
    generate.add_argument("--force", action="store_true", help="replace an existing file")
    generate.set_defaults(run=cmd_identity_generate)
    show = identity_commands.add_parser("show", help="print the public part of an identity")
    _identity_location(show)
    show.set_defaults(run=cmd_identity_show)
    check = identity_commands.add_parser(
        "check", help="exit 0 if the keys match and the stamp reaches the target"
    )
    _identity_location(check)
    check.add_argument(
        "--target",
        type=difficulty,
        default=DEFAULT_EXPECTED_POW,
        help="proof-of-work difficulty (default 26)",
    )
    check.set_defaults(run=cmd_identity_check)

    add_codec_commands(commands)
    add_session_commands(commands)

    add_crawl_command(commands)

    sandbox = commands.add_parser(
        "sandbox",
        help="run a small network of nodes on loopback and watch it",
        description=(
            "Start N nodes on 127.0.0.1, each with its own data directory, all "
            "bootstrapped through the first; print a live table of each node's "
            "connections and known points.  Ctrl-C stops every node cleanly."
        ),
    )
    sandbox.add_argument("--nodes", type=positive, default=5, help="how many nodes (default 5)")
    sandbox.add_argument(
        "--dir", default=None, help="base directory of the data directories (default: a new one)"
    )
    sandbox.add_argument(
        "--base-port",
        type=int,
        default=0,
        help="listening port of the first node, the others follow (default: any free ports)",
    )
    sandbox.add_argument(
        "--connections",
        type=positive,
        default=None,
        help="expected connections of each node (default: from the number of nodes)",
    )
    sandbox.add_argument(
        "--expected-pow", type=difficulty, default=0.0, help="proof of work (default 0)"
    )
    sandbox.add_argument(
        "--maintenance-idle-time",
        type=float,
        default=10.0,
        help="seconds between maintenance steps (default 10)",
    )
    sandbox.add_argument(
        "--interval", type=float, default=1.0, help="seconds between table refreshes (default 1)"
    )
    sandbox.add_argument(
        "--admin-base-port",
        type=int,
        default=None,
        help=(
            "serve each node's admin API on 127.0.0.1, node i on PORT+i "
            "(0: ports chosen by the system; default: no admin API)"
        ),
    )
    sandbox.set_defaults(run=cmd_sandbox)

    add_commands(commands, cmd_admin)
    add_simulate_command(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``tezos-p2p`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    stream = out if out is not None else sys.stdout
    try:
        result: int = args.run(args, stream)
        return result
    except (CommandError, AdminClientError, P2PError, ValueError, OSError) as exc:
        _fail(str(exc) or type(exc).__name__)
    except KeyboardInterrupt:
        sys.stderr.write("tezos-p2p: interrupted\n")
        return EXIT_INTERRUPTED


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"tezos-p2p: {message.splitlines()[0] if message else 'error'}\n")
    raise SystemExit(EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "CommandError",
    "build_parser",
    "main",
    "run_crawl",
]
