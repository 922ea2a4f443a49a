# -*- test-case-name: tests.test_cli -*-
"""
What every ``tezos-p2p`` command shares: exit statuses, the error a
command raises for its user, argument types and bounded file reading.
"""

from __future__ import annotations

import argparse

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A user error: printed as one line, exit status 1."""


def read_file(path: str, limit: int = 1 << 30) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise CommandError(f"{path} is larger than {limit} bytes")
    return data


def difficulty(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 256.0:
        raise argparse.ArgumentTypeError("the difficulty must be within [0, 256]")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value
