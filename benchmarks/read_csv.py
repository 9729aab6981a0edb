"""CPU seconds and peak memory of reading your own interactions: :meth:`InteractionDataset.from_csv`,
what ``dslgraph train --data-file`` runs, on a generated ``user,item,rating,time`` file of Amazon-book's
size (3 M lines, 52,643 users, 91,599 items, ids drawn uniformly; ``--ids text`` writes ``u123`` /
``i456`` instead of numbers), with a random split (``from_csv(FILE, time_col="time")``).

Each run is a process of its own, on one thread: CPU seconds (``time.process_time``) compare across a
loaded machine where wall seconds do not, and the peak resident memory is the call's, above what the
imports left. The file goes to a temporary folder, never into the repository. To compare two versions
of dslgraph, run it against each checkout and append to one table:

    PYTHONPATH=<an older checkout> python benchmarks/read_csv.py --label before \\
        --output docs/benchmarks/read_csv_cpu.csv
    python benchmarks/read_csv.py --label after --append --output docs/benchmarks/read_csv_cpu.csv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import check_output, machine, write_rows

try:
    import resource
except ImportError:  # Windows: its rows leave the peak memory out (None), as they do the load average
    resource = None

MB = 2**20 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, in kB on Linux


def write_file(path: Path, lines: int, users: int, items: int, ids: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    user, item = rng.integers(0, users, lines), rng.integers(0, items, lines)
    rating, stamp = rng.integers(1, 6, lines), rng.integers(900_000_000, 1_000_000_000, lines)
    prefix = ("u", "i") if ids == "text" else ("", "")
    with path.open("w") as f:
        f.write("user,item,rating,time\n")
        for start in range(0, lines, 500_000):
            part = slice(start, start + 500_000)
            columns = (user[part].tolist(), item[part].tolist(), rating[part].tolist(), stamp[part].tolist())
            f.writelines(f"{prefix[0]}{u},{prefix[1]}{i},{r},{t}\n" for u, i, r, t in zip(*columns))


def worker(path: str) -> None:
    """One timed ``from_csv`` call; prints its row as JSON."""
    import torch

    torch.set_num_threads(1)
    import dslgraph
    from dslgraph.data import InteractionDataset

    base = _peak_memory()
    cpu, wall = time.process_time(), time.perf_counter()
    dataset = InteractionDataset.from_csv(path, time_col="time")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = _peak_memory()
    row = {
        "dslgraph": str(Path(dslgraph.__file__).parents[1]),
        **machine(torch.device("cpu")),  # the seconds of one machine compare with its own only
        "users": len(dataset.user_ids),
        "items": len(dataset.item_ids),
        "cpu_seconds": round(cpu, 2),
        "wall_seconds": round(wall, 2),
        "peak_mb_above_imports": None if peak is None else round((peak - base) / MB),
        "load_1min": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None,  # not on Windows
    }
    print(json.dumps(row), flush=True)


def _peak_memory() -> int | None:
    """The process's peak resident memory so far in ``ru_maxrss``'s units (kB on Linux, bytes on macOS, which
    :data:`MB` converts); None without ``resource``."""
    return None if resource is None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=3_000_000)
    parser.add_argument("--users", type=int, default=52_643)
    parser.add_argument("--items", type=int, default=91_599)
    parser.add_argument("--ids", choices=["integer", "text"], default="integer")
    parser.add_argument("--runs", type=int, default=2, help="processes timed, one after another")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default="", help="a name for this version of dslgraph in the table")
    parser.add_argument("--output", default="docs/benchmarks/read_csv_cpu.csv")
    parser.add_argument("--append", action="store_true", help="add the rows to --output's")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    small = next((name for name in ("lines", "users", "items", "runs") if getattr(args, name) < 1), None)
    if small is not None:  # checked before the file is generated (seconds at the default size)
        parser.error(f"--{small} must be at least 1, got {getattr(args, small)}")
    check_output(parser, "--output", args.output)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "interactions.csv"
        write_file(path, args.lines, args.users, args.items, args.ids, args.seed)
        for run in range(args.runs):
            done = subprocess.run(
                [sys.executable, __file__, "--worker", str(path)], capture_output=True, text=True
            )
            if done.returncode:  # its error, which capture_output holds, not CalledProcessError's exit status
                raise SystemExit(
                    f"run {run}: the worker failed (exit {done.returncode}):\n{done.stderr.strip()}"
                )
            row = {"label": args.label, "lines": args.lines, "ids": args.ids, "run": run}
            rows.append({**row, **json.loads(done.stdout.splitlines()[-1])})
            print(rows[-1], flush=True)
    write_rows(rows, args.output, args.append)


if __name__ == "__main__":
    main()
