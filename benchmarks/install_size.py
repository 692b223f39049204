"""What an install of FaceGate costs on disk: wheels installed into fresh virtual environments, each one's
site-packages measured (as `du` counts it), split into its big parts, then deleted. Prints a Markdown table.

Run: `python benchmarks/install_size.py [--before REF] [--only default|cpu] [--cpu-torch "PIP ARGS"] [--keep]
[--workdir DIR]`.

Rows, each in a fresh `python3 -m venv`:
- before, default: the wheel of git REF (e.g. main), as `pip install facegate-*.whl` (only with --before);
- default: the wheel of this tree, as `pip install facegate-*.whl`: pip picks torch from PyPI, the CUDA build
  with its nvidia-* and triton packages, on a machine with no GPU too;
- CPU torch: first `pip install <--cpu-torch>`, then the wheel of this tree. The default --cpu-torch is PyTorch's
  own CPU index, `torch torchvision --index-url https://download.pytorch.org/whl/cpu`; where that is out of reach,
  name a CPU build pip can see (a local wheel folder: "torch==2.13.0+cpu torchvision==0.28.0").

"torchvision loads" says whether `import torchvision` works in the venv: PyPI's torchvision is a CUDA build that
needs torch's CUDA libraries (libtorch_cuda.so), so beside a CPU torch it needs the CPU torchvision of the same
index.

The wheels are built with `pip wheel . --no-deps` (a git REF from `git archive` into a temporary folder). pip
runs with --no-cache-dir, so nothing stays behind but the printed table (with --keep the venvs stay, for a smoke
test).
Not a test: it installs gigabytes and takes minutes.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTORCH_CPU = "torch torchvision --index-url https://download.pytorch.org/whl/cpu"
# the parts of site-packages worth naming, by the top-level names they install
PARTS = {
    "CUDA libraries": ("nvidia", "triton", "cuda", "cuda_bindings", "cuda_pathfinder"),
    "torch, torchvision": ("torch", "torchvision", "torchvision.libs", "functorch", "torchgen"),
    "OpenCV": ("cv2", "opencv_python.libs", "opencv_python_headless.libs"),
    "dlib's models": ("face_recognition_models",),
    "matplotlib": ("matplotlib", "mpl_toolkits", "fontTools", "kiwisolver", "contourpy"),
}


@dataclass(frozen=True)
class Variant:
    name: str
    wheel: Path
    first: tuple[str, ...] = ()  # pip arguments installed before the wheel (a CPU torch)


def run(command: list[str], cwd: Path | None = None) -> None:
    print("+", shlex.join(command), file=sys.stderr, flush=True)
    subprocess.run(command, cwd=cwd, check=True)


def build_wheel(source: Path, out: Path) -> Path:
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-q", "-w", str(out), str(source)])
    return next(out.glob("facegate-*.whl"))


def wheel_of_ref(ref: str, workdir: Path) -> Path:
    """The wheel of a git commit, built from its files alone (git archive), not this work tree."""
    tree = workdir / f"tree-{ref}"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return build_wheel(tree, workdir / f"wheel-{ref}")


def kib(path: Path) -> int:
    out = subprocess.run(["du", "-sk", str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def measure(site: Path) -> dict[str, int]:
    """KiB in all and per part (what no part names is "the rest")."""
    sizes = {"site-packages": kib(site)}
    for part, names in PARTS.items():
        sizes[part] = sum(kib(site / name) for name in names if (site / name).exists())
    sizes["the rest"] = sizes["site-packages"] - sum(sizes[part] for part in PARTS)
    return sizes


def install(variant: Variant, venv: Path, python: str) -> tuple[dict[str, int], bool]:
    """The venv's sizes, and whether torchvision imports in it (MTCNN and the backbones need it)."""
    run([python, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir", "-q"]
    if variant.first:
        run([*pip, *variant.first])
    run([*pip, str(variant.wheel)])
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import torchvision"], capture_output=True, text=True)
    if check.returncode:
        print(check.stderr.strip().splitlines()[-1], file=sys.stderr)
    return measure(site_packages(venv)), check.returncode == 0


def table(results: dict[str, tuple[dict[str, int], bool]]) -> str:
    columns = ["site-packages", *PARTS, "the rest"]
    lines = ["| install | " + " | ".join(columns) + " | torchvision loads |", "|---|" + "---:|" * len(columns) + "---|"]
    for name, (sizes, loads) in results.items():
        cells = " | ".join(_mb(sizes[column]) for column in columns)
        lines.append(f"| {name} | {cells} | {'yes' if loads else 'no'} |")
    return "\n".join(lines)


def _mb(kib_count: int) -> str:
    if kib_count == 0:
        return "-"
    return f"{kib_count / 1024**2:.2f} GB" if kib_count >= 1024**2 else f"{kib_count / 1024:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="also a git ref's wheel, default install (e.g. main)")
    parser.add_argument("--only", choices=["default", "cpu"], help="measure only this install of this tree")
    parser.add_argument("--cpu-torch", default=PYTORCH_CPU, help=f"pip arguments for a CPU torch ({PYTORCH_CPU})")
    parser.add_argument("--python", default="python3", help="the interpreter that makes the venvs")
    parser.add_argument("--workdir", type=Path, help="where the wheels and venvs go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the venvs (and wheels) for a smoke test")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="install-size-", dir=args.workdir))
    try:
        after = build_wheel(ROOT, workdir / "wheel")
        variants = [Variant("default", after), Variant("CPU torch", after, tuple(shlex.split(args.cpu_torch)))]
        variants = [v for v in variants if args.only is None or (v.name == "default") == (args.only == "default")]
        if args.before:
            variants.insert(0, Variant(f"before ({args.before}), default", wheel_of_ref(args.before, workdir)))
        results = {}
        for number, variant in enumerate(variants):
            venv = workdir / f"venv{number}"
            results[variant.name] = install(variant, venv, args.python)
            print(f"{variant.name}: {_mb(results[variant.name][0]['site-packages'])} in {venv}", file=sys.stderr)
            if not args.keep:
                shutil.rmtree(venv)
        print(table(results))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
