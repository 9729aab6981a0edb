"""CDAE: a denoising auto-encoder of each user's interaction row with a per-user latent offset."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from dslgraph.nn.base import (
    Recommender,
    ScoreFn,
    check_graph,
    check_macs,
    check_probability,
    check_rows,
    check_sizes,
    decode,
    dense_rows,
    growth_macs,
    interaction_matrix,
    linear_macs,
    per_user_macs,
)
from dslgraph.nn.losses import l2_penalty
from dslgraph.sparse.table import DenseEmbedding


class CDAE(Recommender):
    r"""The CDAE model from `"Collaborative Denoising Auto-Encoders for Top-N Recommender Systems"
    <https://dl.acm.org/doi/10.1145/2835776.2835837>`_ (Wu et al., WSDM 2016).

    A user's binary interaction row :math:`y_u`, corrupted by drop-out noise :math:`\tilde{y}_u`
    (each entry zeroed with probability :math:`q`, the rest scaled by :math:`1/(1-q)`), is encoded
    together with a per-user vector :math:`V_u` and decoded into a logit for every item:

    .. math::
        z_u = \sigma(W^\top \tilde{y}_u + V_u + b), \qquad
        \hat{y}_u = \sigma(W'^\top z_u + b'),

    trained with binary cross-entropy over every item of the row (summed over items, averaged over
    the batch's users), plus L2 on the batch's rows of :math:`V` (``reg_weight``). Scores are the
    decoder's logits for the uncorrupted row (the sigmoid does not change a ranking); candidate
    scoring decodes the candidates only.

    :attr:`dsl_targets` are the user table and the encoder weight; the decoder and the biases stay
    dense. Measured on ML-1M (docs/results.md §3): with the decoder sparsified too, CDAE fell to the
    most-popular level at 50% and 80% sparsity (Recall@20 0.109 / 0.119 vs 0.231 dense); with the
    decoder dense it kept or beat the dense model (0.229 / 0.240). Pass other ``targets`` to
    :class:`~dslgraph.sparse.DynamicSparseLearning` to change it.

    Args:
        num_users (int): Number of users.
        num_items (int): Number of items.
        hidden_channels (int, optional): Latent size :math:`K`. (default: :obj:`50`, the paper's)
        corruption (float, optional): Drop-out probability :math:`q` of the input. (default: :obj:`0.5`)
        std (float, optional): Std of the normal init of the user table. (default: :obj:`0.01`)
    """

    batch_kind = "users"
    dsl_targets = ("tables", r"encoder\.weight")
    folds_in = True  # reads the user's row

    def __init__(
        self,
        num_users: int,
        num_items: int,
        *,
        hidden_channels: int = 50,
        corruption: float = 0.5,
        std: float = 0.01,
    ) -> None:
        super().__init__()
        num_users, num_items, hidden_channels = check_sizes(
            num_users=num_users, num_items=num_items, hidden_channels=hidden_channels
        )
        corruption = check_probability("corruption", corruption)
        self.num_users = num_users
        self.num_items = num_items
        self.corruption = nn.Dropout(corruption)
        self.user_embedding = DenseEmbedding(num_users, hidden_channels, "normal", std)
        self.encoder = nn.Linear(num_items, hidden_channels)
        self.decoder = nn.Linear(hidden_channels, num_items)

    def reset_parameters(self) -> None:
        """Draws the user vectors anew from ``normal(0, std)`` and the encoder and decoder
        as :class:`torch.nn.Linear` does."""
        for module in (self.user_embedding, self.encoder, self.decoder):
            module.reset_parameters()

    def input_graph(self, data: HeteroData) -> Tensor:
        """The binary ``[num_users, num_items]`` training matrix (CSR)."""
        self.check_data_sizes(data)  # the interactions' ids: interaction_matrix checks them, naming them
        return interaction_matrix(data, self.float_dtype())

    def encode(self, rows: Tensor, user_rows: Tensor) -> Tensor:
        """Latent codes :math:`z_u` of ``[B, num_items]`` (possibly corrupted) rows."""
        return torch.sigmoid(self.encoder(rows) + user_rows)

    def forward(self, rows: Tensor, users: Tensor) -> Tensor:
        """Logits ``[B, num_items]`` of the uncorrupted ``rows`` of ``users``."""
        self.check_pairs(users)
        check_rows(rows, self.num_items, users.numel(), sparse=True)
        return self.decoder(self.encode(rows, self.user_embedding(users)))

    def loss(self, graph: Tensor, users: Tensor, reg_weight: float = 0.0) -> Tensor:
        """Binary cross-entropy of the corrupted rows' reconstruction, plus L2 on the users' vectors."""
        rows = dense_rows(graph, users)
        user_rows = self.user_embedding(users)
        logits = self.decoder(self.encode(self.corruption(rows), user_rows))
        loss = F.binary_cross_entropy_with_logits(logits, rows, reduction="sum") / users.numel()
        if reg_weight:
            loss = loss + reg_weight * l2_penalty(user_rows, users.numel())
        return loss

    @torch.no_grad()
    def scorer(self, graph: Tensor) -> ScoreFn:
        """``score(users, items=None)``: decoder logits of the users' uncorrupted rows."""
        check_graph(graph, (self.num_users, self.num_items), "CDAE")

        @torch.no_grad()
        def score(users: Tensor, items: Tensor | None = None) -> Tensor:
            self.check_pairs(users, items, candidates=True)
            hidden = self.encode(dense_rows(graph, users), self.user_embedding(users))
            return decode(self.decoder, hidden, items)

        return score

    def macs(self, graph, batch_size: int, count: str = "executed") -> dict[str, float]:
        r"""MACs per user: encoder :math:`IK` plus decoder :math:`KI` (the dense row is multiplied
        as it is; ``"ideal"`` charges the active weights only). Training runs :math:`B` users, full
        ranking all :math:`U`; backward runs two products for the decoder, one for the encoder (see
        :func:`~dslgraph.nn.base.per_user_macs`). A DSL growth step rebuilds the dense gradient of a
        sparse layer, :math:`BIK` (:func:`~dslgraph.nn.base.growth_macs`).
        """
        batch_size = check_macs(count, batch_size)
        encoder = linear_macs(self.encoder, 1, count)
        per_user = encoder + linear_macs(self.decoder, 1, count)
        update = sum(growth_macs(layer, batch_size, count) for layer in (self.encoder, self.decoder))
        return per_user_macs(per_user, batch_size, self.num_users, input_layer=encoder, update_step=update)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_users}, {self.num_items}, "
            f"hidden={self.encoder.out_features}, corruption={self.corruption.p}{self._sparsity_repr()})"
        )
