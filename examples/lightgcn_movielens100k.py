"""LightGCN on MovieLens-100K (ratings >= 4 as implicit feedback, seeded 80/20 split per user).

Usage: python examples/lightgcn_movielens100k.py [--sparsity 0.8] [--root DIR] [--device cuda] [any train flag]

The defaults are the DSL authors' LightGCN schedule (Adam lr 1e-2, cosine to 1e-4, batch 1024, Xavier init)
over 100 epochs, test metrics every 5, and ΔT = 50, the best update interval measured on LastFM
(docs/results.md). Flags given on the command line override them. Datasets are read from ``ROOT/ml-100k/raw/``
(downloaded there when missing); a run writes RUN/metrics.json and checkpoints, and ``--resume`` continues it.
"""

import sys

from dslgraph.cli import run_example

DEFAULTS = "train --dataset ml-100k --epochs 100 --eval-every 5 --lr 0.01 --lr-schedule cosine --batch-size 1024 --init xavier --update-interval 50 --output runs/lightgcn-ml-100k".split()

if __name__ == "__main__":
    sys.exit(run_example(DEFAULTS, __doc__))
