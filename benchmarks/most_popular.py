"""Recall/HR/NDCG@20 of ranking items by training popularity (the most-popular baseline).

python benchmarks/most_popular.py --datasets lastfm ml-100k --root data
python benchmarks/most_popular.py --datasets ml-1m-lcf --protocols full leave-one-out held-out-users \\
    --root data --output docs/results/ml-1m/most_popular.csv
"""

from __future__ import annotations

import argparse

from common import check_output, write_rows

from dslgraph.data import DATASETS, EDGE, PROTOCOLS, load_dataset
from dslgraph.metrics import RankingEvaluator, SampledRankingEvaluator, most_popular_scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # named when parsed, not by the loader once the datasets before a misspelt one have loaded
    parser.add_argument("--datasets", nargs="+", default=["lastfm"], choices=sorted(DATASETS))
    parser.add_argument("--protocols", nargs="+", default=["full"], choices=PROTOCOLS)
    parser.add_argument("--seed", type=int, default=2020, help="the seed the training runs use")
    parser.add_argument("--root", default=None)
    parser.add_argument("--output", default="docs/results/most_popular.csv")
    args = parser.parse_args()
    check_output(parser, "--output", args.output)
    rows = []
    for name in args.datasets:
        for protocol in args.protocols:
            data = load_dataset(name, args.root, protocol=protocol, seed=args.seed)
            score = most_popular_scores(data[EDGE].edge_index, int(data["item"].num_nodes))
            sampled = "test_negatives" in data[EDGE]
            evaluator = (SampledRankingEvaluator if sampled else RankingEvaluator).from_data(data, ks=(20,))
            result = evaluator(score)
            rows.append(
                {"dataset": name, "protocol": protocol, **{k: round(v, 4) for k, v in result.items()}}
            )
            print(rows[-1])
    # the columns of all rows: a sampled protocol's row (no recall@20) before a full ranking's failed the
    # write, every row lost after all datasets were loaded and evaluated
    write_rows(rows, args.output, append=False)


if __name__ == "__main__":
    main()
