"""ConvNCF on ml-1m, evaluated leave-one-out against 100 sampled negatives (HR@20 / NDCG@20).

Usage: python examples/convncf_ml1m.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

``ml-1m`` is GroupLens' MovieLens-1M ``ratings.dat`` read from ``ROOT/ml-1m/raw/``, its ratings >= 4 as
interactions (dslgraph.data.MovieLens1M). The DSL paper counts all 1,000,209 ratings: ``--data-file
ROOT/ml-1m/raw/ratings.dat --data-option sep=:: --data-option 'names=["user","item","rating","time"]'
--data-option time_col=time``. ``--dataset ml-1m-lcf`` takes the UltraGCN/LCF split of ML-1M
(``ROOT/ml-1m-lcf/raw/{train,test}.txt``), the one docs/results.md measured this model on.

At the default embedding size 64 an epoch of ml-1m-lcf takes about 37 minutes on a 2-core CPU: on a CPU,
try ``--embedding-dim 16`` (1 to 3 minutes an epoch) or a GPU (``--device cuda``); docs/models.md has more.

Flags override the defaults (docs/models.md); README "Examples" says where data and runs go.
"""

import sys

from dslgraph.cli import run_example

DEFAULTS = "train --model convncf --dataset ml-1m --output runs/convncf-ml-1m".split()

if __name__ == "__main__":
    sys.exit(run_example(DEFAULTS, __doc__))
