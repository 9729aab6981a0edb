"""How many of the entries DSL's gradient growth picks have a gradient of exactly zero.

Trains ``--epochs`` epochs of a model under DSL (``dslgraph train`` settings) and counts, at every
prune-and-grow update, the grown entries per tensor and those among them whose growth score is 0: entries
the update's mini-batch gives no gradient, picked only to fill the quota (what ``--skip-zero-gradient``
avoids; docs/dsl.md).

    python benchmarks/zero_gradient_growth.py --model ultragcn --dataset lastfm --update-interval 10 \\
        --set mask_init=aligned
    python benchmarks/zero_gradient_growth.py --model cdae --dataset ml-1m-lcf --root data \\
        --update-interval 10
"""

from __future__ import annotations

import argparse
import logging

from common import add_settings_option

from dslgraph.cli import run_training
from dslgraph.config import ConfigError, validate
from dslgraph.sparse.dsl import DynamicSparseLearning


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="ultragcn")
    parser.add_argument("--dataset", default="lastfm")
    parser.add_argument("--root", default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--update-interval", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    add_settings_option(parser, "other dslgraph settings, VALUE as JSON or text")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    counts: dict[str, list[int]] = {}
    grow = DynamicSparseLearning._grow

    def counting_grow(dsl, target, kept, n):
        positions, score = grow(dsl, target, kept, n)
        if score is not None:
            grown, zero = counts.setdefault(target.name, [0, 0])
            counts[target.name] = [grown + positions.numel(), zero + int((score == 0).sum())]
        return positions, score

    DynamicSparseLearning._grow = counting_grow
    given = {
        "model": args.model,
        "dataset": args.dataset,
        "root": args.root,
        "epochs": args.epochs,
        "eval_every": args.epochs,
        "sparsity": args.sparsity,
        "update_interval": args.update_interval,
        "threads": args.threads,
        "device": "cpu",
    }
    try:
        settings = validate(given | dict(args.set))
    except ConfigError as exc:
        parser.error(str(exc))
    # none of these grows by a score: the run trained, then printed nothing
    if not settings["sparsity"] or settings["static_mask"] or settings["growth"] == "random":
        parser.error(
            "counts growth scores: needs --sparsity above 0, no static_mask and growth other than random"
        )
    run_training(settings, None, progress=False)
    if not counts:
        epochs, interval = settings["epochs"], settings["update_interval"]
        print(f"{args.model}: no prune-and-grow update in {epochs} epoch(s) at update_interval {interval}")
    for name, (grown, zero) in counts.items():
        print(f"{args.model} {name}: {grown} grown, {zero} with zero gradient ({zero / max(grown, 1):.0%})")


if __name__ == "__main__":
    main()
