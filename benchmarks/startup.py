"""Start-up time of the commands that need no network: `--help`, `enroll list/show/remove`, `events`.

Run: `python benchmarks/startup.py [--repeats 5] [--before DIR]`. Each command runs as a new process (`python -c
"from facegate.cli import main; main()" ...`) against a throwaway database holding one person, and is timed from
start to exit; the table gives the median and the slowest run, and whether the process loaded torch. `--before`
times the same commands from another checkout (e.g. `git worktree add /tmp/before 3742f99`: the tree before lazy
imports) with the same Python, side by side. `enroll remove` enrols its person again before every run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = (("--help",), ("enroll", "list"), ("enroll", "show", "E1"), ("events",), ("enroll", "remove", "E1", "-y"))
RUN = (
    "import sys; sys.path.insert(0, {tree!r}); from facegate.cli import main\n"
    "try:\n    main()\nfinally:\n    print('torch loaded:', 'torch' in sys.modules)"
)


ENROL = """
import sys
sys.path.insert(0, {tree!r})
try:  # gate/ in rooms
    from gate.model.card import SHIPPED_CARD, read_card
    from gate.store.database import Database
    from gate.store.schema import Person, Template
except ImportError:  # an older tree (--before), gate/ one flat folder
    from gate.model_card import SHIPPED_CARD, read_card
    from gate.store import Database, Person, Template
card = read_card(SHIPPED_CARD)
database = Database({url!r})
with database.session() as session:
    if session.query(Person).filter_by(employee_id="E1").first() is None:
        person = Person(employee_id="E1", name="Ada")
        person.templates.append(Template(embedding=bytes(4 * card.embedding_size), embedding_size=card.embedding_size,
            model_id=card.model_id, image_sha256="0" * 64, quality=0.99, source="ada.jpg"))
        session.add(person)
"""


def enrol_one(tree: Path, url: str) -> None:
    """One person with one (zero) template of the shipped model, written by the tree's own code (its schema)."""
    subprocess.run([sys.executable, "-c", ENROL.format(tree=str(tree), url=url)], check=True, timeout=300)


def time_command(tree: Path, config: Path, args: tuple[str, ...]) -> tuple[float, bool]:
    command = [sys.executable, "-c", RUN.format(tree=str(tree)), "--config", str(config), *args]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=config.parent, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {tree}: {done.stderr.strip()[-300:]}")
    return seconds, done.stdout.strip().endswith("True")


def measure(tree: Path, folder: Path, repeats: int) -> dict[tuple[str, ...], tuple[float, float, bool]]:
    config = folder / "config.toml"
    url = f"sqlite:///{folder}/gate.db"
    config.write_text(f'[database]\nurl = "{url}"\n[gallery]\nindex_path = "gallery.faiss"\n', encoding="utf-8")
    results = {}
    for args in COMMANDS:
        runs, torch_loaded = [], False
        for _ in range(repeats):
            enrol_one(tree, url)
            seconds, loaded = time_command(tree, config, args)
            runs.append(seconds)
            torch_loaded |= loaded
        results[args] = (statistics.median(runs), max(runs), torch_loaded)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout to time side by side")
    args = parser.parse_args()
    trees = {"this tree": REPO} | ({"before": args.before.resolve()} if args.before else {})
    measured = {}
    for label, tree in trees.items():
        with tempfile.TemporaryDirectory() as folder:
            measured[label] = measure(tree, Path(folder), args.repeats)
    header = "| command | " + " | ".join(f"{label}: median s | max s | torch" for label in trees) + " |"
    print(header)
    print("|---|" + "---|---|---|" * len(trees))
    for command in COMMANDS:
        cells = []
        for label in trees:
            median, slowest, loaded = measured[label][command]
            cells.append(f"{median:.2f} | {slowest:.2f} | {'yes' if loaded else 'no'}")
        print(f"| facegate {' '.join(command)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
