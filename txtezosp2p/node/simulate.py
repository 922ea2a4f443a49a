# -*- test-case-name: tests.test_simulation -*-
"""
``tezos-p2p simulate SCENARIO``: run one of the network simulator's
scenarios (:mod:`txtezosp2p.simulation`) and print its report, a table on a
terminal or JSON with ``--json``.  docs/simulation.md explains each
scenario and how to read the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

from ..limits import ADMISSION_POLICIES
from ..simulation import SCENARIOS, SimulationConfig, simulation_limits

#: Each scenario's own options: (flag, type, default, help).
_OPTIONS: dict[str, list[tuple[str, type, Any, str]]] = {
    "formation": [
        ("--periods", float, 10.0, "periods to run after the last node joined (default 10)"),
        (
            "--join-rate",
            float,
            None,
            "nodes joining per second, one after the other (default: all at once)",
        ),
    ],
    "churn": [
        ("--fraction", float, 0.3, "share of the nodes leaving each period (default 0.3)"),
        ("--periods", int, 10, "periods of churn (default 10)"),
        ("--warmup", float, 5.0, "periods of formation before the churn (default 5)"),
        ("--downtime", float, 0.25, "periods a leaving node stays away (default 0.25)"),
        ("--settle", float, 3.0, "calm periods after the churn (default 3)"),
    ],
    "partition": [
        ("--warmup", float, 5.0, "periods of formation before the split (default 5)"),
        ("--split", float, 3.0, "periods the two halves stay apart (default 3)"),
        ("--after", float, 5.0, "periods run after the heal (default 5)"),
    ],
    "sybil": [
        (
            "--fraction",
            float,
            0.1,
            "attackers, as a share of the honest nodes (default 0.1)",
        ),
        ("--subnets", int, 4, "/16 networks the attackers come from (default 4)"),
        ("--warmup", float, 5.0, "periods of honest formation first (default 5)"),
        ("--periods", float, 10.0, "periods run once the attackers joined (default 10)"),
    ],
    "broadcast": [
        ("--warmup", float, 5.0, "periods of formation first (default 5)"),
        ("--messages", int, 1, "floods, from random nodes, one period apart (default 1)"),
    ],
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_simulate_command(commands: Any, run: Any = None) -> None:
    """Add ``simulate`` and its scenarios to the ``tezos-p2p`` subcommands."""
    simulate = commands.add_parser(
        "simulate",
        help="simulate a network of N nodes on a simulated clock",
        description=(
            "Run N complete P2P stacks in one process, joined by in-memory links on a "
            "simulated clock, through a scenario; print the report (docs/simulation.md)."
        ),
    )
    scenarios = simulate.add_subparsers(dest="scenario", required=True)
    for name, function in SCENARIOS.items():
        parser = scenarios.add_parser(name, help=(function.__doc__ or "").strip().splitlines()[0])
        parser.add_argument("--nodes", type=_positive_int, default=100, help="honest nodes")
        parser.add_argument(
            "--connections",
            type=_positive_int,
            default=10,
            help="expected connections N: min N/2, max 3N/2, as octez-node (default 10)",
        )
        parser.add_argument(
            "--period",
            type=float,
            default=120.0,
            help="maintenance period in seconds (Octez's default: 120)",
        )
        parser.add_argument(
            "--admission",
            choices=ADMISSION_POLICIES,
            default="elastic",
            help="admission policy (default elastic; octez: Octez's exact rule)",
        )
        parser.add_argument(
            "--bootstrap",
            type=_positive_int,
            default=1,
            help="the first K nodes are every joining node's --peer list (default 1)",
        )
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument(
            "--json", action="store_true", help="print the report as JSON instead of a table"
        )
        parser.add_argument(
            "--quiet", action="store_true", help="no progress lines on standard error"
        )
        for flag, kind, default, text in _OPTIONS[name]:
            parser.add_argument(flag, type=kind, default=default, help=text)
        parser.set_defaults(run=run or cmd_simulate)


def cmd_simulate(args: argparse.Namespace, out: TextIO) -> int:
    """Run the chosen scenario and print its report."""
    # the stacks log as a node does; only errors reach the terminal
    globalLogBeginner.beginLoggingTo(
        [
            FilteringLogObserver(
                textFileLogObserver(sys.stderr),
                [LogLevelFilterPredicate(defaultLogLevel=LogLevel.error)],
            )
        ],
        redirectStandardIO=False,
    )
    config = SimulationConfig(
        nodes=args.nodes,
        seed=args.seed,
        bootstrap=min(args.bootstrap, args.nodes),
        limits=simulation_limits(args.connections, period=args.period, admission=args.admission),
    )
    options = {
        flag.lstrip("-").replace("-", "_"): getattr(args, flag.lstrip("-").replace("-", "_"))
        for flag, *_ in _OPTIONS[args.scenario]
    }

    def progress(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    quiet = args.quiet or not sys.stderr.isatty()
    report = SCENARIOS[args.scenario](config, progress=None if quiet else progress, **options)
    if args.json:
        out.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        out.write(report.table() + "\n")
    return 0


__all__ = ["add_simulate_command", "cmd_simulate"]
