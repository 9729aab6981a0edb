"""ConvNCF: a CNN over the outer product of a user's and an item's embeddings."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dslgraph.checks import is_count
from dslgraph.nn.base import (
    Recommender,
    ScoreFn,
    check_macs,
    check_sizes,
    linear_macs,
    score_in_blocks,
    table_density,
)
from dslgraph.nn.losses import bpr_loss, l2_penalty
from dslgraph.sparse.table import DenseEmbedding

log = logging.getLogger(__name__)


class ConvNCF(Recommender):
    r"""The ConvNCF model from `"Outer Product-based Neural Collaborative Filtering"
    <https://arxiv.org/abs/1808.03912>`_ (He et al., IJCAI 2018).

    The interaction map of a user and an item is the outer product of their embeddings; a stack of
    :math:`\log_2 d` convolutions (kernel 2, stride 2, ReLU) shrinks it from :math:`d \times d` to
    :math:`1 \times 1` and a linear layer reads the score:

    .. math::
        E_{ui} = p_u q_i^\top \in \mathbb{R}^{d \times d}, \qquad
        \hat{y}_{ui} = w^\top \mathrm{CNN}(E_{ui}),

    trained with BPR (one sampled negative per positive) plus L2 on the batch's embeddings
    (``reg_weight``). Every pair runs the whole CNN, so full ranking is costly (about 1.5M MACs
    per pair at the defaults) and is done in blocks of ``block_pairs`` pairs; the sampled protocol's
    ``score(users, items)`` runs the CNN on the candidates only. The paper pre-trains the tables
    with MF-BPR; ``pretrain_steps`` does so within the same run: its first training iterations
    score pairs by the dot product of their rows (MF-BPR, the CNN untouched), the later ones by the
    CNN, so that under DSL the tables are still trained from scratch under their budget.
    Evaluations always score with the CNN. Without pre-training, a larger init than the usual 0.01
    keeps the interaction maps from vanishing. :attr:`dsl_targets` are both tables.

    Args:
        num_users (int): Number of users.
        num_items (int): Number of items.
        embedding_dim (int, optional): Embedding size :math:`d`, a power of two. (default: :obj:`64`)
        channels (int, optional): Channels of every convolution. (default: :obj:`32`)
        std (float, optional): Std of the normal init of the tables. (default: :obj:`0.1`)
        block_pairs (int, optional): User-item pairs scored at once. (default: :obj:`4096`)
        pretrain_steps (int, optional): Training iterations of MF-BPR on the tables before the
            CNN takes over; counted in the model's state, so a resumed run goes on where it
            stopped. (default: :obj:`0`)
    """

    batch_kind = "pairs"
    num_negatives = 1
    dsl_targets = ("tables",)

    def __init__(
        self,
        num_users: int,
        num_items: int,
        *,
        embedding_dim: int = 64,
        channels: int = 32,
        std: float = 0.1,
        block_pairs: int = 4096,
        pretrain_steps: int = 0,
    ) -> None:
        super().__init__()
        if not is_count(embedding_dim) or embedding_dim < 2 or embedding_dim & (embedding_dim - 1):
            raise ValueError(f"embedding_dim must be a power of two >= 2, got {embedding_dim}")
        if not is_count(pretrain_steps) or pretrain_steps < 0:
            raise ValueError(f"pretrain_steps must be an integer >= 0, got {pretrain_steps!r}")
        embedding_dim, pretrain_steps = int(embedding_dim), int(pretrain_steps)
        num_users, num_items, channels, block_pairs = check_sizes(
            num_users=num_users, num_items=num_items, channels=channels, block_pairs=block_pairs
        )
        self.num_users = num_users
        self.num_items = num_items
        self.block_pairs = block_pairs
        self.user_embedding = DenseEmbedding(num_users, embedding_dim, "normal", std)
        self.item_embedding = DenseEmbedding(num_items, embedding_dim, "normal", std)
        num_layers = embedding_dim.bit_length() - 1
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if layer == 0 else channels, channels, kernel_size=2, stride=2)
            for layer in range(num_layers)
        )
        self.predict = nn.Linear(channels, 1)
        self.pretrain_steps = pretrain_steps
        if pretrain_steps:  # a buffer only then, so that checkpoints without pre-training still load
            self.register_buffer("pretrained_steps", torch.zeros((), dtype=torch.long))
        self._steps_read: int | None = None  # the buffer's value, read once (on CUDA a read syncs)
        self.register_load_state_dict_post_hook(_forget_steps_read)

    def reset_parameters(self) -> None:
        """Draws the embedding tables anew from ``normal(0, std)`` and the convolution
        and prediction layers as torch does; with ``pretrain_steps``, pre-training starts again."""
        for module in (self.user_embedding, self.item_embedding, *self.convs, self.predict):
            module.reset_parameters()
        if self.pretrain_steps:  # fresh tables are pre-trained again
            self.pretrained_steps.zero_()
            self._steps_read = None

    def _interact(self, user_rows: Tensor, item_rows: Tensor) -> Tensor:
        """Scores ``[B, C]`` of ``[B, d]`` user rows with ``[B, C, d]`` item rows."""
        d = user_rows.size(-1)
        x = (user_rows[:, None, :, None] * item_rows[:, :, None, :]).reshape(-1, 1, d, d)
        for conv in self.convs:
            x = F.relu(conv(x))
        return self.predict(x.flatten(1)).view(item_rows.shape[:2])

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores of ``[B]`` users with ``[B]`` or ``[B, C]`` items (same shape as ``items``)."""
        self.check_pairs(users, items)
        flat = items.view(users.numel(), -1)
        return self._interact(self.user_embedding(users), self.item_embedding(flat)).view(items.shape)

    def loss(
        self, graph, users: Tensor, pos_items: Tensor, neg_items: Tensor, reg_weight: float = 0.0
    ) -> Tensor:
        """BPR loss of each positive against its negatives, plus L2 on the batch's embeddings."""
        items = torch.cat([pos_items.view(-1, 1), neg_items.view(users.numel(), -1)], dim=1)
        user_rows, item_rows = self.user_embedding(users), self.item_embedding(items)
        if self.pretraining():
            self.pretrained_steps += 1
            self._steps_read += 1
            if self._steps_read == self.pretrain_steps:
                log.info("ConvNCF: MF-BPR pre-training done after %d iterations", self.pretrain_steps)
            scores = (user_rows.unsqueeze(1) * item_rows).sum(-1)
        else:
            scores = self._interact(user_rows, item_rows)
        loss = bpr_loss(scores[:, :1], scores[:, 1:])
        if reg_weight:
            rows = torch.cat([user_rows, item_rows.flatten(0, 1)])
            loss = loss + reg_weight * l2_penalty(rows, users.numel())
        return loss

    def pretraining(self) -> bool:
        """Whether the next training iteration is still one of MF-BPR pre-training."""
        if not (self.training and self.pretrain_steps):
            return False
        if self._steps_read is None:
            self._steps_read = int(self.pretrained_steps)
        return self._steps_read < self.pretrain_steps

    @torch.no_grad()
    def scorer(self, graph) -> ScoreFn:
        """``score(users, items=None)``: the CNN on every requested pair, a block at a time."""
        user_emb, item_emb = self.user_embedding.to_dense(), self.item_embedding.to_dense()

        def pairs(users: Tensor, items: Tensor | None) -> Tensor:
            item_rows = item_emb.expand(users.numel(), -1, -1) if items is None else item_emb[items]
            return self._interact(user_emb[users], item_rows)

        @torch.no_grad()
        def score(users: Tensor, items: Tensor | None = None) -> Tensor:
            self.check_pairs(users, items, candidates=True)
            return score_in_blocks(pairs, users, items, self.num_items, self.block_pairs)

        return score

    def macs(self, graph, batch_size: int, count: str = "executed") -> dict[str, float]:
        r"""MACs per pair: the outer product :math:`d^2` (``"ideal"``: :math:`d^2 \rho_P \rho_Q`,
        the products of two active entries), each convolution ``output positions x weights`` and
        the output layer. Training runs :math:`B(1+K)` pairs, full ranking :math:`UI`;
        ``train_iteration`` is 3 x the forward (backward ≈ 2 x forward).
        """
        batch_size = check_macs(count, batch_size)
        d = self.user_embedding.embedding_dim
        outer = d * d * table_density(self.user_embedding, count) * table_density(self.item_embedding, count)
        convs = sum(linear_macs(conv, (d >> (i + 1)) ** 2, count) for i, conv in enumerate(self.convs))
        per_pair = outer + convs + linear_macs(self.predict, 1, count)
        forward = batch_size * (1 + self.num_negatives) * per_pair
        return {
            "per_pair": per_pair,
            "train_forward": forward,
            "train_iteration": 3 * forward,
            "inference": self.num_users * self.num_items * per_pair,
        }

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_users}, {self.num_items}, "
            f"dim={self.user_embedding.embedding_dim}, channels={self.predict.in_features}"
            f"{self._sparsity_repr()})"
        )


def _forget_steps_read(model: ConvNCF, incompatible_keys) -> None:
    """Load-state-dict post-hook: the loaded ``pretrained_steps`` is read again at the next iteration.
    A module-level function, not a lambda, so that ``torch.save(model)`` and pickling can store it."""
    model._steps_read = None
