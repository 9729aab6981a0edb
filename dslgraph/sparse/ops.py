"""Sparse-dense matrix products used by propagation, on CPU and CUDA with plain torch."""

from __future__ import annotations

import torch
from torch import Tensor


class _SymmetricSpmm(torch.autograd.Function):
    """``adj @ x`` for a symmetric CSR ``adj``: the backward pass is another ``adj @ grad``.

    torch's own CSR backward transposes the matrix on every call, which costs five times the
    forward product on a Gowalla-sized graph; a symmetric matrix is its own transpose.
    """

    @staticmethod
    def forward(ctx, adj: Tensor, x: Tensor) -> Tensor:
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, torch.sparse.mm(ctx.adj, grad)


def spmm(adj, x: Tensor) -> Tensor:
    """``adj @ x`` for a *symmetric* propagation matrix.

    Args:
        adj: A ``torch.sparse_csr`` tensor (from :func:`dslgraph.data.propagation_graph`) or a
            ``torch_sparse.SparseTensor``.
        x (torch.Tensor): Dense ``[N, d]`` features.
    """
    if isinstance(adj, Tensor):
        if adj.layout != torch.sparse_csr:
            raise TypeError(f"expected a sparse CSR adjacency, got layout {adj.layout}")
        if x.requires_grad:
            return _SymmetricSpmm.apply(adj, x)
        return torch.sparse.mm(adj, x)
    from torch_sparse import matmul  # a SparseTensor can only come from an installed torch-sparse

    return matmul(adj, x)


def graph_entries(adj) -> int:
    """Stored entries of a propagation matrix: a torch sparse tensor or a ``torch_sparse.SparseTensor``."""
    return adj._nnz() if isinstance(adj, Tensor) else adj.nnz()


def graph_degrees(adj) -> Tensor:
    """Stored entries of each row of a CSR propagation matrix (a torch CSR tensor or a
    ``torch_sparse.SparseTensor``)."""
    return (adj.crow_indices() if isinstance(adj, Tensor) else adj.storage.rowptr()).diff()


def row_pointers(counts: Tensor) -> Tensor:
    """The int64 CSR row pointer of rows holding ``counts`` entries each."""
    crow = counts.new_zeros(counts.numel() + 1, dtype=torch.long)
    crow[1:] = counts.cumsum(0)
    return crow


def csr_row_slice(adj: Tensor, start: int, end: int) -> Tensor:
    """Rows ``start:end`` of a CSR matrix as a new CSR matrix (torch CSR has no strided slicing)."""
    crow = adj.crow_indices()
    lo, hi = int(crow[start]), int(crow[end])
    return torch.sparse_csr_tensor(
        crow[start : end + 1] - lo,
        adj.col_indices()[lo:hi],
        adj.values()[lo:hi],
        (end - start, adj.size(1)),
        check_invariants=False,
    )


def csr_segments(crow: Tensor, rows: Tensor, dtype: torch.dtype = torch.long) -> tuple[Tensor, Tensor]:
    """For CSR rows ``rows``: the entry positions of each, and which element of ``rows`` owns it,
    as ``dtype`` (int32 halves the memory where the counts fit)."""
    # indexing the N row starts and ends, not crow itself: an out-of-range row fails naming N, and a
    # negative one counts from the end as it does for a dense table (crow[rows + 1] mixed up rows)
    start = crow[:-1][rows]
    count = crow[1:][rows] - start
    owner = torch.repeat_interleave(torch.arange(rows.numel(), device=rows.device, dtype=dtype), count)
    offset = (count.cumsum(0) - count - start).to(dtype)  # entry k of row r sits at k - first(r) + start(r)
    return torch.arange(owner.numel(), device=rows.device, dtype=dtype) - offset.index_select(0, owner), owner
