"""Evaluation of recommenders: full-ranking top-K metrics and cost (MACs, bytes) accounting."""

from dslgraph.metrics.ranking import (
    METRICS,
    RankingEvaluator,
    evaluate_embeddings,
    evaluate_ranking,
    most_popular_scores,
)

__all__ = [
    "METRICS",
    "RankingEvaluator",
    "evaluate_embeddings",
    "evaluate_ranking",
    "most_popular_scores",
]
