"""Where DSL put a sparse table's active entries: entries per row against the row's degree.

Rebuilds the model of a ``dslgraph train`` checkpoint (``best.pt`` or ``last.pt``, on the data it recorded;
``--root`` where the data now lives elsewhere) and, for every sparse table, counts each row's active entries
and the training interactions of the user or item the row belongs to. Per side it writes the Spearman
correlation of the two, the mean count of the rows of degree ≤ ``--low`` and ≥ ``--high``, the rows with
no active entry, and the mean count per degree band, as JSON.

    python benchmarks/degree_analysis.py runs/lastfm-s0.8/best.pt \\
        --output docs/results/lastfm-degree/degree.json

Which rows are users' and which items' follows :func:`dslgraph.nn.base.table_sides`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math

import torch
from common import check_output, write_text
from scipy.stats import spearmanr

from dslgraph.cli import load_run
from dslgraph.data.graph import num_users_items
from dslgraph.nn.base import node_degrees, table_sides
from dslgraph.sparse import SparseEmbedding

log = logging.getLogger("degree_analysis")

#: Lower edges of the degree bands of the per-band means (the last band is open).
BANDS = (0, 1, 3, 5, 10, 20, 50, 100)


def mean(values: torch.Tensor) -> float | None:
    """The mean of ``values``; None (JSON null) for none, where torch's NaN would make the JSON invalid."""
    return values.mean().item() if values.numel() else None


def summarise(entries: torch.Tensor, degree: torch.Tensor, low: int, high: int) -> dict[str, object]:
    """Active entries per row (``entries``) against ``degree``, for one side of one table."""
    entries, degree = entries.double(), degree.double()
    bands = []
    for start, end in zip(BANDS, (*BANDS[1:], None)):
        inside = (degree >= start) if end is None else (degree >= start) & (degree < end)
        if inside.any():
            band = f"{start}+" if end is None else str(start) if end == start + 1 else f"{start}-{end - 1}"
            bands.append(
                {"degree": band, "rows": int(inside.sum()), "mean_entries": entries[inside].mean().item()}
            )
    # undefined (NaN) where every row has as many entries (an aligned mask never updated)
    rho = float(spearmanr(degree.numpy(), entries.numpy()).statistic)
    return {
        "rows": entries.numel(),
        "active_entries": int(entries.sum()),
        "mean_entries": entries.mean().item(),
        "spearman": rho if math.isfinite(rho) else None,
        f"mean_entries_degree_le_{low}": mean(entries[degree <= low]),
        f"rows_degree_le_{low}": int((degree <= low).sum()),
        f"mean_entries_degree_ge_{high}": mean(entries[degree >= high]),
        f"rows_degree_ge_{high}": int((degree >= high).sum()),
        "empty_rows": int((entries == 0).sum()),
        "by_degree": bands,
    }


def analyse(checkpoint: str, root: str | None, low: int, high: int) -> dict[str, object]:
    model, data, _, settings, _ = load_run(checkpoint, root, "cpu")
    num_users, num_items = num_users_items(data)
    degree = node_degrees(data)
    degrees = {"user": degree[:num_users], "item": degree[num_users:]}
    tables = {}
    for name, table in model.named_modules():
        if not isinstance(table, SparseEmbedding):
            continue
        rows = table.positions.div(table.embedding_dim, rounding_mode="floor")
        per_row = torch.bincount(rows, minlength=table.num_embeddings)
        sides = table_sides(table.num_embeddings, num_users, num_items)
        if not sides:
            raise ValueError(
                f"{name}: a table of {table.num_embeddings} rows is not one of {num_users} users and "
                f"{num_items} items, nor one side's (where both sides have as many)"
            )
        tables[name] = {
            side: summarise(per_row[part], degrees[side], low, high) for side, part in sides.items()
        }
        for side, summary in tables[name].items():
            log.info("%s, %s rows: %s", name, side, {k: v for k, v in summary.items() if k != "by_degree"})
    if not tables:
        raise SystemExit(f"{checkpoint} holds no sparse table (was it trained with --sparsity?)")
    return {
        "checkpoint": str(checkpoint),
        "model": settings["model"],
        "dataset": settings["dataset"],
        "sparsity": settings["sparsity"],
        "seed": settings["seed"],
        "degree": "training interactions",
        "tables": tables,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", help="a best.pt / last.pt written by dslgraph train")
    parser.add_argument("--root", default=None, help="the datasets' folder, where not the recorded one")
    parser.add_argument("--low", type=int, default=2, help="mean entries of degree <= LOW (default 2)")
    parser.add_argument("--high", type=int, default=20, help="and of degree >= HIGH (default 20)")
    parser.add_argument("--output", required=True, help="the JSON to write")
    args = parser.parse_args(argv)
    check_output(parser, "--output", args.output)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)  # counting, not training
    result = analyse(args.checkpoint, args.root, args.low, args.high)
    write_text(args.output, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
