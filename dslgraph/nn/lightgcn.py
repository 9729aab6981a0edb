"""LightGCN as a PyG message-passing module over a swappable embedding table."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing

from dslgraph.checks import is_count
from dslgraph.nn.base import Recommender, ScoreFn, check_graph, check_macs, check_sizes, describe
from dslgraph.nn.losses import bpr_loss, l2_penalty
from dslgraph.sparse.ops import graph_degrees, graph_entries, spmm
from dslgraph.sparse.table import DenseEmbedding, EmbeddingTable


class LightGCN(MessagePassing, Recommender):
    r"""The LightGCN model from `"LightGCN: Simplifying and Powering Graph Convolution Network for
    Recommendation" <https://arxiv.org/abs/2002.02126>`_ (He et al., SIGIR 2020).

    Users and items share one embedding table :math:`E^{(0)}` (users first). Each layer propagates
    over the symmetric-normalised user-item graph and the final embedding is the layer mean

    .. math::
        E^{(k+1)} = D^{-1/2} A D^{-1/2} E^{(k)}, \qquad
        E = \sum_{k=0}^{K} \alpha_k E^{(k)}, \quad \alpha_k = \tfrac{1}{K+1},

    and a user-item score is the dot product of their final embeddings. The table sits behind the
    :class:`~dslgraph.sparse.table.EmbeddingTable` seam, so a
    :class:`~dslgraph.sparse.SparseEmbedding` can replace it: the first propagation then runs on
    the active entries only; later layers are dense by nature (a sum of sparse rows is dense).

    Unlike PyG's :class:`~torch_geometric.nn.models.LightGCN`, which takes an ``edge_index`` over one
    id space (items offset by the number of users), it takes the normalised graph
    (:func:`~dslgraph.data.propagation_graph`) and 0-based item ids: ``forward(graph, edge_label_index)``;
    every model of :mod:`dslgraph.nn` has ``recommend(graph, users, k, exclude)`` and ``scorer(graph)``
    (the adapters' ``forward`` takes no graph: ``forward(users, items)``, CDAE's and MultVAE's rows).
    Its embeddings and scores equal PyG's for the same table and graph. Its constructor takes the numbers
    of users and items where PyG's takes ``num_nodes``, and every other argument by keyword: PyG's
    ``LightGCN(70, 64, 3)`` fails here rather than building 70 users and 64 items of dimension 3.

    Args:
        num_users (int): Number of users.
        num_items (int): Number of items.
        embedding_dim (int, optional): Embedding size. (default: :obj:`64`)
        num_layers (int, optional): Propagation layers :math:`K`. (default: :obj:`3`)
        init (str, optional): ``"normal"`` (official LightGCN) or ``"xavier"`` (DSL authors).
            (default: :obj:`"normal"`)
        std (float, optional): Std of the normal init. (default: :obj:`0.1`)
    """

    folds_in = True  # a user's propagated embedding gathers the items of its edges

    def __init__(
        self,
        num_users: int,
        num_items: int,
        *,
        embedding_dim: int = 64,
        num_layers: int = 3,
        init: str = "normal",
        std: float = 0.1,
    ) -> None:
        super().__init__(aggr="add")
        num_users, num_items, embedding_dim = check_sizes(
            num_users=num_users, num_items=num_items, embedding_dim=embedding_dim
        )
        if not is_count(num_layers) or num_layers < 0:
            raise ValueError(f"num_layers must be an integer >= 0, got {num_layers!r}")
        self.num_users = num_users
        self.num_items = num_items
        self.num_layers = int(num_layers)
        self.embedding: EmbeddingTable = DenseEmbedding(num_users + num_items, embedding_dim, init, std)

    def reset_parameters(self) -> None:
        """Draws the embedding table anew, as ``init`` and ``std`` say."""
        self.embedding.reset_parameters()

    def get_embedding(self, adj) -> Tensor:
        """Final ``[num_users + num_items, d]`` embeddings (users first)."""
        return self._layers(adj)[1]

    def _layers(self, adj) -> tuple[Tensor, Tensor]:
        """The layer-0 table as a dense tensor (the layer mean needs it whole) and the final embeddings."""
        self._check_graph(adj)
        ego = self.embedding.to_dense()
        if self.num_layers == 0:
            return ego, ego
        x = self.embedding.propagate(adj, ego)
        out = ego + x
        for _ in range(1, self.num_layers):
            x = self.propagate(adj, x=x)
            out = out + x
        return ego, out / (self.num_layers + 1)

    def _check_graph(self, adj) -> None:
        # PyG's LightGCN takes an edge index; this one the normalised graph, built once per dataset
        nodes = self.num_users + self.num_items
        check_graph(adj, (nodes, nodes), "LightGCN", sparse_tensor=True)

    def message_and_aggregate(self, adj_t, x: Tensor) -> Tensor:
        return spmm(adj_t, x)

    def forward(self, adj, edge_label_index: Tensor) -> Tensor:
        """Scores of the ``[2, E]`` user-item pairs in ``edge_label_index`` (0-based item ids)."""
        pairs = edge_label_index
        if not isinstance(pairs, Tensor) or pairs.dim() != 2 or len(pairs) != 2:
            raise ValueError(
                f"edge_label_index must be a [2, E] index of (user, item) pairs, got {describe(pairs)}"
            )
        self.check_pairs(*pairs)
        out = self.get_embedding(adj)
        return (out[pairs[0]] * out[pairs[1] + self.num_users]).sum(-1)

    def loss(
        self, adj, users: Tensor, pos_items: Tensor, neg_items: Tensor, reg_weight: float = 1e-4
    ) -> Tensor:
        """BPR loss plus L2 on the batch's layer-0 embeddings (LightGCN's objective)."""
        ego, out = self._layers(adj)
        # one gather for the three roles (one scatter back in the backward pass, not three
        # table-sized ones summed): a GPU iteration of this size waits on its operators
        rows = torch.cat([users, pos_items + self.num_users, neg_items + self.num_users])
        user, pos, neg = _gather(out, rows).split([users.numel(), pos_items.numel(), neg_items.numel()])
        loss = bpr_loss((user * pos).sum(-1), (user * neg).sum(-1))
        if reg_weight:
            # rows of the dense layer 0 the mean needed anyway: a sparse table's own row lookup
            # would cost a dozen more small operators (kernel launches, on a GPU) per iteration
            loss = loss + reg_weight * l2_penalty(_gather(ego, rows), users.numel())
        return loss

    @torch.no_grad()
    def scorer(self, adj) -> ScoreFn:
        """``score(users, items=None)``: ``[B, num_items]`` (or ``[B, C]`` candidate) scores, with
        the embeddings computed once."""
        out = self.get_embedding(adj)
        user_emb, item_emb = out[: self.num_users], out[self.num_users :]

        def score(users: Tensor, items: Tensor | None = None) -> Tensor:
            self.check_pairs(users, items, candidates=True)
            if items is None:
                return user_emb[users] @ item_emb.T
            return (user_emb[users].unsqueeze(1) * item_emb[items]).sum(-1)

        return score

    def macs(self, adj, batch_size: int, count: str = "executed") -> dict[str, float]:
        """MACs of a training iteration and a full-ranking inference (see :mod:`dslgraph.metrics.cost`).

        A sparse table's first propagation costs its plan's entries in the ``"ideal"`` count, and in
        the ``"executed"`` one unless the table propagates through a dense copy; in the ``"ideal"``
        count a masked table's first propagation likewise costs its active entries' products only.
        Every other step is dense by nature.
        """
        batch_size = check_macs(count, batch_size)
        self._check_graph(adj)
        table = self.embedding
        d, k = table.embedding_dim, self.num_layers
        n, stored = table.num_embeddings, graph_entries(adj)
        active = self._active_entries(adj, count)
        sparse = active is not None
        if not k:
            first = 0
        elif not sparse:
            first = stored * d
        else:
            first = active[0]
        later = max(k - 1, 0) * stored * d
        # without a layer the table is the final embedding: no sum and no division; with layers, k - 1
        # sums and the division are dense, and so is the first sum as executed (the dense layer 0 plus
        # the first layer), which ideally adds only a sparse table's entries
        first_sum = active[1] if sparse and count == "ideal" else n * d
        mean = (k * n * d + first_sum) if k else 0
        propagation = first + later + mean
        head = 5 * batch_size * d  # three dot products of d, L2 on three rows
        scoring = self.num_users * self.num_items * d
        # The dense table gradient a DSL growth step rebuilds, a block of rows at a time: the adjoint
        # of the planned first layer (``nnz(A) d``) plus the layer-0 gradient (``N d`` adds). A table
        # propagated through a dense copy records that copy's gradient, which already holds the first
        # layer's adjoint: its update executes no propagation product.
        through_copy = count == "executed" and getattr(table, "propagation", "planned") == "dense"
        update = (0 if through_copy or not k else stored * d) + n * d
        return {
            "train_forward": propagation + head,
            "train_backward": propagation + head,
            "train_iteration": 2 * (propagation + head),
            "update_step": update if sparse else 0,
            "inference_propagation": propagation,
            "inference_scoring": scoring,
            "inference": propagation + scoring,
        }

    def _active_entries(self, adj, count: str) -> tuple[int, int] | None:
        """The first propagation's multiply-adds and the table's entries where ``count`` charges the
        table by its active entries (a sparse table; a masked one in the ``"ideal"`` count), else ``None``."""
        table = self.embedding
        if count == "dense":
            return None
        if hasattr(table, "plan_entries"):
            first = table.plan_entries(adj) if count == "ideal" else table.propagation_macs(adj)
            return first, table.nnz
        mask = getattr(table, "weight_mask", None)
        if count != "ideal" or mask is None:
            return None
        # each active entry of row j is multiplied once per stored entry of column j (A is symmetric)
        row_nnz = mask.sum(1)
        return int((graph_degrees(adj).to(row_nnz.device) * row_nnz).sum()), int(row_nnz.sum())

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_users}, {self.num_items}, "
            f"dim={self.embedding.embedding_dim}, num_layers={self.num_layers}, table={self.embedding}"
            f"{self._sparsity_repr()})"
        )


def _gather(table: Tensor, rows: Tensor) -> Tensor:
    """``table[rows]``. On the CPU by ``index_select``, whose backward (``index_add_``) summed the same
    gradients in the same order in about a third less time than indexing's (``index_put_`` with
    ``accumulate``) for a batch of 2048 triples on one thread; on a GPU by indexing, whose backward sums
    in a fixed order where ``index_add_``'s atomic adds do not."""
    return table.index_select(0, rows) if table.device.type == "cpu" else table[rows]
