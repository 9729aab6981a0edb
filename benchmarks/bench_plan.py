"""Seconds to build a sparse table's propagation plan and run one product with it, and the plan's bytes,
per density.

DSL rebuilds the plan after every prune-and-grow update (the positions change), so this is the part of an
update's cost that grows with the graph. Each density builds the plan of a fresh random table of the dataset's
size ``--repeats`` times (a new mask each time) and records the median, with the table's slots in position
order (``sorted``: a fresh table) and in no order (``shuffled``: a table after updates, whose grown entries
took the pruned ones' slots), as ``--slots`` says. One build at the largest density before all of them, not
timed, warms the process up. ``workspace_bytes`` is the plan of the last repeat's mask (seed
``--repeats`` - 1); three masks of one density differ by under 0.5% in it on LastFM.

    python benchmarks/bench_plan.py --dataset gowalla --root data --device cpu --threads 2

Run it against an older checkout with ``PYTHONPATH=<checkout>`` to compare.
"""

from __future__ import annotations

import gc
import statistics
import time

import torch
from common import base_parser, count, density_level, machine, parse, read_dataset, sync, write_csv

from dslgraph.data import load_dataset, propagation_graph
from dslgraph.sparse import SparseEmbedding


def main() -> None:
    parser = base_parser(__doc__, "docs/benchmarks/plan_build.csv")
    parser.add_argument("--densities", type=density_level, nargs="+", default=[0.5, 0.2, 0.1, 0.05])
    parser.add_argument("--dim", type=count, default=64)
    parser.add_argument("--repeats", type=count, default=3)
    parser.add_argument("--slots", nargs="+", choices=["sorted", "shuffled"], default=["sorted", "shuffled"])
    args, device = parse(parser)
    adj = propagation_graph(read_dataset(parser, args, load_dataset)).to(device)
    # untimed: a process's first build also pays for its kernels' first launches (on an H200 0.199 s against
    # 0.020 s, in the 15th session's first row, whose median of 2 it made 5x the build's) and, at the largest
    # density, for the allocator's first requests of the largest buffers
    SparseEmbedding(adj.size(0), args.dim, max(args.densities)).to(device).propagate(adj)
    rows = []
    for density in args.densities:
        for slots in args.slots:
            rows.append(measure(adj, density, slots, device, args))
            print(rows[-1], flush=True)
            write_csv(rows, args.output)


def measure(adj, density: float, slots: str, device: torch.device, args) -> dict:
    seconds, plan_bytes = [], 0
    for seed in range(args.repeats):
        generator = torch.Generator().manual_seed(seed)
        table = SparseEmbedding(adj.size(0), args.dim, density, generator=generator)
        if slots == "shuffled":
            with torch.no_grad():
                table.positions.copy_(table.positions[torch.randperm(table.nnz, generator=generator)])
        table = table.to(device)
        gc.collect()
        sync(device)
        start = time.perf_counter()
        table.propagate(adj)  # builds the plan, then one product with it
        sync(device)
        seconds.append(time.perf_counter() - start)
        plan_bytes = table.workspace_bytes() if hasattr(table, "workspace_bytes") else ""
    return {
        "dataset": args.dataset,
        **machine(device),
        "density": density,
        "slots": slots,
        "dim": args.dim,
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds": " ".join(f"{s:.3f}" for s in seconds),
        "workspace_bytes": plan_bytes,
    }


if __name__ == "__main__":
    main()
