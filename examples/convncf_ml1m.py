"""ConvNCF on ml-1m, evaluated by the leave-one-out with 100 sampled negatives (HR@20 / NDCG@20) protocol.

Usage: python examples/convncf_ml1m.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

The model's defaults (dslgraph.config.MODEL_DEFAULTS: the DSL authors' settings where they give
them) apply; DSL sparsifies the model's ``dsl_targets`` unless ``--targets`` says otherwise.
Flags given on the command line override the ones below. Datasets are read from
``ROOT/ml-1m/raw/`` (downloaded there when missing); a run writes RUN/metrics.json and checkpoints,
and ``--resume`` continues it.
"""

import sys

from dslgraph.cli import main

DEFAULTS = "train --model convncf --dataset ml-1m --output runs/convncf-ml-1m".split()

if __name__ == "__main__":
    sys.exit(main(DEFAULTS + sys.argv[1:]))
