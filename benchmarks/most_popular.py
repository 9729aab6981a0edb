"""Recall/NDCG@20 of ranking items by training popularity (the most-popular baseline).

python benchmarks/most_popular.py --datasets lastfm ml-100k --root data
"""

from __future__ import annotations

import argparse

from common import write_csv

from dslgraph.data import EDGE, load_dataset
from dslgraph.metrics import RankingEvaluator, most_popular_scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["lastfm"])
    parser.add_argument("--root", default=None)
    parser.add_argument("--output", default="docs/results/most_popular.csv")
    args = parser.parse_args()
    rows = []
    for name in args.datasets:
        data = load_dataset(name, args.root)
        scores = most_popular_scores(data[EDGE].edge_index, int(data["item"].num_nodes))
        result = RankingEvaluator.from_data(data, "test", ks=(20,))(scores)
        rows.append({"dataset": name, **{k: round(v, 4) for k, v in result.items()}})
        print(rows[-1])
    write_csv(rows, args.output)


if __name__ == "__main__":
    main()
