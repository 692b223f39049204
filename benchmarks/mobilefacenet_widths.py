"""How wide a MobileFaceNet fits the 15 ms budget: parameters, float16 MB and one-face embedding time per scale.

Run: `python benchmarks/mobilefacenet_widths.py [--scales 1 1.25 1.5 2] [--rounds 10] [--repeats 50] [--threads 2]`.
Untrained networks (time does not depend on the weights), one 112x112 face, channels_last as the embedder runs
them. The scales take turns, `repeats` forward passes each per round, so a noisy spell of a shared CPU falls on all
of them alike; prints the median and p95 per scale and the median's ratio to the first scale's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from tqdm import tqdm

from gate.model.backbones import MobileFaceNet


def time_forward(network: torch.nn.Module, repeats: int, warmup: int = 5) -> list[float]:
    face = (torch.rand(1, 3, 112, 112) * 2 - 1).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(warmup):
            network(face)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            network(face)
            times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.25, 1.5, 2.0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    networks = {s: MobileFaceNet(128, s).eval().to(memory_format=torch.channels_last) for s in args.scales}
    times: dict[float, list[float]] = {s: [] for s in args.scales}
    for _ in tqdm(range(args.rounds), desc="rounds", unit="round"):
        for scale, network in networks.items():
            times[scale] += time_forward(network, args.repeats)
    first = statistics.median(times[args.scales[0]])
    print(f"{'scale':>6} {'params (M)':>11} {'MB fp16':>8} {'median ms':>10} {'p95 ms':>8} {'ratio':>6}")
    for scale, network in networks.items():
        params = sum(p.numel() for p in network.parameters())
        median, p95 = statistics.median(times[scale]), statistics.quantiles(times[scale], n=20)[-1]
        row = f"{scale:6.2f} {params / 1e6:11.2f} {params * 2 / 1e6:8.1f} {median:10.2f} {p95:8.2f}"
        print(f"{row} {median / first:6.2f}")


if __name__ == "__main__":
    main()
