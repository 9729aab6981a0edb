import math

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


def test_a_model_refuses_a_wrong_std_through_its_table():
    with pytest.raises(ValueError, match=r"std must be a finite number > 0, got -0.1"):
        LightGCN(3, 4, embedding_dim=8, std=-0.1)


@pytest.mark.parametrize("build", [DenseEmbedding, lambda rows, dim: SparseEmbedding(rows, dim, 0.5)])
@pytest.mark.parametrize(("rows", "dim"), [(0, 4), (3, 0), (-1, 4), (4.0, 2), (3, 2.5)])
def test_a_table_refuses_an_empty_or_fractional_shape_naming_it(build, rows, dim):
    # the sparse table failed inside torch ("output with shape [1] doesn't match", randperm's TypeError)
    with pytest.raises(ValueError, match=rf"table shape must be positive integers, got \({rows}, {dim}\)"):
        build(rows, dim)


def test_a_dense_table_reads_as_rows_then_columns():
    table = DenseEmbedding(5, 3)
    assert repr(table) == "DenseEmbedding(5, 3)" and table.weight.shape == (5, 3)
