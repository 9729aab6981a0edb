"""LightGCN on Amazon-book with the official LightGCN settings (paper: Recall@20 0.0411).

Usage: python examples/lightgcn_amazon_book.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

Flags given on the command line override the ones below. Datasets are read from
``ROOT/amazon-book/raw/`` (downloaded there when missing); a run writes RUN/metrics.json and checkpoints,
and ``--resume`` continues it.
"""

import sys

from dslgraph.cli import run_example

DEFAULTS = "train --dataset amazon-book --epochs 1000 --eval-every 20 --update-interval 3000 --output runs/lightgcn-amazon-book".split()

if __name__ == "__main__":
    sys.exit(run_example(DEFAULTS, __doc__))
