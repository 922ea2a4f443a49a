# -*- test-case-name: tests.test_log_calls -*-
"""
Every ``twisted.logger`` call in the package names, as keyword arguments,
each field its format string uses: a missing field turns the event into
"Unable to format event" in the node's log.
"""

from __future__ import annotations

import ast
import string
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import txtezosp2p

LEVELS = {"debug", "info", "warn", "error", "critical", "failure"}


def missing_fields(source: str) -> list[tuple[int, str]]:
    """(line, field) of every format field not passed to its logger call."""
    missing = []
    for node in ast.walk(ast.parse(source)):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LEVELS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            continue
        if any(keyword.arg is None for keyword in node.keywords):
            continue  # **fields: cannot tell
        passed = {keyword.arg for keyword in node.keywords}
        for _, field, _, _ in string.Formatter().parse(node.args[0].value):
            name = (field or "").split(".")[0].split("[")[0]
            if name and name not in passed and not name.startswith("log_"):
                missing.append((node.lineno, name))
    return missing


class LogCallTests(SynchronousTestCase):
    def test_every_field_is_passed(self) -> None:
        package = Path(txtezosp2p.__file__).parent
        found = {
            str(path.relative_to(package)): missing
            for path in sorted(package.rglob("*.py"))
            if (missing := missing_fields(path.read_text(encoding="utf-8")))
        }
        self.assertEqual(found, {})

    def test_event_names_are_constants(self) -> None:
        """Every ``event=`` of the package names a constant of ``_events``, none a literal."""
        package = Path(txtezosp2p.__file__).parent
        literals = [
            f"{path.relative_to(package)}:{node.lineno}"
            for path in sorted(package.rglob("*.py"))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.keyword)
            and node.arg == "event"
            and isinstance(node.value, ast.Constant)
        ]
        self.assertEqual(literals, [])

    def test_detects_a_missing_field(self) -> None:
        source = 'log.info("too many ({connections})", event="x", connections_to_kill=1)\n'
        self.assertEqual(missing_fields(source), [(1, "connections")])
