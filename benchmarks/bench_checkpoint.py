"""Seconds to read a checkpoint: ``torch.load`` alone against :func:`dslgraph.train.load_checkpoint`, which
checks the archive's CRC-32 checksums first (damaged bytes inside a stored tensor load as wrong weights
otherwise) and then calls ``torch.load``.

The checkpoint holds one float32 tensor of ``--rows`` x ``--dim`` (default: 140,000 x 192, 108 MB, about an
Amazon-book LightGCN table with Adam's two moments). Each figure is the median of ``--repeats`` reads, after
one that warms the page cache; both reads must return the same tensor.

    python benchmarks/bench_checkpoint.py --threads 1
    python benchmarks/bench_checkpoint.py --device cuda --output docs/benchmarks/checkpoint_load_gpu.csv
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import base_parser, count, machine, parse, sync, write_csv

from dslgraph.train import load_checkpoint, save_checkpoint


def main() -> None:
    parser = base_parser(__doc__, "docs/benchmarks/checkpoint_load_cpu.csv", dataset=False)
    parser.add_argument("--rows", type=count, default=140_000)
    parser.add_argument("--dim", type=count, default=192)
    parser.add_argument("--repeats", type=count, default=5)
    args, device = parse(parser)
    weight = torch.randn(args.rows, args.dim, generator=torch.Generator().manual_seed(0))
    readers = {  # onto --device, as a resumed run reads its checkpoint
        "torch.load": lambda path: torch.load(path, map_location=device, weights_only=True),
        "load_checkpoint": lambda path: load_checkpoint(path, map_location=device),
    }
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(
            {"model": {"weight": weight}, "optimizer": {}, "epoch": 1, "config": {}}, Path(folder) / "c.pt"
        )
        for name, read in readers.items():
            if not torch.equal(read(path)["model"]["weight"].cpu(), weight):  # the warm-up read, checked
                raise AssertionError(f"{name} read back another tensor")
            seconds = []
            for _ in range(args.repeats):
                sync(device)
                start = time.perf_counter()
                read(path)
                sync(device)  # the copies onto a GPU
                seconds.append(time.perf_counter() - start)
            megabytes = round(path.stat().st_size / 1e6, 1)
            median = round(statistics.median(seconds), 4)
            rows.append({**machine(device), "reader": name, "megabytes": megabytes, "seconds": median})
            print(rows[-1], flush=True)
    write_csv(rows, args.output)


if __name__ == "__main__":
    main()
