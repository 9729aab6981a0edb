"""Sparse-dense matrix products used by propagation, and CSR row helpers, on CPU and CUDA with plain torch."""

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
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # CPU autocast ran the product in bfloat16, which torch's CSR product has no CPU kernel for
            # ("addmm_out_sparse_csr_impl_mkl" not implemented): it runs in the wider of the two dtypes
            with torch.autocast("cpu", enabled=False):
                return spmm(adj, x.to(torch.promote_types(adj.dtype, x.dtype)))
        check_cpu_product(x.device, x.dtype, "a graph propagation")
        # "expected scalar type Double but found Float" named neither; autocast converts both itself
        if adj.dtype != x.dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(f"the graph holds {adj.dtype} weights, the features {x.dtype}: convert one")
        if x.requires_grad:
            return _SymmetricSpmm.apply(adj, x)
        return torch.sparse.mm(adj, x)
    from torch_sparse import matmul  # a SparseTensor can only come from an installed torch-sparse

    return matmul(adj, x)


def check_cpu_product(
    device: torch.device,
    dtype: torch.dtype,
    what: str,
    instead: str = "train float32 weights under torch.autocast, which keeps this product in float32",
) -> None:
    """Refuses a float16 / bfloat16 sparse CSR product on the CPU, naming ``what`` runs it and a way on
    besides a float32 model (``instead``): torch has no such CPU kernel, and failed with
    ``"addmm_out_sparse_csr_impl_mkl" not implemented for 'Half'``."""
    if device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
        raise TypeError(
            f"{what} in {dtype} cannot run on the CPU: torch's sparse CSR product has no float16 / bfloat16 "
            f"CPU kernel (keep the model in float32 there, or {instead})"
        )


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
    as ``dtype`` (int32 halves the memory where the counts fit), on the device of ``crow`` (``rows`` may be
    on any: GPU rows of a CPU matrix failed indexing it, CPU rows of a GPU one in ``repeat_interleave``)."""
    rows = rows.to(crow.device)
    # indexing the N row starts and ends, not crow itself: an out-of-range row fails naming N, and a
    # negative one counts from the end as it does for a dense table (crow[rows + 1] mixed up rows)
    start = crow[:-1][rows]
    count = crow[1:][rows] - start
    owner = torch.repeat_interleave(torch.arange(rows.numel(), device=rows.device, dtype=dtype), count)
    offset = (count.cumsum(0) - count - start).to(dtype)  # entry k of row r sits at k - first(r) + start(r)
    return torch.arange(owner.numel(), device=rows.device, dtype=dtype) - offset.index_select(0, owner), owner


def exclude_entries(
    scores: Tensor, crow: Tensor, col: Tensor, rows: Tensor, copy_shared: bool = True
) -> Tensor:
    """``scores`` (``[B, N]``, row ``b`` for CSR row ``rows[b]``) with :math:`-\\infty` at the columns each
    CSR row holds (``crow``, ``col``: its row pointer and column indices, best on ``scores``' device,
    where they are moved otherwise): the items a ranking excludes. Written into ``scores`` itself, so that
    a batch of scores is held once, unless ``copy_shared`` and writing there could change more than these
    scores (a view, a zero stride, a parameter): then into a copy. Use the returned tensor."""
    if copy_shared and _shares_memory(scores):
        scores = scores.clone(memory_format=torch.contiguous_format)
    entry, row = csr_segments(crow.to(scores.device), rows)
    scores[row, col.to(scores.device)[entry]] = float("-inf")
    return scores


def _shares_memory(scores: Tensor) -> bool:
    """Whether writing into ``scores`` could change more than these scores: a view of another tensor
    (an expanded row, a slice, a parameter's view), overlapping memory (a zero stride) or a tensor
    autograd tracks or a model holds (a parameter). Checking is free, unlike copying every batch: what a
    model's product or concatenation returns is a tensor of its own, written in place."""
    return (
        scores._base is not None
        or 0 in scores.stride()
        or scores.requires_grad
        or isinstance(scores, torch.nn.Parameter)
    )
