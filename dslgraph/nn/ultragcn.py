"""UltraGCN: graph convolution approximated by constraint losses on the bipartite graph."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData

from dslgraph.checks import is_count
from dslgraph.data.graph import EDGE, check_pair_index, num_users_items
from dslgraph.data.io import save_then_rename
from dslgraph.nn.base import (
    Recommender,
    ScoreFn,
    active_fraction,
    check_macs,
    check_sizes,
    check_weights,
    column_counts,
)
from dslgraph.sparse.table import DenseEmbedding, EmbeddingTable

log = logging.getLogger(__name__)

#: The official per-dataset settings (UltraGCN repository configs, REFERENCE.md §2): constructor
#: arguments of :class:`UltraGCN` plus the training settings ``lr`` and ``batch_size``.
PRESETS: dict[str, dict[str, float | int]] = {
    "gowalla": dict(
        embedding_dim=64, std=1e-4, w1=1e-6, w2=1.0, w3=1e-6, w4=1.0,
        num_negatives=1500, negative_weight=300.0, gamma=1e-4, lambda_=5e-4, lr=1e-4, batch_size=512,
    ),
    "yelp2018": dict(
        embedding_dim=64, std=1e-4, w1=1e-8, w2=1.0, w3=1e-8, w4=1.0,
        num_negatives=800, negative_weight=300.0, gamma=1e-4, lambda_=5e-4, lr=1e-3, batch_size=1024,
    ),
    "amazon-book": dict(
        embedding_dim=64, std=1e-4, w1=1e-8, w2=1.0, w3=1.0, w4=1e-8,
        num_negatives=500, negative_weight=500.0, gamma=1e-4, lambda_=2.75, lr=1e-3, batch_size=1024,
    ),
    "ml-1m-lcf": dict(
        embedding_dim=128, std=1e-3, w1=1e-7, w2=1.0, w3=1e-7, w4=1.0,
        num_negatives=200, negative_weight=200.0, gamma=1e-4, lambda_=1e-3, lr=1e-3, batch_size=1024,
    ),
}  # fmt: skip


@dataclass
class UltraGCNGraph:
    """What UltraGCN needs of the training graph: the constraint coefficients of users and items,
    and each item's top-K item neighbours in :math:`R^\\top R` with their weights."""

    beta_user: Tensor
    beta_item: Tensor
    neighbors: Tensor
    neighbor_weights: Tensor

    def to(self, device: torch.device | str) -> UltraGCNGraph:
        return UltraGCNGraph(*(getattr(self, f.name).to(device) for f in fields(self)))


def constraint_betas(train_index: Tensor, num_users: int, num_items: int) -> tuple[Tensor, Tensor]:
    r""":math:`\beta_u = \sqrt{d_u + 1} / d_u` and :math:`\beta_i = 1 / \sqrt{d_i + 1}` (0 for users
    without training interactions, who are never trained on)."""
    user_deg = torch.bincount(train_index[0], minlength=num_users).double()
    item_deg = torch.bincount(train_index[1], minlength=num_items).double()
    beta_user = torch.where(user_deg > 0, (user_deg + 1).sqrt() / user_deg.clamp(min=1), 0.0)
    return beta_user.float(), (item_deg + 1).rsqrt().float()


def item_neighbors(
    train_index: Tensor,
    num_users: int,
    num_items: int,
    k: int = 10,
    exclude_self: bool = False,
    block_rows: int = 1024,
) -> tuple[Tensor, Tensor]:
    r"""Each item's ``k`` nearest items in the co-occurrence graph :math:`G = R^\top R`.

    Neighbours are ranked by :math:`\omega_{ij} = \frac{G_{ij}}{g_i}\sqrt{\frac{g_i + 1}{g_j + 1}}`
    with :math:`g_i = \sum_j G_{ij}`, UltraGCN's item-item constraint weight. :math:`G` is built
    ``block_rows`` items at a time as a sparse product, so memory stays at one dense block of
    ``block_rows x num_items`` however large the catalogue. The item itself counts as a
    neighbour (the official code's default) unless ``exclude_self``, which zeroes the diagonal of
    :math:`G` before :math:`g` is summed (the official ``ii_diagonal_zero``). Items with fewer than ``k``
    co-occurring items get zero-weight padding.

    Returns:
        ``([num_items, k] neighbour ids, [num_items, k] weights)``.
    """
    # a negative block_rows returned torch.empty's memory as neighbours and weights, without an error
    num_users, num_items, block_rows = check_sizes(
        num_users=num_users, num_items=num_items, block_rows=block_rows
    )
    if not (is_count(k) and 1 <= k < num_items):
        raise ValueError(f"k (item neighbours) must be an integer in [1, {num_items}), got {k!r}")
    k = int(k)
    check_pair_index("train_index", train_index, num_items, num_users)
    user, item = train_index.cpu().numpy()
    r = sp.csr_matrix((np.ones(user.size, dtype=np.float32), (user, item)), shape=(num_users, num_items))
    r.sum_duplicates()
    r.data[:] = 1.0
    rt = r.T.tocsr()
    g = np.asarray(rt @ np.asarray(r.sum(axis=1)).ravel(), dtype=np.float64)  # row sums of R^T R
    if exclude_self:  # the official code zeroes the diagonal (the item degrees) before summing rows
        g -= np.asarray(r.sum(axis=0), dtype=np.float64).ravel()
    row_scale = torch.from_numpy(np.where(g > 0, np.sqrt(g + 1) / np.maximum(g, 1), 0.0)).float()
    col_scale = torch.from_numpy(1 / np.sqrt(g + 1)).float()
    # found with SciPy on the CPU, whatever torch's default device (input_graph moves them to the data's)
    neighbors = torch.empty(num_items, k, dtype=torch.long, device="cpu")
    weights = torch.empty(num_items, k, device="cpu")
    for start in range(0, num_items, block_rows):
        end = min(start + block_rows, num_items)
        block = torch.from_numpy((rt[start:end] @ r).toarray())
        if exclude_self:
            block[torch.arange(end - start, device="cpu"), torch.arange(start, end, device="cpu")] = 0
        block.mul_(row_scale[start:end, None]).mul_(col_scale)
        weights[start:end], neighbors[start:end] = block.topk(k, dim=1)
    return neighbors, weights


def _cache_key(train_index: Tensor, num_users: int, num_items: int, k: int, exclude_self: bool) -> str:
    digest = hashlib.sha1(train_index.contiguous().cpu().numpy().tobytes())
    # "v2": caches with exclude_self written before its weights summed the diagonal-free rows are stale
    digest.update(f"v2,{num_users},{num_items},{k},{exclude_self}".encode())
    return digest.hexdigest()[:16]


def _read_cache(path: Path, shape: tuple[int, int]) -> tuple[Tensor, Tensor] | None:
    """The ``shape`` neighbours and weights cached in ``path``, or ``None`` (with a warning) where the file
    cannot be read or holds something else: a derived file is built again, where a truncated one failed
    every later run inside torch.load."""
    try:
        cached = torch.load(path, weights_only=True)
        neighbors, weights = cached["neighbors"], cached["weights"]
        if tuple(neighbors.shape) == tuple(weights.shape) == shape and not neighbors.is_floating_point():
            return neighbors, weights
        problem = "neighbours of another shape"
    except Exception as exc:  # torch raises several types for corrupt files; a foreign one lacks the keys
        problem = f"{exc.__class__.__name__}: {exc}"
    log.warning("UltraGCN neighbour cache %s could not be used (%s); building it again", path, problem)
    return None


class UltraGCN(Recommender):
    r"""The UltraGCN model from `"UltraGCN: Ultra Simplification of Graph Convolutional Networks for
    Recommendation" <https://arxiv.org/abs/2110.15114>`_ (Mao et al., CIKM 2021).

    UltraGCN skips message passing: it trains user and item tables so that they satisfy the
    fixed point of infinitely many graph convolutions, written as constraint weights from the
    bipartite graph's degrees. With :math:`\beta_u = \sqrt{d_u+1}/d_u`,
    :math:`\beta_i = 1/\sqrt{d_i+1}` and :math:`\hat y_{ui} = e_u^\top e_i`, a batch of positives
    :math:`(u, i)` with negatives :math:`N_u` costs

    .. math::
        \mathcal{L} = -\sum (w_1 + w_2 \beta_u \beta_i) \log\sigma(\hat y_{ui})
        - \nu \sum \tfrac{1}{|N_u|}\sum_{j \in N_u} (w_3 + w_4 \beta_u \beta_j) \log\sigma(-\hat y_{uj})
        - \lambda \sum \sum_{j \in S(i)} \omega_{ij} \log\sigma(e_u^\top e_j)
        + \tfrac{\gamma}{2} \lVert \Theta \rVert^2,

    where :math:`S(i)` are the top-K neighbours of item :math:`i` in :math:`R^\top R` (see
    :func:`item_neighbors`). Scores are plain dot products. Both tables sit behind the
    :class:`~dslgraph.sparse.table.EmbeddingTable` seam, so DSL makes them genuinely sparse.
    :data:`PRESETS` holds the official per-dataset settings.

    Args:
        num_users (int): Number of users.
        num_items (int): Number of items.
        embedding_dim (int, optional): Embedding size. (default: :obj:`64`)
        w1, w2, w3, w4 (float, optional): Positive (:math:`w_1 + w_2\beta`) and negative
            (:math:`w_3 + w_4\beta`) constraint weights. (defaults: :obj:`1e-6, 1, 1e-6, 1`)
        num_negatives (int, optional): Negatives per positive. (default: :obj:`1500`)
        negative_weight (float, optional): :math:`\nu`. (default: :obj:`300.0`)
        gamma (float, optional): L2 weight :math:`\gamma` on all parameters. (default: :obj:`1e-4`)
        lambda_ (float, optional): Item-item constraint weight :math:`\lambda`. (default: :obj:`5e-4`)
        num_neighbors (int, optional): Item neighbours :math:`K`. (default: :obj:`10`)
        std (float, optional): Std of the normal init. (default: :obj:`1e-4`)
        cache_dir (str, optional): Where :meth:`input_graph` caches the item neighbours (keyed
            by a hash of the training edges); no cache when :obj:`None`. (default: :obj:`None`)
    """

    exclude_positives = False  # the official sampler draws negatives without checking positives
    uses_reg_weight = False  # gamma is its L2 weight

    def __init__(
        self,
        num_users: int,
        num_items: int,
        *,
        embedding_dim: int = 64,
        w1: float = 1e-6,
        w2: float = 1.0,
        w3: float = 1e-6,
        w4: float = 1.0,
        num_negatives: int = 1500,
        negative_weight: float = 300.0,
        gamma: float = 1e-4,
        lambda_: float = 5e-4,
        num_neighbors: int = 10,
        std: float = 1e-4,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        num_users, num_items, embedding_dim, num_negatives = check_sizes(
            num_users=num_users, num_items=num_items, embedding_dim=embedding_dim, num_negatives=num_negatives
        )
        w1, w2, w3, w4, negative_weight, gamma, lambda_ = check_weights(
            w1=w1, w2=w2, w3=w3, w4=w4, negative_weight=negative_weight, gamma=gamma, lambda_=lambda_
        )
        if not is_count(num_neighbors) or not 0 <= num_neighbors < num_items:
            raise ValueError(f"num_neighbors must be in [0, num_items={num_items}), got {num_neighbors}")
        if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
            raise ValueError(f"cache_dir must be a folder's path, got {cache_dir!r}")
        self.num_users, self.num_items = num_users, num_items
        self.w1, self.w2, self.w3, self.w4 = w1, w2, w3, w4
        self.num_negatives = num_negatives
        self.negative_weight = negative_weight
        self.gamma, self.lambda_ = gamma, lambda_
        self.num_neighbors = int(num_neighbors)
        self.cache_dir = cache_dir
        self.user_embedding: EmbeddingTable = DenseEmbedding(num_users, embedding_dim, "normal", std)
        self.item_embedding: EmbeddingTable = DenseEmbedding(num_items, embedding_dim, "normal", std)

    def reset_parameters(self) -> None:
        """Draws both embedding tables anew from ``normal(0, std)``."""
        self.user_embedding.reset_parameters()
        self.item_embedding.reset_parameters()

    def input_graph(self, data: HeteroData) -> UltraGCNGraph:
        self.check_data(data)
        num_users, num_items = num_users_items(data)
        train_index = data[EDGE].edge_index
        # in the model's dtype, as every model's graph input (float32 weights capped a double model)
        dtype = self.float_dtype()
        beta_user, beta_item = (
            beta.to(dtype) for beta in constraint_betas(train_index, num_users, num_items)
        )
        # on the data's device, as the betas are: neighbours found on the CPU beside betas on a GPU failed
        # in the loss (a GPU batch indexing CPU neighbours)
        device = train_index.device
        if self.num_neighbors == 0:
            empty = torch.empty(num_items, 0, dtype=dtype, device=device)
            return UltraGCNGraph(beta_user, beta_item, empty.long(), empty)
        neighbors, weights = self._cached_neighbors(train_index, num_users, num_items)
        return UltraGCNGraph(beta_user, beta_item, neighbors.to(device), weights.to(device, dtype))

    def _cached_neighbors(self, train_index: Tensor, num_users: int, num_items: int) -> tuple[Tensor, Tensor]:
        args = (train_index, num_users, num_items, self.num_neighbors)
        path = None
        if self.cache_dir is not None:
            path = Path(self.cache_dir) / f"ultragcn_neighbors_{_cache_key(*args, False)}.pt"
            cached = _read_cache(path, (num_items, self.num_neighbors)) if path.exists() else None
            if cached is not None:
                return cached
        # 49 s on Gowalla on one CPU thread, before the first epoch and its bar: said, not silent
        log.info("finding the %d nearest of %d items for each item (UltraGCN's R^T R)", args[3], num_items)
        neighbors, weights = item_neighbors(*args)
        if path is None:
            return neighbors, weights
        cached = {"neighbors": neighbors, "weights": weights}
        # written then renamed: runs started side by side may build the same cache at once
        try:
            save_then_rename(cached, path)
        except OSError as exc:  # a read-only dataset folder, a full disk: the neighbours are found, train on
            log.warning(
                "UltraGCN item neighbours could not be cached in %s (%s: %s); the next run finds them again",
                path,
                exc.__class__.__name__,
                exc,
            )
            return neighbors, weights
        log.info("cached UltraGCN item neighbours in %s", path)
        return neighbors, weights

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Dot products of ``[B]`` users with ``[B]`` or ``[B, C]`` items (same shape as ``items``)."""
        self.check_pairs(users, items)
        flat = items.view(users.numel(), -1)
        scores = (self.user_embedding(users).unsqueeze(1) * self.item_embedding(flat)).sum(-1)
        return scores.view(items.shape)

    def loss(
        self,
        graph: UltraGCNGraph,
        users: Tensor,
        pos_items: Tensor,
        neg_items: Tensor,
        reg_weight: float = 0.0,
    ) -> Tensor:
        """UltraGCN's objective (see the class docs); ``reg_weight`` is unused (``gamma`` is the L2)."""
        neg_items = neg_items.view(users.numel(), -1)
        user = self.user_embedding(users)
        # One [B, num_items] product, then gathers: on CPU 11x faster than gathering [B, N, d] item
        # rows for ML-1M's 200 negatives, 3.2x for Gowalla's 1,500 (benchmarks/bench_ultragcn_logits.py).
        logits = user @ self.item_embedding.to_dense().T
        pos_logit = logits.gather(1, pos_items.view(-1, 1)).squeeze(1)
        neg_logit = logits.gather(1, neg_items)
        beta_user = graph.beta_user[users]
        pos_w = self.w1 + self.w2 * beta_user * graph.beta_item[pos_items]
        neg_w = self.w3 + self.w4 * beta_user.unsqueeze(1) * graph.beta_item[neg_items]
        loss = -(pos_w * F.logsigmoid(pos_logit)).sum()
        loss = loss - self.negative_weight * (neg_w * F.logsigmoid(-neg_logit)).mean(-1).sum()
        if self.num_neighbors and self.lambda_:
            neighbor_logit = logits.gather(1, graph.neighbors[pos_items])
            weights = graph.neighbor_weights[pos_items]
            loss = loss - self.lambda_ * (weights * F.logsigmoid(neighbor_logit)).sum()
        if self.gamma:
            loss = loss + self.gamma / 2 * sum(p.pow(2).sum() for p in self.parameters())
        return loss

    @torch.no_grad()
    def scorer(self, graph: UltraGCNGraph) -> ScoreFn:
        """``score(users, items=None)``: dot products with every item (or the candidates ``items``)."""
        user_emb, item_emb = self.user_embedding.to_dense(), self.item_embedding.to_dense()

        def score(users: Tensor, items: Tensor | None = None) -> Tensor:
            self.check_pairs(users, items, candidates=True)
            if items is None:
                return user_emb[users] @ item_emb.T
            return (user_emb[users].unsqueeze(1) * item_emb[items]).sum(-1)

        return score

    def macs(self, graph: UltraGCNGraph, batch_size: int, count: str = "executed") -> dict[str, float]:
        r"""The batch's users against every item (one product, then gathers) and the L2 term.

        Look-ups cost nothing; the L2 term squares every stored entry, so a sparse table pays
        for its active entries only. The backward pass of the product is two products of the
        same size. Training and scoring multiply the tables' dense rows; ``"ideal"`` charges each
        user-item product the products of an active user entry with an active item entry: exactly
        :math:`\sum_c n_U(c)\, n_I(c)` for full ranking (:math:`n(c)`: a table's active entries in column
        :math:`c`), its share for a batch's users (:math:`d \rho_U \rho_I` a pair under random masks, as
        NeuMF's GMF branch and ConvNCF's outer product are charged; :math:`d \rho` where the masks align).
        """
        batch_size = check_macs(count, batch_size)
        pair = self.user_embedding.embedding_dim
        if count == "ideal":
            paired = (column_counts(self.user_embedding) * column_counts(self.item_embedding)).sum()
            pair = float(paired) / (self.num_users * self.num_items)
        products = batch_size * self.num_items * pair
        stored = sum(self._stored(table, count) for table in (self.user_embedding, self.item_embedding))
        stored = stored if self.gamma else 0
        return {
            "train_forward": products + stored,
            "train_backward": 2 * products + stored,
            "train_iteration": 3 * products + 2 * stored,
            "inference": self.num_users * self.num_items * pair,
        }

    @staticmethod
    def _stored(table: EmbeddingTable, count: str) -> float:
        """Entries of ``table`` the L2 term squares: active ones of a sparse table, every one of a
        dense or masked table (a masked table's active ones in the ``"ideal"`` count)."""
        if count != "dense" and hasattr(table, "nnz"):
            return table.nnz
        entries = table.num_embeddings * table.embedding_dim
        return entries * active_fraction(table) if count == "ideal" else entries

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_users}, {self.num_items}, "
            f"dim={self.user_embedding.embedding_dim}, negatives={self.num_negatives}, "
            f"neighbors={self.num_neighbors}{self._sparsity_repr()})"
        )
