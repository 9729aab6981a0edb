"""Recommender models: message-passing modules and adapters over swappable embedding tables."""

from dslgraph.nn.lightgcn import LightGCN
from dslgraph.sparse.table import DenseEmbedding, EmbeddingTable

__all__ = ["DenseEmbedding", "EmbeddingTable", "LightGCN"]
