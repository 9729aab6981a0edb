"""Trains with one experimental DSL variant that dslgraph does not offer as an option, to test an
idea about why sparse tables trail a dense one (docs/results.md §2, "what does not close the gap").

    python benchmarks/dsl_variants.py aligned-mask train --dataset lastfm --sparsity 0.8 ...
    python benchmarks/dsl_variants.py row-balanced train --dataset lastfm --sparsity 0.8 ...

Everything after the variant name is a ``dslgraph`` command line. Variants:

* ``aligned-mask``: the initial mask keeps the first ``k`` columns of every row (``k`` = the row
  budget, the remainder spread over random rows) instead of uniformly random entries, so that at the
  start the sparse table is a dense table of width ``k`` (with ``--static-mask``: exactly that).
* ``row-balanced``: every prune-and-grow keeps each row's count of active entries: it prunes
  ``ceil(rho_t x count)`` smallest entries of each row and grows as many in the same row by largest
  dense gradient (embedding tables only).
"""

from __future__ import annotations

import math
import sys

import torch

from dslgraph.cli import main
from dslgraph.sparse import DynamicSparseLearning, SparseEmbedding
from dslgraph.sparse.schedules import update_fraction
from dslgraph.sparse.table import init_table_


def aligned_reset(table: SparseEmbedding, generator: torch.Generator | None = None) -> None:
    n, d, nnz = table.num_embeddings, table.embedding_dim, table.nnz
    counts = torch.full((n,), nnz // n)
    counts[torch.randperm(n, generator=generator)[: nnz - int(counts.sum())]] += 1
    rows = torch.repeat_interleave(torch.arange(n), counts)
    cols = torch.arange(nnz) - (counts.cumsum(0) - counts)[rows]
    positions = rows * d + cols
    dense = init_table_(torch.empty(n, d), table.init, table.std)
    with torch.no_grad():
        table.positions.copy_(positions)
        table.values.copy_(dense.view(-1)[positions])
    table.positions_changed()


@torch.no_grad()
def row_balanced_update(dsl: DynamicSparseLearning) -> dict:
    horizon = dsl.t_end if dsl.t_end is not None else dsl.total_steps
    rho = update_fraction(dsl.schedule, dsl.iteration, horizon, dsl.rho0, dsl.rho_min)
    record = {"iteration": dsl.iteration, "rho": rho, "changed": {}}
    for target in dsl.targets:
        table = target.table  # embedding tables only
        d = table.embedding_dim
        rows = table.positions // d
        counts = torch.bincount(rows, minlength=table.num_embeddings)
        per_row = torch.ceil(rho * counts.float()).long()
        magnitude = table.values.detach().abs()
        # group by row, smallest magnitude first within a row
        order = torch.argsort(rows.double() * 4 + 2 * magnitude.double() / magnitude.max().clamp_min(1e-30))
        rank = torch.arange(rows.numel()) - (counts.cumsum(0) - counts)[rows[order]]
        prune = rank < per_row[rows[order]]
        pruned = order[prune]
        active = torch.zeros(table.num_embeddings * d, dtype=torch.bool)
        active[table.positions[order[~prune]]] = True
        grown = []
        for start, block in table.dense_grad_chunks(dsl.chunk_rows):
            r = block.size(0)
            score = block.abs().masked_fill(active[start * d : (start + r) * d].view(r, d), -math.inf)
            best = score.argsort(dim=1, descending=True)
            row, k = (torch.arange(d) < per_row[start : start + r, None]).nonzero(as_tuple=True)
            grown.append((row + start) * d + best[row, k])
        # pruned slots and grown positions are both listed row by row, with equal counts per row
        target.replace(pruned, torch.cat(grown), dsl.optimizer, dsl.optimizer_state == "reset")
        record["changed"][target.name] = int(pruned.numel())
    dsl.updates.append(record)
    return record


VARIANTS = {
    "aligned-mask": lambda: setattr(SparseEmbedding, "reset_parameters", aligned_reset),
    "row-balanced": lambda: setattr(DynamicSparseLearning, "update", row_balanced_update),
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: dsl_variants.py {{{','.join(VARIANTS)}}} <dslgraph command line>")
    VARIANTS[sys.argv[1]]()
    sys.exit(main(sys.argv[2:]))
