"""LightGCN on the embedded LastFM split (the offline default); add --sparsity 0.8 for DSL.

Usage: python examples/lightgcn_lastfm.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

The defaults are the DSL authors' LightGCN schedule (Adam lr 1e-2, cosine to 1e-4, batch 1024, Xavier init)
over 150 epochs, test metrics every 10, and ΔT = 50, the best update interval measured on LastFM
(docs/results.md). Flags given on the command line override them. The dataset is read from
``ROOT/lastfm/raw/`` (copied there from dslgraph's own copy when missing); a run writes RUN/metrics.json and
checkpoints, and ``--resume`` continues it.
"""

import sys

from dslgraph.cli import run_example

DEFAULTS = (
    "train --dataset lastfm --epochs 150 --eval-every 10 --lr 0.01 --lr-schedule cosine --batch-size 1024 "
    "--init xavier --update-interval 50 --output runs/lightgcn-lastfm"
).split()

if __name__ == "__main__":
    sys.exit(run_example(DEFAULTS, __doc__))
