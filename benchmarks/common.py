"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from dslgraph.cli import name_value
from dslgraph.data import DATASETS, load_dataset
from dslgraph.data.io import write_then_rename
from dslgraph.train import resolve_device


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


class Epochs:
    """The batches of epoch after epoch, each epoch's draw before its first batch (the shuffle, the epoch's
    negatives, their transfer to ``device``) timed on its own (``draws``): work an epoch does once, which a
    time per iteration leaves out and a time per epoch adds once. The first epoch is drawn here."""

    def __init__(self, batches, device: torch.device) -> None:
        # a BPRBatches builds its negative sampler at its first draw: a run's setup, not an epoch's work
        getattr(batches, "sampler", None)
        self.batches, self.device = batches, device
        self.draws: list[float] = []
        epochs = self._endless()
        self._batches = itertools.chain([next(epochs)], epochs)

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        return next(self._batches)

    @property
    def drawing(self) -> float:
        """Seconds spent drawing so far, all epochs together: a timed span subtracts what fell into it."""
        return sum(self.draws)

    def _endless(self) -> Iterator:
        while True:
            sync(self.device)
            start = time.perf_counter()
            epoch = iter(self.batches)
            first = next(epoch)
            sync(self.device)
            self.draws.append(time.perf_counter() - start)
            yield first
            yield from epoch


def agree(
    what: str, results: dict[str, torch.Tensor | float], rtol: float = 1e-4, atol: float = 1e-6
) -> None:
    """Stops a benchmark whose variants, given the same inputs, do not compute the same thing: each of
    ``results`` (a variant's name -> its result) must be the first one's to within ``rtol`` of its largest
    magnitude (sums taken in another order differ most, relatively, where they cancel) plus ``atol``."""
    (first, expected), *others = results.items()
    expected = torch.as_tensor(expected).double()
    for name, result in others:
        result = torch.as_tensor(result).double()
        if result.shape != expected.shape:
            difference = f"shape {tuple(result.shape)} against {tuple(expected.shape)}"
        else:
            largest = (result - expected).abs().max().item()
            if largest <= rtol * expected.abs().max().item() + atol:
                continue
            difference = f"largest difference {largest:.3g}"
        raise RuntimeError(
            f"{what}: {name} does not compute what {first} does ({difference}); "
            "its timing would compare different work"
        )


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


def base_parser(doc: str, output: str, dataset: bool = True) -> argparse.ArgumentParser:
    """The options every benchmark takes: device, threads, the CSV to write and, for one that reads a
    ``dataset``, the dataset and its root (a benchmark of synthetic tensors takes neither, rather than
    ignoring them)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if dataset:
        parser.add_argument("--dataset", default="gowalla", choices=sorted(DATASETS))
        parser.add_argument("--root", default=None)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (CUDA when there is one)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--output", default=output)
    return parser


def count(text: str) -> int:
    """An argparse ``type``: an integer of at least 1 (repeats, steps, sizes), refused as the options are
    parsed, not by a division by zero or a median of nothing once the data has loaded."""
    value = int(text)  # not a number: argparse's "invalid count value"
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {value}")
    return value


def sparsity_level(text: str) -> float:
    """An argparse ``type``: a sparsity in (0, 1), refused as the options are parsed, not by DSL once the
    rows or runs before it are done (0 would run the dense model again, under a sparse one's name)."""
    value = float(text)  # not a number: argparse's "invalid sparsity_level value"
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a sparsity in (0, 1), got {value}")
    return value


def density_level(text: str) -> float:
    """An argparse ``type``: a density (the fraction of entries kept) in (0, 1], refused as parsed."""
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a density in (0, 1], got {value}")
    return value


def check_output(parser: argparse.ArgumentParser, flag: str, path: str | Path, folder: bool = False) -> None:
    """Refuses ``path`` (a file to write, or with ``folder`` a folder to make) as an argument error where it
    cannot be written: a benchmark would find out only when it writes its results, after the timing."""
    given, path = str(path), Path(path)
    if folder and path.exists() and not path.is_dir():
        parser.error(f"{flag} {given} is a file: give a folder")
    if not folder and (given.endswith(("/", os.sep)) or path.is_dir()):
        parser.error(f"{flag} {given} is a folder: give the path of a file")
    existing = path if folder and path.is_dir() else path.parent
    while not existing.exists():  # the folders missing are made on writing, under the nearest existing one
        existing = existing.parent
    if not existing.is_dir():
        parser.error(f"{flag} {given} cannot be made: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        parser.error(f"{flag} {given} cannot be written: {existing} is not writable")


def parse(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, torch.device]:
    """The options of ``parser``'s command line and the device; a bad one is an argument error, not an
    error from inside torch after the data has loaded (``cuda`` without one, threads below 0), nor an
    ``--output`` that cannot be written, found after the timing."""
    args = parser.parse_args()
    check_output(parser, "--output", args.output)
    if args.threads < 0:
        parser.error(f"--threads must be 0 (torch's default) or more, got {args.threads}")
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(f"--device: {exc}")
    if args.threads:
        torch.set_num_threads(args.threads)
    return args, device


def read_dataset(parser: argparse.ArgumentParser, args: argparse.Namespace, load=load_dataset):
    """``load(args.dataset, args.root)`` (a benchmark passes the ``load_dataset`` it imported); a dataset that
    cannot be read (its raw files missing, a ``--root`` that is a file) is an argument error naming it, not
    a traceback."""
    try:
        return load(args.dataset, args.root)
    except (OSError, ValueError) as exc:
        parser.error(f"--dataset {args.dataset}: {exc}")


def add_settings_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE ...``: dslgraph settings, VALUE as JSON or text, parsed into ``(key, value)``."""
    parser.add_argument("--set", nargs="*", default=[], type=name_value, metavar="KEY=VALUE", help=help)


def refuse_folder(parser: argparse.ArgumentParser, out: str) -> None:
    """An argument error for an ``--out`` that names a folder, where a path without suffix is wanted (its
    files would be written beside the folder, as ``FOLDER.csv``)."""
    if out.endswith(("/", os.sep)) or Path(out).is_dir():
        parser.error(f"--out {out} is a folder: give a path without suffix (FOLDER/NAME)")


def checked_outputs(
    parser: argparse.ArgumentParser, out: str, suffixes: tuple[str, ...] = ("csv", "png")
) -> tuple[Path, ...]:
    """:func:`outputs` of a script's ``--out``, refused as an argument error where it names a folder
    (:func:`refuse_folder`) or its first file cannot be written (:func:`check_output`)."""
    refuse_folder(parser, out)
    paths = outputs(out, suffixes)
    check_output(parser, "--out", paths[0])
    return paths


def outputs(out: str, suffixes: tuple[str, ...] = ("csv", "png")) -> tuple[Path, ...]:
    """``OUT.csv`` and ``OUT.png`` (or ``OUT`` with each of ``suffixes``): a dot in ``out`` stays in the name
    (``recall-0.5`` is no ``.5`` file), and one of those suffixes given is not doubled."""
    path = Path(out)
    stem = path.stem if path.suffix.lstrip(".") in suffixes else path.name
    return tuple(path.with_name(f"{stem}.{suffix}") for suffix in suffixes)
