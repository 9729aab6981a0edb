"""LightGCN on Gowalla with the official LightGCN settings (paper: Recall@20 0.1830, NDCG@20 0.1554).

Usage: python examples/lightgcn_gowalla.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

Flags given on the command line override the ones below. Datasets are read from
``ROOT/gowalla/raw/`` (downloaded there when missing); a run writes RUN/metrics.json and checkpoints,
and ``--resume`` continues it.
"""

import sys

from dslgraph.cli import main

DEFAULTS = "train --dataset gowalla --epochs 1000 --eval-every 20 --update-interval 3000 --output runs/lightgcn-gowalla".split()

if __name__ == "__main__":
    sys.exit(main(DEFAULTS + sys.argv[1:]))
