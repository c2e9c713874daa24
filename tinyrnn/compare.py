"""Two versions of the engine timed against each other, alternating: ``bench --against``.

A change to the engine is measured against the engine before it, not against PyTorch: on a
shared machine a few per cent are lost in the noise of two separate runs. Here each version
runs in a worker process of its own (its checkout on ``PYTHONPATH``), both hold the same
workload's model and data, and the two take turns, one epoch of ``batches`` batches each,
``rounds`` times, the order swapped every round. Reported: each side's median epoch, and the
median and range of the paired ratios (this tree / the other), where a machine that slows
down for a while slows both members of a pair.

    python -m tinyrnn bench --against ../tinyrnn-before --workloads W3 --batches 4 --rounds 10

A worker (``python -m tinyrnn.compare WORKLOAD BATCHES [--quick]``) builds the workload's
model (``bench.TinyrnnTrainer``), warms it up, prints ``ready`` and then times one epoch per
line read from its standard input, printing the seconds.
"""

from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import sys
import time


def worker(name: str, batches: int, quick: bool = False) -> None:
    """Serve timed epochs of ``batches`` batches of workload ``name`` (see the module)."""
    from tinyrnn import bench

    workload = {w.name: w for w in bench.WORKLOADS}[name]
    trainer = bench.TinyrnnTrainer(workload, *workload.make_data(quick))
    samples = batches * workload.batch_size
    trainer.epoch(samples)                                    # warm-up
    print("ready", flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        trainer.epoch(samples)
        print(time.perf_counter() - start, flush=True)


def start_worker(tree: pathlib.Path, name: str, batches: int, quick: bool) -> subprocess.Popen:
    """A worker process running the engine of checkout ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, "-m", "tinyrnn.compare", name, str(batches)] + (["--quick"] if quick else [])
    process = subprocess.Popen(command, cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError(f"the engine in {tree} did not start the {name} workload")
    return process


def time_epoch(process: subprocess.Popen) -> float:
    process.stdin.write("go\n")
    process.stdin.flush()
    return float(process.stdout.readline())


def compare(other: str | os.PathLike, name: str, batches: int = 4, rounds: int = 10,
            quick: bool = False) -> dict:
    """Time workload ``name`` in this engine and in the checkout ``other``, alternating (see
    the module). Returns the epochs, each side's median and the paired ratios this / other."""
    this_tree = pathlib.Path(__file__).resolve().parent.parent
    other_tree = pathlib.Path(other).resolve()
    if not (other_tree / "tinyrnn" / "__init__.py").exists():
        raise FileNotFoundError(f"{other_tree} is not a checkout of tinyrnn (no tinyrnn/__init__.py in it)")
    workers = [start_worker(tree, name, batches, quick) for tree in (this_tree, other_tree)]
    times: list[list[float]] = [[], []]
    try:
        for r in range(rounds):
            for side in ((0, 1) if r % 2 == 0 else (1, 0)):
                times[side].append(time_epoch(workers[side]))
    finally:
        for process in workers:
            process.stdin.close()
            process.wait()
    ratios = [mine / theirs for mine, theirs in zip(*times)]
    return {"workload": name, "batches": batches, "rounds": rounds, "this": str(this_tree),
            "other": str(other_tree), "this_times": times[0], "other_times": times[1],
            "this_s": statistics.median(times[0]), "other_s": statistics.median(times[1]),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def format_comparison(result: dict) -> str:
    return (f"{result['workload']:<12} this {result['this_s']:.3f} s, other {result['other_s']:.3f} s "
            f"(median of {result['rounds']} epochs of {result['batches']} batches); paired ratio "
            f"this / other {result['ratio']:.3f}x "
            f"(range {result['ratio_min']:.3f}-{result['ratio_max']:.3f})")


if __name__ == "__main__":
    worker(sys.argv[1], int(sys.argv[2]), quick="--quick" in sys.argv[3:])
