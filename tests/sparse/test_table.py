import math
import re

import numpy as np
import pytest
import torch

from dslgraph.nn import LightGCN
from dslgraph.sparse import SparseEmbedding
from dslgraph.sparse.table import DenseEmbedding


@pytest.mark.parametrize("table", [DenseEmbedding, SparseEmbedding])
def test_std_is_a_finite_number_above_zero_kept_as_a_python_float(table):
    def build(std):
        return table(50, 4, std=std) if table is DenseEmbedding else table(50, 4, 0.5, std=std)

    torch.manual_seed(0)
    embedding = build(np.float32(0.5))  # kept as np.float32 before
    assert type(embedding.std) is float and embedding.std == 0.5
    assert 0.3 < embedding.to_dense()[embedding.to_dense() != 0].std() < 0.7
    # -1 and nan failed in nn.init.normal_ and text with a TypeError, inf filled the table with infinities,
    # 0 made an all-zero table and True one of std 1
    for std in (-1.0, math.nan, math.inf, 0.0, "0.1", True, None):
        with pytest.raises(ValueError, match=f"std must be a finite number > 0, got {std!r}"):
            build(std)


def test_init_table_refuses_an_unknown_init_naming_the_known_ones():
    """What a table's reset_parameters() draws by: an init set on the table after it was built is named."""
    table = DenseEmbedding(3, 4)
    table.init = "uniform"
    with pytest.raises(
        ValueError, match=r"init must be one of \['normal', 'xavier', 'linear'\], got 'uniform'"
    ):
        table.reset_parameters()


def test_a_model_refuses_a_wrong_std_through_its_table():
    with pytest.raises(ValueError, match=r"std must be a finite number > 0, got -0.1"):
        LightGCN(3, 4, embedding_dim=8, std=-0.1)


@pytest.mark.parametrize("build", [DenseEmbedding, lambda rows, dim: SparseEmbedding(rows, dim, 0.5)])
@pytest.mark.parametrize(
    ("rows", "dim", "named"),
    [(0, 4, "num_embeddings"), (3, 0, "embedding_dim"), (-1, 4, "num_embeddings"), (4.0, 2, "num_embeddings")]
    + [(3, 2.5, "embedding_dim"), (True, 4, "num_embeddings"), (torch.tensor(3.0), 4, "num_embeddings")],
)
def test_a_table_refuses_an_empty_or_fractional_shape_naming_it(build, rows, dim, named):
    # the sparse table failed inside torch ("output with shape [1] doesn't match", randperm's TypeError)
    bad = rows if named == "num_embeddings" else dim
    with pytest.raises(ValueError, match=rf"^{named} must be an integer >= 1, got {re.escape(repr(bad))}$"):
        build(rows, dim)


@pytest.mark.parametrize("build", [DenseEmbedding, lambda rows, dim: SparseEmbedding(rows, dim, 0.5)])
def test_a_table_takes_its_shape_as_any_count_and_keeps_python_ints(build):
    """As the rest of the library takes a count: a 0-dim tensor (``index.max() + 1``) was refused, and a
    NumPy size was kept as given (an ``np.int32`` product of rows and columns overflows past 2**31)."""
    for rows, dim in ((torch.tensor(5), 8), (np.int64(5), np.int32(8))):
        table = build(rows, dim)
        assert (type(table.num_embeddings), type(table.embedding_dim)) == (int, int)
        assert table.to_dense().shape == (5, 8) and repr(table).startswith(f"{type(table).__name__}(5, 8")


def test_a_dense_table_reads_as_rows_then_columns():
    table = DenseEmbedding(5, 3)
    assert repr(table) == "DenseEmbedding(5, 3)" and table.weight.shape == (5, 3)


@pytest.mark.parametrize(
    "build", [DenseEmbedding, lambda rows, dim: SparseEmbedding(rows, dim, 0.5, propagation="dense")]
)
@pytest.mark.parametrize("graph_dtype", [torch.float64, torch.long])
def test_propagating_over_a_graph_of_another_dtype_names_both(build, graph_dtype):
    """As the planned propagation does: torch said "expected scalar type Float but found Double" (a model
    made double, a graph built before), naming neither the graph nor the table."""
    table, adj = build(7, 3), torch.eye(7, dtype=graph_dtype).to_sparse_csr()
    message = f"the graph holds {graph_dtype} weights, the features torch.float32: convert one"
    for grad in (True, False):
        with torch.set_grad_enabled(grad), pytest.raises(TypeError, match=message):
            table.propagate(adj)
    torch.testing.assert_close(table.propagate(adj.float()), table.to_dense())


@pytest.mark.parametrize("init", ["linear", "uniform"])
def test_a_dense_table_takes_a_tables_inits_only(init):
    """init="linear" is a sparse linear layer's weight's (torch.nn.Linear's), not one of a table's."""
    with pytest.raises(
        ValueError, match=re.escape(f"init must be one of ['normal', 'xavier'], got {init!r}")
    ):
        LightGCN(3, 4, embedding_dim=8, init=init)
    assert SparseEmbedding(3, 4, 0.5, init="linear").values.abs().max() <= 1 / math.sqrt(4)
