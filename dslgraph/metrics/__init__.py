"""Evaluation of recommenders: full-ranking and sampled top-K metrics, and cost (MACs, bytes) accounting."""

from dslgraph.metrics.cost import cost_report, memory_report
from dslgraph.metrics.ranking import (
    METRICS,
    RankingEvaluator,
    evaluate_embeddings,
    evaluate_ranking,
    most_popular_scores,
)
from dslgraph.metrics.sampled import (
    SAMPLED_METRICS,
    SampledRankingEvaluator,
)

__all__ = [
    "METRICS",
    "RankingEvaluator",
    "evaluate_embeddings",
    "evaluate_ranking",
    "most_popular_scores",
    "SAMPLED_METRICS",
    "SampledRankingEvaluator",
    "cost_report",
    "memory_report",
]
