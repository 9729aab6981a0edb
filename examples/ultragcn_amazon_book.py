"""UltraGCN on amazon-book with the official UltraGCN settings of the dataset (the preset in dslgraph.config; paper: Recall@20 0.0681, NDCG@20 0.0556).

Usage: python examples/ultragcn_amazon_book.py [--sparsity 0.8] [--root DIR] [--device cuda] [any dslgraph train flag]

Training stops after 30 evaluations (150 epochs) without a better test Recall@20. The official code stops
after 15 evaluations without one, testing every 5 epochs up to epoch 50 and every epoch from then on: past
epoch 50 this waits 150 epochs where it waits 15, evaluating a fifth as often. DSL's update interval defaults
to 3000 iterations.
Flags override the defaults (docs/models.md); README "Examples" says where data and runs go.
"""

import sys

from dslgraph.cli import run_example

DEFAULTS = "train --model ultragcn --dataset amazon-book --epochs 2000 --eval-every 5 --patience 30 --output runs/ultragcn-amazon-book".split()

if __name__ == "__main__":
    sys.exit(run_example(DEFAULTS, __doc__))
