"""LightGCN on Amazon-book with the official LightGCN settings (paper: Recall@20 0.0411).

Usage: python examples/lightgcn_amazon_book.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

The official LightGCN code's recipe: batch 2048, Adam lr 1e-3 without a schedule, L2 1e-4, normal(0, 0.1)
init, 3 layers of 64, LightGCN's user-uniform sampler (``--sampling user``), 1000 epochs; test metrics every
20 epochs. Under DSL (``--sparsity``) the masks are updated every 3000 iterations, the DSL authors' ΔT.

Flags given on the command line override the ones below. Datasets are read from
``ROOT/amazon-book/raw/`` (downloaded there when missing); a run writes RUN/metrics.json and checkpoints,
and ``--resume`` continues it.
"""

import sys

from dslgraph.cli import run_example

DEFAULTS = "train --dataset amazon-book --sampling user --epochs 1000 --eval-every 20 --update-interval 3000 --output runs/lightgcn-amazon-book".split()

if __name__ == "__main__":
    sys.exit(run_example(DEFAULTS, __doc__))
