"""MultVAE on ml-1m, evaluated on held-out users with an 80/20 fold-in (Recall@20 / NDCG@20).

Usage: python examples/multvae_ml1m.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

``ml-1m`` is GroupLens' MovieLens-1M ``ratings.dat`` read from ``ROOT/ml-1m/raw/``, its ratings >= 4 as
interactions (dslgraph.data.MovieLens1M). The DSL paper counts all 1,000,209 ratings: ``--data-file
ROOT/ml-1m/raw/ratings.dat --data-option sep=:: --data-option 'names=["user","item","rating","time"]'
--data-option time_col=time``. ``--dataset ml-1m-lcf`` takes the UltraGCN/LCF split of ML-1M
(``ROOT/ml-1m-lcf/raw/{train,test}.txt``), the one docs/results.md measured this model on.

Flags override the defaults (docs/models.md); README "Examples" says where data and runs go.
"""

import sys

from dslgraph.cli import run_example

DEFAULTS = "train --model multvae --dataset ml-1m --output runs/multvae-ml-1m".split()

if __name__ == "__main__":
    sys.exit(run_example(DEFAULTS, __doc__))
