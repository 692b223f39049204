"""Compare two runs of tools/record_numbers.sh, ignoring wall-clock timings: exit 0 when every number agrees.

Run: `python3 tools/compare_numbers.py BEFORE AFTER`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TIMING = ("ms", "enrol_runs", "seconds", "latency", "wall", "time", "command", "video_ms", "per_frame")
RESULTS = ("lfw_pairsDevTest.json", "gate-small/gate.json", "study/study.json")


def strip(value: object) -> object:
    """The value without any key that names a timing (or the command line)."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if not any(t in k for t in TIMING)}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def main() -> int:
    before, after = Path(sys.argv[1]), Path(sys.argv[2])
    same = True
    for name in RESULTS:
        a, b = (strip(json.loads((run / name).read_text(encoding="utf-8"))) for run in (before, after))
        print(f"{name}: {'identical' if a == b else 'DIFFERENT'}")
        for key in sorted(set(a) | set(b)) if a != b else []:
            if a.get(key) != b.get(key):
                print(f"   {key}: {str(a.get(key))[:150]} | {str(b.get(key))[:150]}")
        same &= a == b
    tables = [(run / "demo" / "table.csv").read_text(encoding="utf-8") for run in (before, after)]
    print(f"demo/table.csv: {'identical' if tables[0] == tables[1] else 'DIFFERENT'}")
    return 0 if same and tables[0] == tables[1] else 1


if __name__ == "__main__":
    sys.exit(main())
