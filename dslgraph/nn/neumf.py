"""Neural matrix factorisation (NeuMF): a GMF branch and an MLP branch fused into one logit."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dslgraph.checks import is_count, is_sequence
from dslgraph.nn.base import (
    Recommender,
    ScoreFn,
    active_fraction,
    check_macs,
    check_probability,
    check_sizes,
    growth_macs,
    linear_macs,
    score_in_blocks,
    table_density,
    table_product,
)
from dslgraph.nn.losses import l2_penalty
from dslgraph.sparse.table import DenseEmbedding


class NeuMF(Recommender):
    r"""The NeuMF model from `"Neural Collaborative Filtering" <https://arxiv.org/abs/1708.05031>`_
    (He et al., WWW 2017).

    A generalised-matrix-factorisation branch and an MLP branch, each with its own user and item
    tables, are fused by a final linear layer into a logit:

    .. math::
        \phi^{GMF} = p_u \odot q_i, \qquad
        \phi^{MLP} = \mathrm{MLP}([p'_u ; q'_i]), \qquad
        \hat{y}_{ui} = h^\top [\phi^{GMF} ; \phi^{MLP}],

    trained pointwise with binary cross-entropy on each positive and ``num_negatives`` sampled
    negatives. The first MLP layer splits as :math:`W [p'_u; q'_i] = W_u p'_u + W_i q'_i`, so full
    ranking multiplies each table once (on its active entries when sparse) and every user-item pair
    only adds the two parts before the remaining layers; pairs are scored in blocks.

    The DSL authors sparsify only the MLP-branch tables (:attr:`dsl_targets`); GMF, MLP and output
    layers stay dense. ``reg_weight`` in :meth:`loss` is L2 on the batch's rows of all four tables
    (the authors train with none).

    Args:
        num_users (int): Number of users.
        num_items (int): Number of items.
        embedding_dim (int, optional): Width of the GMF tables. (default: :obj:`16`)
        mlp_layers (Sequence[int], optional): MLP widths in the NCF authors' notation: the first is
            the concatenated MLP embeddings (so each MLP table has ``mlp_layers[0] // 2``
            columns), the rest are the layer outputs. (default: :obj:`(32, 32, 16, 8)`)
        dropout (float, optional): Dropout after each MLP layer. (default: :obj:`0.2`)
        std (float, optional): Std of the normal init of the tables. (default: :obj:`0.01`)
        block_pairs (int, optional): User-item pairs scored at once. (default: :obj:`2**20`)
    """

    batch_kind = "pairs"
    num_negatives = 4
    dsl_targets = (r"mlp_user\..*", r"mlp_item\..*")

    def __init__(
        self,
        num_users: int,
        num_items: int,
        *,
        embedding_dim: int = 16,
        mlp_layers: Sequence[int] = (32, 32, 16, 8),
        dropout: float = 0.2,
        std: float = 0.01,
        block_pairs: int = 2**20,
    ) -> None:
        super().__init__()
        # a float width failed deep in torch.empty, a single int in len(): both with a TypeError
        widths = list(mlp_layers) if is_sequence(mlp_layers) else []
        if len(widths) < 2 or not all(is_count(w) and w >= 1 for w in widths) or widths[0] % 2:
            raise ValueError(
                f"mlp_layers needs >= 2 positive integer widths, the first one even, got {mlp_layers!r}"
            )
        mlp_layers = [int(width) for width in widths]
        num_users, num_items, embedding_dim, block_pairs = check_sizes(
            num_users=num_users, num_items=num_items, embedding_dim=embedding_dim, block_pairs=block_pairs
        )
        dropout = check_probability("dropout", dropout)
        self.num_users = num_users
        self.num_items = num_items
        self.block_pairs = block_pairs
        mlp_dim = mlp_layers[0] // 2
        self.gmf_user = DenseEmbedding(num_users, embedding_dim, "normal", std)
        self.gmf_item = DenseEmbedding(num_items, embedding_dim, "normal", std)
        self.mlp_user = DenseEmbedding(num_users, mlp_dim, "normal", std)
        self.mlp_item = DenseEmbedding(num_items, mlp_dim, "normal", std)
        self.mlp = nn.ModuleList(nn.Linear(i, o) for i, o in zip(mlp_layers[:-1], mlp_layers[1:]))
        self.dropout = nn.Dropout(dropout)
        self.predict = nn.Linear(embedding_dim + mlp_layers[-1], 1)

    def reset_parameters(self) -> None:
        """Draws the four embedding tables anew from ``normal(0, std)`` and the MLP and
        prediction layers as :class:`torch.nn.Linear` does."""
        for module in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item, *self.mlp, self.predict):
            module.reset_parameters()

    def _first_halves(self) -> tuple[Tensor, Tensor]:
        """The user and item halves :math:`W_u, W_i` of the first MLP layer's weight."""
        return self.mlp[0].weight.split(self.mlp_user.embedding_dim, dim=1)

    def _fuse(
        self, user_part: Tensor, item_part: Tensor, gmf_user: Tensor, gmf_item: Tensor, drop: bool = True
    ) -> Tensor:
        r"""Logits ``[B, C]`` from the ``[B, .]`` user parts and the ``[B, C, .]`` (or broadcast
        ``[C, .]``) item parts. The output layer is split like the first one, so the GMF branch is
        one dot product per pair: :math:`h^\top [p \odot q; \phi] = (h_g \odot p)^\top q + h_m^\top \phi`.
        Without ``drop`` no dropout is applied, even in training mode.
        """
        dropout = self.dropout if drop else nn.Identity()
        # In-place ReLUs: full ranking is bound by the memory traffic of [B, C, .] activations.
        h = dropout((user_part.unsqueeze(1) + item_part).relu_())
        for layer in self.mlp[1:]:
            h = dropout(layer(h).relu_())
        h_gmf, h_mlp = self.predict.weight.split([gmf_user.size(-1), h.size(-1)], dim=1)
        gmf = torch.matmul(gmf_item, (gmf_user * h_gmf).unsqueeze(-1)).squeeze(-1)
        return gmf + h @ h_mlp.squeeze(0) + self.predict.bias

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits of ``[B]`` users with ``[B]`` or ``[B, C]`` items (same shape as ``items``)."""
        self.check_pairs(users, items)
        return self._logits(users, items)

    def _logits(self, users: Tensor, items: Tensor) -> Tensor:
        # forward without its check of the ids, which on a GPU would wait for the device every iteration
        flat = items.view(users.numel(), -1)
        w_user, w_item = self._first_halves()
        user_part = self.mlp_user(users) @ w_user.T
        item_part = self.mlp_item(flat) @ w_item.T + self.mlp[0].bias
        out = self._fuse(user_part, item_part, self.gmf_user(users), self.gmf_item(flat))
        return out.view(items.shape)

    def loss(
        self, graph, users: Tensor, pos_items: Tensor, neg_items: Tensor, reg_weight: float = 0.0
    ) -> Tensor:
        """Binary cross-entropy over each positive and its negatives, plus L2 on the batch's rows."""
        items = torch.cat([pos_items.view(-1, 1), neg_items.view(users.numel(), -1)], dim=1)
        logits = self._logits(users, items)
        labels = torch.zeros_like(logits)
        labels[:, 0] = 1.0
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        if reg_weight:
            rows = [table(users) for table in (self.gmf_user, self.mlp_user)]
            rows += [table(items) for table in (self.gmf_item, self.mlp_item)]
            loss = loss + reg_weight * sum(l2_penalty(r, users.numel()) for r in rows)
        return loss

    @torch.no_grad()
    def scorer(self, graph) -> ScoreFn:
        """``score(users, items=None)``: logits with both first-layer halves computed once per table;
        never with dropout, so a model still in training mode recommends as it evaluates."""
        w_user, w_item = self._first_halves()
        user_part = table_product(self.mlp_user, w_user)
        item_part = table_product(self.mlp_item, w_item) + self.mlp[0].bias
        gmf_user, gmf_item = self.gmf_user.to_dense(), self.gmf_item.to_dense()

        def pairs(users: Tensor, items: Tensor | None) -> Tensor:
            if items is None:  # [I, .] item sides broadcast against the block's users
                return self._fuse(user_part[users], item_part, gmf_user[users], gmf_item, drop=False)
            return self._fuse(
                user_part[users], item_part[items], gmf_user[users], gmf_item[items], drop=False
            )

        @torch.no_grad()
        def score(users: Tensor, items: Tensor | None = None) -> Tensor:
            self.check_pairs(users, items, candidates=True)
            return score_in_blocks(pairs, users, items, self.num_items, self.block_pairs)

        return score

    def macs(self, graph, batch_size: int, count: str = "executed") -> dict[str, float]:
        r"""MACs as implemented (:math:`d` and :math:`d'` the GMF and MLP tables' widths,
        :math:`h_1` and :math:`h_L` the first and last MLP widths):

        * per user: the first layer's user part :math:`d' h_1` and :math:`h_g \odot p_u`, :math:`d`;
        * per item: the first layer's item part :math:`d' h_1` (in training once per pair);
        * per pair: the GMF dot product :math:`d`, MLP layers 2.., and :math:`h_L` of the output.

        Training runs :math:`B` users and :math:`B(1+K)` pairs; full ranking :math:`U` users,
        :math:`I` items and :math:`UI` pairs, multiplying each MLP table once (its active entries
        only when genuinely sparse). ``"ideal"`` scales each product by the active fractions of the
        tables and layers in it. ``train_iteration`` is 3 x the forward (backward ≈ 2 x forward). A DSL
        growth step rebuilds the dense gradient of MLP layers 2.. where sparse, at the :math:`B(1+K)` pairs
        (:func:`~dslgraph.nn.base.growth_macs`); the first and output layers are read as dense weights,
        whose gradient the backward pass computes dense.
        """
        batch_size = check_macs(count, batch_size)
        d, h_last = self.gmf_user.embedding_dim, self.mlp[-1].out_features
        ideal = count == "ideal"
        first_w = self.mlp_user.embedding_dim * self.mlp[0].out_features
        first_w *= active_fraction(self.mlp[0]) if ideal else 1.0
        out_w = active_fraction(self.predict) if ideal else 1.0

        def user_side(sparse_kernel: bool) -> float:
            return first_w * table_density(self.mlp_user, count, sparse_kernel) + d * out_w

        def item_side(sparse_kernel: bool) -> float:
            return first_w * table_density(self.mlp_item, count, sparse_kernel)

        per_pair = (
            d * table_density(self.gmf_user, count) * table_density(self.gmf_item, count)
            + sum(linear_macs(layer, 1, count) for layer in self.mlp[1:])
            + h_last * out_w
        )
        pairs = batch_size * (1 + self.num_negatives)
        forward = batch_size * user_side(False) + pairs * (item_side(False) + per_pair)
        tables = self.num_users * user_side(True) + self.num_items * item_side(True)
        scoring = self.num_users * self.num_items * per_pair
        return {
            "train_forward": forward,
            "train_iteration": 3 * forward,
            "update_step": sum(growth_macs(layer, pairs, count) for layer in self.mlp[1:]),
            "inference_tables": tables,
            "inference_scoring": scoring,
            "inference": tables + scoring,
        }

    def __repr__(self) -> str:
        layers = [2 * self.mlp_user.embedding_dim] + [layer.out_features for layer in self.mlp]
        return (
            f"{self.__class__.__name__}({self.num_users}, {self.num_items}, "
            f"dim={self.gmf_user.embedding_dim}, mlp_layers={layers}, dropout={self.dropout.p}"
            f"{self._sparsity_repr()})"
        )
