"""LightGCN on MovieLens-100K (ratings >= 4 as implicit feedback, seeded 80/20 split per user).

Usage: python examples/movielens100k.py [--sparsity 0.8] [--root DIR] [--device cuda] [any train flag]

Flags given on the command line override the ones below. Datasets are read from
``ROOT/ml-100k/raw/`` (downloaded there when missing); a run writes RUN/metrics.json and checkpoints,
and ``--resume`` continues it.
"""

import sys

from dslgraph.cli import main

DEFAULTS = "train --dataset ml-100k --epochs 150 --eval-every 10 --update-interval 100 --output runs/movielens100k".split()

if __name__ == "__main__":
    sys.exit(main(DEFAULTS + sys.argv[1:]))
