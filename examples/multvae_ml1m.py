"""MultVAE on ml-1m, evaluated on held-out users with an 80/20 fold-in (Recall@20 / NDCG@20).

Usage: python examples/multvae_ml1m.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

Flags override the defaults (docs/models.md); README "Examples" says where data and runs go.
"""

import sys

from dslgraph.cli import run_example

DEFAULTS = "train --model multvae --dataset ml-1m --output runs/multvae-ml-1m".split()

if __name__ == "__main__":
    sys.exit(run_example(DEFAULTS, __doc__))
