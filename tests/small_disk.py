"""A small real filesystem for the full-disk tests: a tmpfs of a given size mounted in a test's folder (needs root
and a kernel that lets it mount, as on the CI machine; skipped otherwise), which `fill` leaves with just the room
asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PAGE = 4096  # tmpfs counts room in pages

# `python -c FILL_SCRIPT FILE`: append zeros to FILE until the disk is full (the shell actuator of the CLI test)
FILL_SCRIPT = (
    "import os, sys\n"
    "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND)\n"
    "try:\n"
    "    while os.write(fd, bytes(65536)): pass\n"
    "except OSError: pass\n"
)


class SmallDisk:
    """A mounted tmpfs: `path` is its root; `.filler` takes the room that `fill` uses up."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / ".filler"

    def free(self) -> int:
        """Bytes a write may still take."""
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Use up the disk's room but `leave` bytes (rounded down to whole pages)."""
        subprocess.run([sys.executable, "-c", FILL_SCRIPT, str(self.filler)], check=True)
        if leave:
            size = self.filler.stat().st_size
            os.truncate(self.filler, max(0, size - leave // PAGE * PAGE))
        assert self.free() <= leave, (self.free(), leave)

    def empty(self) -> None:
        """Give the filler's room back."""
        self.filler.unlink(missing_ok=True)


@contextmanager
def small_disk(folder: Path, size_kb: int) -> Iterator[SmallDisk]:
    """A tmpfs of `size_kb` mounted at `folder` for the block's duration; skips the test where mounting is not
    allowed (not root, or a container without the capability)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a small filesystem (tmpfs) needs root to mount")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or f'exit {done.returncode}'}")
    try:
        yield SmallDisk(folder)
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)
