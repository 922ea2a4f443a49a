# -*- test-case-name: tests.test_bench_stats -*-
"""
The statistics shared by the benchmarks (medians with min and max over
rounds, ratios round by round) and the generated tables of
docs/performance.md.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from bench import report, stats


def s(median: float, low: float, high: float, rounds: int = 5) -> dict[str, Any]:
    return {"median": median, "min": low, "max": high, "rounds": rounds}


def full_run() -> dict[str, Any]:
    """The shape of ``python -m bench``'s document for a full run."""
    chunk = {
        "bare_cffi": s(1792.0, 1700.0, 1800.0),
        "python": s(1580.0, 1500.0, 1600.0),
        "cython": s(1803.0, 1750.0, 1810.0),
        "unit": "MB/s",
        "cython_vs_bare": s(1.006, 0.99, 1.02),
        "python_vs_bare": s(0.882, 0.85, 0.9),
    }
    state = {
        "time": "2026-01-01 00:00 UTC",
        "cpu": "Some CPU",
        "cores": 2,
        "load_average": [0.05, 0.1, 0.2],
        "python": "3.11.7",
        "twisted": "26.10.0",
        "pynacl": "1.6.2",
    }
    return {
        "backend": {"cbox": "cython", "quota": "cython"},
        "rounds": 5,
        "state_before": state,
        "state_after": dict(state, load_average=[1.9, 1.0, 0.5]),
        "chunks": {f"{op}_{size}": chunk for op in ("seal", "open") for size in ("64KiB", "4KiB")},
        "pow": {
            "c_loop_1_core": s(5.31, 5.2, 5.4),
            "c_loop_all_cores": s(10.5, 10.0, 10.6),
            "python_1_core": s(1.76, 1.7, 1.8),
            "cython_1_core": s(5.62, 5.5, 5.7),
            "cython_all_cores": s(10.78, 10.5, 10.9),
            "unit": "M hashes/s",
            "cores": 2,
            "cython_vs_c_per_core": s(1.059, 1.0, 1.1),
            "cython_all_cores_vs_1_core": s(1.918, 1.9, 1.95),
        },
        "handshakes": {
            "handshakes_per_round": 2000,
            "concurrency": 64,
            "failed": 0,
            "per_second": s(2217.0, 1676.0, 2300.0),
        },
        "stream": {
            "message_size": 65536,
            "messages": 16000,
            "encrypted_MBps": s(820.0, 786.0, 863.0),
            "bare_twisted_MBps": s(3300.0, 3200.0, 3400.0),
            "encrypted_vs_bare": s(0.25, 0.24, 0.26),
            "encrypted_vs_libsodium_open": 0.458,
        },
        "scheduler": {
            "overhead_no_cap": {
                "rounds": 11,
                "without_scheduler_MBps": s(1000.0, 900.0, 1100.0),
                "with_scheduler_no_cap_MBps": s(990.0, 900.0, 1100.0),
                "overhead": s(0.01, -0.07, 0.07),
                "cpu_s_per_GB_without": s(2.1, 2.0, 2.2),
                "cpu_s_per_GB_with": s(2.11, 2.0, 2.2),
                "cpu_overhead": s(0.004, -0.01, 0.02),
            },
            "overhead_in_memory": {
                "rounds": 7,
                "cpu_s_per_GB_without": s(2.16, 2.1, 2.2),
                "cpu_s_per_GB_with": s(2.166, 2.1, 2.2),
                "overhead": s(0.0025, -0.001, 0.006),
            },
            "caps": [
                {
                    "cap_MBps": cap,
                    "achieved_MBps": cap * 0.9995,
                    "achieved_vs_cap": 0.9995,
                    "worst_period_vs_cap": 0.99,
                }
                for cap in (1.0, 10.0, 100.0)
            ],
            "aggregate": [
                {
                    "connections": n,
                    "aggregate_MBps": s(1000.0, 900.0, 1100.0),
                    "vs_1_connection": 1.0,
                }
                for n in (1, 10, 100, 1000)
            ],
        },
    }


class StatsTests(SynchronousTestCase):
    def test_spread(self) -> None:
        self.assertEqual(
            stats.spread([3e6, 1e6, 2e6, 10e6], scale=1e6),
            {"median": 2.5, "min": 1.0, "max": 10.0, "rounds": 4},
        )
        self.assertEqual(stats.spread([1.23456], digits=3)["median"], 1.235)
        self.assertRaises(ValueError, stats.spread, [])

    def test_median_not_best(self) -> None:
        """One lucky round moves the max, not the figure."""
        self.assertEqual(stats.spread([100, 101, 99, 250, 100])["median"], 100)

    def test_ratios_round_by_round(self) -> None:
        """Each round's candidate is divided by the same round's baseline."""
        ratio = stats.ratios([2.0, 4.0, 9.0], [1.0, 4.0, 3.0])
        self.assertEqual(ratio, {"median": 2.0, "min": 1.0, "max": 3.0, "rounds": 3})
        self.assertRaises(ValueError, stats.ratios, [1.0], [1.0, 2.0])

    def test_median_of(self) -> None:
        self.assertEqual(stats.median(s(5, 1, 9)), 5.0)
        self.assertEqual(stats.median(7), 7.0)

    def test_interleaved_rates(self) -> None:
        order: list[str] = []

        def candidate(name: str) -> Any:
            def run() -> int:
                order.append(name)
                return 10

            return run

        rates = stats.interleaved_rates({"a": candidate("a"), "b": candidate("b")}, 3, 0.0)
        self.assertEqual(order, ["a", "b"] * 3)
        self.assertEqual([len(rates["a"]), len(rates["b"])], [3, 3])
        self.assertTrue(all(rate > 0 for rate in rates["a"] + rates["b"]))


class ReportTests(SynchronousTestCase):
    def test_tables(self) -> None:
        text = report.tables(full_run())
        self.assertTrue(text.startswith(report.BEGIN) and text.endswith(report.END))
        self.assertIn("load average (1, 5, 15 min) 0.05 / 0.1 / 0.2 before the run", text)
        self.assertIn(
            "| seal 64 KiB: Cython / bare libsodium | 1803 / 1792 MB/s = "
            "**1.006** (0.990\N{EN DASH}1.020) | ≥ 0.95 |",
            text,
        )
        self.assertIn("**2217** (1676\N{EN DASH}2300) | ≥ 5000 |", text)
        self.assertIn("820 / 1792 = **0.458**", text)
        self.assertIn("**+0.25%** (-0.10% to +0.60%)", text)
        self.assertIn("| aggregate, 1000 connections (MB/s; vs 1 connection) |", text)
        rows = [line for line in text.splitlines() if line.startswith("| ")]
        self.assertTrue(all(line.count("|") == 4 for line in rows), rows)

    def test_handshake_baseline_rows(self) -> None:
        """CPU per end of the handshakes, of their bare Twisted baseline, and the difference."""
        run = full_run()
        run["handshakes"].update(
            {
                "dialling_cpu_us": s(240.0, 230.0, 250.0),
                "accepting_cpu_us": s(200.0, 190.0, 210.0),
                "bare_exchange": {
                    "failed": 0,
                    "per_second": s(6900.0, 6800.0, 7000.0),
                    "dialling_cpu_us": s(80.0, 79.0, 82.0),
                    "accepting_cpu_us": s(60.0, 50.0, 70.0),
                },
                "session_dialling_cpu_us": s(160.0, 150.0, 170.0),
                "session_accepting_cpu_us": s(140.0, 130.0, 150.0),
            }
        )
        text = report.tables(run)
        self.assertIn("| handshake CPU, dialling end (µs) | 240 (230\N{EN DASH}250) |", text)
        self.assertIn(
            "| bare Twisted exchange of the same bytes, accepting end (µs) "
            "| 60 (50\N{EN DASH}70) |",
            text,
        )
        self.assertIn("| CPU a session adds, accepting end (µs) | 140 (130\N{EN DASH}150) |", text)
        rows = [line for line in text.splitlines() if line.startswith("| ")]
        self.assertTrue(all(line.count("|") == 4 for line in rows), rows)

    def test_update(self) -> None:
        page = f"# Title\n\nbefore\n\n{report.BEGIN}\nold\n{report.END}\n\nafter\n"
        updated = report.update(page, full_run())
        self.assertTrue(updated.startswith("# Title\n\nbefore\n\n" + report.BEGIN))
        self.assertTrue(updated.endswith(report.END + "\n\nafter\n"))
        self.assertNotIn("\nold\n", updated)
        self.assertEqual(report.update(updated, full_run()), updated)
        self.assertRaises(ValueError, report.update, "no block", full_run())

    def test_update_file(self) -> None:
        path = os.path.abspath(self.mktemp())
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"{report.BEGIN}\n{report.END}\n")
        partial = full_run()
        del partial["scheduler"]
        self.assertRaises(ValueError, report.update_file, path, partial)
        report.update_file(path, full_run())
        with open(path, encoding="utf-8") as handle:
            self.assertIn("handshakes per second", handle.read())

    def test_performance_page_has_the_block(self) -> None:
        """docs/performance.md can be regenerated by ``--update-docs``."""
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(root, "docs", "performance.md"), encoding="utf-8") as handle:
            text = handle.read()
        self.assertEqual(text.count(report.BEGIN), 1)
        self.assertEqual(text.count(report.END), 1)
        report.update(text, full_run())

    def test_machine_state(self) -> None:
        state = report.machine_state()
        self.assertEqual(len(state["load_average"]), 3)
        self.assertEqual(state["cores"], os.cpu_count())
        self.assertRegex(state["time"], r"\A\d{4}-\d\d-\d\d \d\d:\d\d UTC\Z")
