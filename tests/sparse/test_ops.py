import pytest
import torch
from torch_geometric.typing import WITH_TORCH_SPARSE

from dslgraph.data import propagation_graph, to_sparse_tensor
from dslgraph.nn import LightGCN
from dslgraph.sparse import csr_row_slice, csr_segments, spmm
from dslgraph.sparse.ops import (
    check_cpu_product,
    exclude_entries,
    graph_degrees,
    graph_entries,
    row_pointers,
)


def _csr(rows: int = 6, cols: int = 5, seed: int = 0) -> torch.Tensor:
    """A random CSR matrix with an empty row first and one in the middle."""
    g = torch.Generator().manual_seed(seed)
    dense = torch.rand(rows, cols, generator=g) * (torch.rand(rows, cols, generator=g) < 0.5)
    dense[0] = dense[rows // 2] = 0
    return dense.to_sparse_csr()


@pytest.mark.parametrize("start, end", [(0, 6), (0, 1), (1, 4), (3, 3), (5, 6), (2, 6)])
def test_csr_row_slice_is_a_valid_csr_matrix_of_those_rows(start, end):
    # the row pointer and values are sliced by hand with the invariants unchecked: a wrong offset or length
    # showed only later (a crash in the product, or a values tensor longer than the entries)
    matrix = _csr()
    rows = csr_row_slice(matrix, start, end)
    checked = torch.sparse_csr_tensor(
        rows.crow_indices(), rows.col_indices(), rows.values(), rows.shape, check_invariants=True
    )
    assert rows.values().numel() == rows.col_indices().numel() == rows._nnz()
    assert torch.equal(checked.to_dense(), matrix.to_dense()[start:end])


@pytest.mark.parametrize("dtype", [torch.long, torch.int32])
def test_row_pointers_are_int64_running_sums_of_the_counts(dtype):
    crow = row_pointers(torch.tensor([2, 0, 3, 1], dtype=dtype))
    assert crow.dtype == torch.long and crow.tolist() == [0, 2, 2, 5, 6]


@pytest.mark.parametrize("dtype", [torch.long, torch.int32])
def test_csr_segments_are_the_entries_of_each_row_in_the_dtype_asked(dtype):
    matrix = _csr()
    crow = matrix.crow_indices()
    rows = torch.tensor([2, 0, 5, 2, -1, 3])  # repeated, empty (0 and 3) and counted from the end
    entry, owner = csr_segments(crow, rows, dtype)
    assert entry.dtype == owner.dtype == dtype
    ptr = crow.tolist()
    expected = [(k, b) for b, r in enumerate(rows.tolist()) for k in range(ptr[r % 6], ptr[r % 6 + 1])]
    assert list(zip(entry.tolist(), owner.tolist())) == expected


def test_spmm_under_cpu_autocast_takes_half_precision_features_in_the_graph_dtype():
    # features from an autocast layer before it are bfloat16: the product runs in the wider float32,
    # which torch's CSR product has a CPU kernel for, and does not refuse them as a half model
    adj = _csr(6, 6)
    x = torch.randn(6, 3).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = spmm(adj, x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, adj.to_dense() @ x.float())


def test_half_precision_products_are_refused_on_the_cpu_only():
    for dtype in (torch.float16, torch.bfloat16):
        with pytest.raises(TypeError, match=rf"a product in {dtype} cannot run on the CPU"):
            check_cpu_product(torch.device("cpu"), dtype, "a product")
        check_cpu_product(torch.device("cuda"), dtype, "a product")  # CUDA has the kernels
    check_cpu_product(torch.device("cpu"), torch.float32, "a product")


@pytest.mark.skipif(not WITH_TORCH_SPARSE, reason="torch-sparse is not installed")
def test_a_sparse_tensor_graph_counts_as_its_csr_matrix(small_data):
    adj = propagation_graph(small_data)
    tensor = to_sparse_tensor(adj)
    assert graph_entries(tensor) == graph_entries(adj) == adj._nnz()
    assert torch.equal(graph_degrees(tensor), graph_degrees(adj))
    model = LightGCN(30, 40, embedding_dim=8)
    for count in ("executed", "ideal", "dense"):
        assert model.macs(tensor, 16, count) == model.macs(adj, 16, count)


def test_exclude_entries_writes_into_a_view_in_place_unless_asked_to_copy():
    matrix = _csr(4, 5)
    rows = torch.tensor([1, 2])
    scores = torch.zeros(6, 5)
    view = scores[1:3]
    copied = exclude_entries(view, matrix.crow_indices(), matrix.col_indices(), rows)
    assert copied.data_ptr() != view.data_ptr() and not scores.isinf().any()
    written = exclude_entries(view, matrix.crow_indices(), matrix.col_indices(), rows, copy_shared=False)
    assert written.data_ptr() == view.data_ptr() and torch.equal(written, copied)
    assert torch.equal(scores[1:3].isinf(), matrix.to_dense()[1:3] != 0)
