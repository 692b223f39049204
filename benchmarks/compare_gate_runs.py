"""Two `facegate evaluate-gate` runs side by side: strangers let in, misidentifications and FRR at each N/M policy
and threshold, each with its 95 % interval, and whether the second run's rate lies inside the first's interval
(or below it, or above it: every rate here is an error rate).

Run: `python benchmarks/compare_gate_runs.py A/gate.json B/gate.json [--names A B] [--early-deny]` on two runs of the
same walk-ups (same --seed, --employees, --strangers), e.g. one with `[detector] follow = false`, one with it on.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

RATES = (("far", "strangers in"), ("misidentification", "misidentified"), ("frr", "FRR"))


def _cell(rate: dict) -> str:
    low, high = rate["ci95"]
    return f"{rate['count']}/{rate['of']} [{low:.1%}, {high:.1%}]"


def _where(reference: dict, other: dict) -> str:
    """'inside' the reference's 95 % interval, or 'lower' / 'higher' than it (every rate here is an error rate)."""
    low, high = reference["ci95"]
    if other["rate"] < low - 1e-12:
        return "lower"
    return "higher" if other["rate"] > high + 1e-12 else "inside"


def rows(first: dict, second: dict, early_deny: bool) -> tuple[list[list[str]], Counter]:
    """The table's rows (policy, threshold, then each rate in both runs) and how the second run's rates lie
    against the first's intervals (Counter of inside / lower / higher)."""

    def key(row: dict) -> tuple:
        return row["votes_needed"], row["window"], row["threshold_label"], row.get("early_deny", True)

    others = {key(row): row for row in second["grid"]}
    table, where = [], Counter()
    for row in first["grid"]:
        if row.get("early_deny", True) != early_deny or key(row) not in others:
            continue
        other = others[key(row)]
        cells = [f"{row['votes_needed']}/{row['window']}", row["threshold_label"]]
        for name, _ in RATES:
            place = _where(row[name], other[name])
            where[place] += 1
            cells += [_cell(row[name]), _cell(other[name]) + ("" if place == "inside" else f" ({place})")]
        table.append(cells)
    return table, where


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs=2, help="the two runs' gate.json")
    parser.add_argument("--names", nargs=2, default=["A", "B"])
    parser.add_argument("--early-deny", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    first, second = (json.loads(path.read_text(encoding="utf-8")) for path in args.runs)
    table, where = rows(first, second, args.early_deny)
    header = ["N/M", "threshold"] + [f"{label} {name}" for _, label in RATES for name in args.names]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in table:
        print("| " + " | ".join(cells) + " |")
    for name, run in zip(args.names, (first, second), strict=True):
        ms = run["latency_ms"]["all_frames"]
        print(f"{name}: per-frame p50 {ms['p50']:.1f} ms, p95 {ms['p95']:.1f} ms, mean {ms['mean']:.1f} ms")
    print(
        f"{args.names[1]}'s error rates against {args.names[0]}'s 95 % intervals: {where['inside']} inside, "
        f"{where['lower']} lower, {where['higher']} higher (of {sum(where.values())})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
