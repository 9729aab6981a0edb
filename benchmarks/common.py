"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import csv
import itertools
import platform
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from dslgraph.cli import name_value
from dslgraph.data.io import write_then_rename


def sync(device: torch.device) -> None:
    """Waits for queued GPU work, so wall-clock times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def machine(device: torch.device) -> dict[str, object]:
    """Which device and how many CPU threads a row was measured with."""
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    return {"device": str(device), "hardware": name, "threads": torch.get_num_threads()}


def endless(batches):
    """The batches of epoch after epoch, for timing more iterations than one epoch has."""
    while True:
        yield from batches


def drawn(batches, device: torch.device) -> tuple[Iterator, float]:
    """``endless(batches)``, and the seconds its first epoch took to draw before its first batch (the
    shuffle, the epoch's negatives, their transfer to ``device``): work an epoch does once, which a mean
    over iterations leaves out."""
    it = endless(batches)
    sync(device)
    start = time.perf_counter()
    first = next(it)
    sync(device)
    return itertools.chain([first], it), time.perf_counter() - start


# Results land in docs/ and are compared across sessions: written beside and renamed, so that a benchmark
# killed mid-write (a device command's time limit) leaves the previous table or plot whole.


def write_csv(rows: list[dict], path: str | Path, columns: list[str] | None = None) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns or list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    write_then_rename(path, write)


def write_rows(rows: list[dict], path: str | Path, append: bool) -> None:
    """``rows`` as a CSV table at ``path``, after its earlier rows where ``append`` (columns united)."""
    path = Path(path)
    fields = list(dict.fromkeys(key for row in rows for key in row))
    if append and path.exists():
        with path.open(newline="") as f:
            earlier = list(csv.DictReader(f))
        fields = list(dict.fromkeys([*(earlier[0] if earlier else {}), *fields]))
        rows = earlier + rows
    # written beside and renamed (write_csv): killed mid-write, an --append run would lose the earlier rows
    write_csv(rows, path, fields)


def write_text(path: str | Path, text: str) -> None:
    write_then_rename(path, lambda tmp: tmp.write_text(text))


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def save_figure(fig, path: str | Path) -> None:
    """``fig.savefig`` through a temporary file, in the format ``path``'s suffix names."""
    write_then_rename(path, lambda tmp: fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".")))


def base_parser(doc: str, output: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: dataset, root, device, threads and the CSV to write."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="gowalla")
    parser.add_argument("--root", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--output", default=output)
    return parser


def parse(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, torch.device]:
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args, torch.device(args.device)


def add_settings_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE ...``: dslgraph settings, VALUE as JSON or text, parsed into ``(key, value)``."""
    parser.add_argument("--set", nargs="*", default=[], type=name_value, metavar="KEY=VALUE", help=help)
