"""Parameter storage (dense and genuinely sparse tables), sparse kernels, and the DSL engine."""

from dslgraph.sparse.dsl import DynamicSparseLearning
from dslgraph.sparse.embedding import SparseEmbedding
from dslgraph.sparse.linear import SparseLinear
from dslgraph.sparse.ops import csr_row_slice, csr_segments, spmm
from dslgraph.sparse.schedules import SCHEDULES, update_fraction
from dslgraph.sparse.table import DenseEmbedding, EmbeddingTable

__all__ = [
    "SCHEDULES",
    "DenseEmbedding",
    "DynamicSparseLearning",
    "EmbeddingTable",
    "SparseEmbedding",
    "SparseLinear",
    "csr_row_slice",
    "csr_segments",
    "spmm",
    "update_fraction",
]
