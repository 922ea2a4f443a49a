"""
``python -m bench.overlay [--quick] [--only NAME ...]``: the overlay's bars,
measured with the network simulator (``tezos-p2p simulate``) for both
admission policies, each run in its own process (so that its peak memory is
its own).  Prints one JSON document; ``--markdown FILE`` prints the tables
of docs/performance.md from such a document instead.  A full run takes
about an hour on two cores.

Sections:

* ``small``: nodes joining one after the other 5 s apart, each given only the
  first as a peer: 12 nodes with ``--connections 6`` (the network of the
  issue that exposed Octez's flaw), 20 and 50 nodes with ``--connections
  10``; ten seeds each;
* ``sequential``: the same at 1,000 nodes (one per second);
* ``churn``: 1,000 nodes, 30% leave and rejoin every period for 10 periods;
* ``partition``: 1,000 nodes split in two halves for 3 periods, then healed;
* ``sybil``: 200 honest nodes, then 20 attackers from four /16 networks
  (every attacker dials every honest node and answers every Bootstrap with
  the others: the cost grows with the square of the size, and 1,000 nodes
  take well over an hour);
* ``broadcast``: a flood from one node of a formed 1,000-node network;
* ``scale``: a 30-period formation-and-churn run of 1,000 nodes, and a
  formation of 10,000 nodes (wall time and peak memory).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

SECTIONS = ("small", "sequential", "churn", "partition", "sybil", "broadcast", "scale")
POLICIES = ("elastic", "octez")


def simulate(*args: str) -> dict[str, Any]:
    """One ``tezos-p2p simulate`` run in a fresh process; its JSON report."""
    command = [sys.executable, "-m", "txtezosp2p.node.cli", "simulate", *args, "--json"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def small(quick: bool) -> list[dict[str, Any]]:
    rows = []
    seeds = range(3 if quick else 10)
    for nodes, connections in ((12, 6), (20, 10), (50, 10)):
        for policy in POLICIES:
            runs = [
                simulate(
                    "formation",
                    "--nodes",
                    str(nodes),
                    "--connections",
                    str(connections),
                    "--join-rate",
                    "0.2",
                    "--periods",
                    "5",
                    "--admission",
                    policy,
                    "--seed",
                    str(seed),
                )
                for seed in seeds
            ]
            rows.append(
                {
                    "nodes": nodes,
                    "connections": connections,
                    "admission": policy,
                    "seeds": len(runs),
                    "starved_total": sum(r["starved_nodes"] for r in runs),
                    "runs_with_starved": sum(1 for r in runs if r["starved_nodes"]),
                    "starved_max": max(r["starved_nodes"] for r in runs),
                    "handshakes_per_node_median": sorted(
                        r["handshakes_per_node"]["median"] for r in runs
                    )[len(runs) // 2],
                    "max_degree_ever": max(r["max_degree_ever"] for r in runs),
                }
            )
    return rows


def per_policy(*args: str) -> dict[str, Any]:
    return {policy: simulate(*args, "--admission", policy) for policy in POLICIES}


def sections(quick: bool) -> dict[str, Any]:
    nodes = "300" if quick else "1000"
    return {
        "small": lambda: small(quick),
        "sequential": lambda: per_policy(
            "formation", "--nodes", nodes, "--join-rate", "1", "--periods", "5"
        ),
        "churn": lambda: per_policy(
            "churn", "--nodes", nodes, "--fraction", "0.3", "--periods", "10", "--warmup", "5"
        ),
        "partition": lambda: per_policy("partition", "--nodes", nodes),
        "sybil": lambda: per_policy(
            "sybil", "--nodes", "100" if quick else "200", "--fraction", "0.1"
        ),
        "broadcast": lambda: per_policy("broadcast", "--nodes", nodes),
        "scale": lambda: {
            "formation_and_churn_1000_30_periods": simulate(
                "churn", "--nodes", nodes, "--warmup", "5", "--periods", "22", "--settle", "3"
            ),
            "formation_10000": simulate(
                "formation",
                "--nodes",
                "2000" if quick else "10000",
                "--periods",
                "3",
                "--bootstrap",
                "10",
            ),
        },
    }


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _spread(summary: dict[str, Any]) -> str:
    return " / ".join(_cell(summary.get(key)) for key in ("median", "p99", "max"))


#: Per section: (row title, how to read it from one run's report).
_ROWS: dict[str, list[tuple[str, Any]]] = {
    "common": [
        ("starved nodes", lambda r: r["starved_nodes"]),
        ("below min_connections at the end", lambda r: r["below_min_now"]),
        (
            "periods to min_connections (median / p99 / max)",
            lambda r: _spread(r["time_to_min_connections_periods"]),
        ),
        (
            "periods to recover min_connections (median / p99 / max)",
            lambda r: _spread(r["recovery_to_min_connections_periods"]),
        ),
        ("most connections of a node, ever", lambda r: r["max_degree_ever"]),
        ("nodes ever above max_connections", lambda r: r["nodes_ever_above_max_connections"]),
        ("components at the end", lambda r: r["components"]),
        ("diameter (sampled)", lambda r: r["diameter_sampled"]),
        ("handshakes per node (median / p99 / max)", lambda r: _spread(r["handshakes_per_node"])),
        ("wall time (s)", lambda r: r["wall_seconds"]),
        ("peak memory (MiB)", lambda r: r["peak_rss_mib"]),
    ],
    "partition": [
        ("components during the split", lambda r: r["components_during_split"]),
        (
            "periods from the heal to one component",
            lambda r: r["periods_to_one_component_after_heal"],
        ),
    ],
    "sybil": [
        ("attackers", lambda r: r["parameters"]["attackers"]),
        (
            "honest nodes keeping a majority of honest peers",
            lambda r: r["honest_nodes_with_honest_majority"],
        ),
        (
            "honest share of an honest node's peers (median)",
            lambda r: r["honest_share_of_connections"]["median"],
        ),
        ("honest nodes without an honest peer", lambda r: r["honest_nodes_without_honest_peer"]),
    ],
    "broadcast": [
        ("reach", lambda r: r["broadcasts"][0]["reach"]),
        ("hops to the farthest node", lambda r: max(int(h) for h in r["broadcasts"][0]["hops"])),
        ("seconds to 90% of the nodes", lambda r: r["broadcasts"][0]["seconds_to_90%"]),
    ],
}


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The tables of docs/performance.md's overlay section, from ``main``'s JSON."""
    out: list[str] = []
    if "small" in results:
        seeds = results["small"][0]["seeds"] if results["small"] else 0
        out += [f"#### small networks, nodes joining 5 s apart ({seeds} seeds each)", ""]
        out += _table(
            [
                "nodes",
                "--connections",
                "admission",
                "runs with starved nodes",
                "starved nodes (total)",
                "starved (most in a run)",
                "handshakes per node (median)",
                "most connections ever",
            ],
            [
                [
                    row["nodes"],
                    row["connections"],
                    row["admission"],
                    f"{row['runs_with_starved']} of {row['seeds']}",
                    row["starved_total"],
                    row["starved_max"],
                    row["handshakes_per_node_median"],
                    row["max_degree_ever"],
                ]
                for row in results["small"]
            ],
        )
        out.append("")
    for section in ("sequential", "churn", "partition", "sybil", "broadcast"):
        if section not in results:
            continue
        runs = results[section]
        parameters = next(iter(runs.values()))["parameters"]
        described = ", ".join(
            f"{key} {value}" for key, value in parameters.items() if key not in ("admission",)
        )
        out += [f"#### {section} ({described})", ""]
        rows = _ROWS.get(section, []) + _ROWS["common"]
        out += _table(
            ["", *runs], [[title, *(read(run) for run in runs.values())] for title, read in rows]
        )
        out.append("")
    if "scale" in results:
        out += ["#### scale", ""]
        out += _table(
            [
                "run",
                "nodes",
                "simulated periods",
                "starved",
                "components",
                "wall time (s)",
                "peak memory (MiB)",
            ],
            [
                [
                    name,
                    run["parameters"]["nodes"],
                    run["simulated_periods"],
                    run["starved_nodes"],
                    run["components"],
                    run["wall_seconds"],
                    run["peak_rss_mib"],
                ]
                for name, run in results["scale"].items()
            ],
        )
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overlay")
    parser.add_argument("--quick", action="store_true", help="smaller networks, fewer seeds")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument(
        "--markdown",
        metavar="FILE",
        help="print the Markdown tables of a JSON document this command printed, and stop",
    )
    args = parser.parse_args(argv)
    if args.markdown:
        with open(args.markdown, encoding="utf-8") as file:
            sys.stdout.write(markdown(json.load(file)) + "\n")
        return 0
    chosen = sections(args.quick)
    results = {name: chosen[name]() for name in (args.only or SECTIONS)}
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
