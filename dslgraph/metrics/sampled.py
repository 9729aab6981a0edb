r"""Sampled top-:math:`K` evaluation: each user's positive ranked among a fixed set of sampled negatives.

This is the protocol of NeuMF and ConvNCF (:func:`~dslgraph.data.protocols.leave_one_out` builds its
data): every evaluated user :math:`u` has one held-out positive item and :math:`N` negatives
(typically 100), and a model scores these :math:`N + 1` candidates only. With the 0-based rank

.. math::
    r_u = |\{\, j : s_{u, j} \geq s_{u, \mathrm{pos}} \,\}|

of the positive among the negatives :math:`j` (ties and NaN scores count *against* the positive, so a
model scoring all candidates alike does not get full marks):

* ``hr@K`` :math:`= \mathbb{1}[r_u < K]`;
* ``ndcg@K`` :math:`= \mathbb{1}[r_u < K] / \log_2(r_u + 2)`.

Both are averaged over the evaluated users.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from dslgraph.checks import is_count
from dslgraph.data.graph import EDGE, check_interaction_splits, is_index, num_users_items
from dslgraph.metrics.ranking import check_embeddings, check_ks, eval_split, mean_over_users

SAMPLED_METRICS: tuple[str, ...] = ("hr", "ndcg")
"""The metric names :class:`SampledRankingEvaluator` reports."""

CandidateScoreFn = Callable[[Tensor, Tensor], Tensor]
"""Maps ``[B]`` user ids and their ``[B, C]`` candidate item ids to ``[B, C]`` scores."""


class SampledRankingEvaluator:
    r"""A sampled top-:math:`K` evaluator: one positive per user ranked among fixed sampled negatives.

    Calling it with a score function returns ``{'hr@10': ..., 'ndcg@10': ..., 'hr@20': ..., ...}``
    as defined in :mod:`dslgraph.metrics.sampled`, averaged over :attr:`num_eval_users`.

    Args:
        test_index (torch.Tensor): The ``[2, U]`` (user, positive item) pairs, one column per evaluated
            user (a user may appear in several columns; each counts once).
        negatives (torch.Tensor): The ``[U, N]`` sampled negative items, row :math:`i` for column
            :math:`i` of :obj:`test_index`, distinct and other than its positive.
        ks (Sequence[int], optional): The cut-offs :math:`K`, each in :math:`[1, N + 1]`.
            (default: :obj:`(10, 20)`)
        batch_size (int, optional): The number of users scored at once. (default: :obj:`4096`)
        device (torch.device or str, optional): The device user and candidate batches are created on
            and handed to the score function. (default: the device of :obj:`test_index`)
    """

    def __init__(
        self,
        test_index: Tensor,
        negatives: Tensor,
        ks: Sequence[int] = (10, 20),
        batch_size: int = 4096,
        device: torch.device | str | None = None,
    ) -> None:
        for name, ids in (("test_index", test_index), ("negatives", negatives)):
            if not isinstance(ids, Tensor):  # a NumPy array or a list failed reading its missing dim()
                raise ValueError(f"{name} must be a torch.Tensor, got {type(ids).__name__}")
        if test_index.dim() != 2 or test_index.size(0) != 2:
            raise ValueError(f"test_index must have shape [2, U], got {tuple(test_index.shape)}")
        if negatives.dim() != 2 or negatives.size(0) != test_index.size(1) or negatives.size(1) < 1:
            raise ValueError(
                f"negatives must have shape [U={test_index.size(1)}, N >= 1], got {tuple(negatives.shape)}"
            )
        if not (is_index(test_index) and is_index(negatives)):  # a boolean mask would pass as ids 0 and 1
            raise ValueError("test_index and negatives must hold integer ids")
        for name, ids in (("test_index", test_index), ("negatives", negatives)):
            # an id of -1 (a padding value) indexed the last user's or item's embedding, without a word
            if ids.numel() and ids.min() < 0:
                raise ValueError(f"{name} must hold ids >= 0, got {int(ids.min())}")
        num_candidates = negatives.size(1) + 1
        ks = check_ks(ks, num_candidates, "candidates (1 + negatives)=")
        if not (is_count(batch_size) and batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        positive = test_index[1].view(-1, 1).long().cpu()
        negatives = negatives.long().cpu()
        clash = (negatives == positive).any(dim=1).nonzero().view(-1)
        if clash.numel():
            i = int(clash[0])
            raise ValueError(
                f"user {int(test_index[0, i])}'s positive item {int(positive[i])} is among its negatives"
            )
        # a negative given twice outranked the positive twice, as two items would
        ordered = negatives.sort(dim=1).values
        repeated = (ordered[:, 1:] == ordered[:, :-1]).nonzero()
        if repeated.numel():
            i, j = repeated[0].tolist()
            raise ValueError(
                f"user {int(test_index[0, i])}'s negatives hold item {int(ordered[i, j])} more than once "
                f"(row {i}); each row must hold distinct items"
            )

        self.ks = tuple(sorted(set(ks)))
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else test_index.device
        self.users = test_index[0].long().to(self.device)
        # Per device: the [U, 1 + N] candidates, the positive in column 0.
        self._candidates = {torch.device("cpu"): torch.cat([positive, negatives], dim=1)}
        # the largest user and item ids, which embeddings must cover (-1 without users)
        users = test_index[0].cpu()
        self._max_ids = (
            (int(users.max()), int(self._candidates[torch.device("cpu")].max()))
            if users.numel()
            else (-1, -1)
        )

    @classmethod
    def from_data(cls, data: HeteroData, split: str = "test", **kwargs) -> SampledRankingEvaluator:
        """Builds the evaluator of the ``'test'`` (``edge_label_index``, ``test_negatives``) or ``'val'``
        (also ``'validation'``; ``val_edge_label_index``, ``val_negatives``) split of a
        :func:`~dslgraph.data.protocols.leave_one_out` output. Remaining keyword arguments go to
        :class:`SampledRankingEvaluator`.
        """
        keys = {
            "test": ("edge_label_index", "test_negatives"),
            "val": ("val_edge_label_index", "val_negatives"),
        }
        split = eval_split(split)
        num_users_items(data)  # data of another layout named as such, before data[EDGE] adds that type to it
        check_interaction_splits(data)
        store = data[EDGE]
        missing = [key for key in keys[split] if key not in store]
        if missing:
            raise ValueError(
                f"split={split!r} needs {missing} in data[{EDGE}]; build the data with leave_one_out"
                + (" (validation=True)" if split == "val" else "")
            )
        return cls(*(store[key] for key in keys[split]), **kwargs)

    @property
    def num_eval_users(self) -> int:
        """The number of evaluated (user, positive) pairs every metric averages over."""
        return self.users.numel()

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The keys of the dictionary a call returns, *e.g.* ``('hr@10', 'hr@20', 'ndcg@10', 'ndcg@20')``."""
        return tuple(f"{m}@{k}" for m in SAMPLED_METRICS for k in self.ks)

    @property
    def num_candidates(self) -> int:
        """The number of items ranked per user: the positive and its negatives."""
        return self._candidates[torch.device("cpu")].size(1)

    def _candidates_on(self, device: torch.device) -> Tensor:
        if device not in self._candidates:
            self._candidates[device] = self._candidates[torch.device("cpu")].to(device)
        return self._candidates[device]

    @torch.no_grad()
    def __call__(self, score_fn: CandidateScoreFn) -> dict[str, float]:
        """Evaluates a score function and returns the metrics averaged over :attr:`num_eval_users`.

        Args:
            score_fn (Callable): Maps ``[B]`` user ids and their ``[B, C]`` candidate items (the positive
                in column 0, then the negatives), both on :attr:`device`, to ``[B, C]`` scores on any
                device.
        """
        values: dict[str, list[Tensor]] = {name: [] for name in self.metric_names}
        candidates = self._candidates_on(self.device)
        for start in range(0, self.num_eval_users, self.batch_size):
            users = self.users[start : start + self.batch_size]
            items = candidates[start : start + self.batch_size]
            scores = score_fn(users, items)
            if not isinstance(scores, Tensor):  # a NumPy array failed in its sum(dim=1)
                raise ValueError(f"score_fn must return a torch.Tensor, got {type(scores).__name__}")
            if scores.shape != items.shape:
                raise ValueError(
                    f"score_fn must return shape {tuple(items.shape)}, got {tuple(scores.shape)}"
                )
            if scores.is_complex():  # failed inside torch's "<", which complex numbers do not have
                raise ValueError(f"score_fn must return real-valued scores, got {scores.dtype}")
            # Not "greater or equal": a NaN score of either side also counts against the positive.
            rank = (~(scores[:, 1:] < scores[:, :1])).sum(dim=1).cpu()
            gain = 1.0 / torch.log2(rank.to(torch.float64) + 2)
            for k in self.ks:
                hit = rank < k
                values[f"hr@{k}"].append(hit.to(torch.float64))
                values[f"ndcg@{k}"].append(gain[hit])
        return mean_over_users(values, self.num_eval_users)

    def evaluate_embeddings(self, user_emb: Tensor, item_emb: Tensor) -> dict[str, float]:
        r"""Evaluates dot-product scores :math:`\mathbf{e}_u^{\top} \mathbf{e}_i` of user and item embeddings.

        Args:
            user_emb (torch.Tensor): The ``[num_users, d]`` user embeddings.
            item_emb (torch.Tensor): The ``[num_items, d]`` item embeddings (same dtype and device).
        """
        check_embeddings(user_emb, item_emb)
        # an id past the tables failed as an IndexError inside the first batch (or a CUDA assert)
        max_user, max_item = self._max_ids
        if max_user >= user_emb.size(0) or max_item >= item_emb.size(0):
            raise ValueError(
                f"expected ids below {user_emb.size(0)} users and {item_emb.size(0)} items (the embedding "
                f"counts), got users up to {max_user} and items up to {max_item}"
            )
        user_emb, item_emb = user_emb.detach(), item_emb.detach()

        def score_fn(users: Tensor, items: Tensor) -> Tensor:
            users, items = users.to(user_emb.device), items.to(user_emb.device)
            return torch.bmm(item_emb[items], user_emb[users].unsqueeze(-1)).squeeze(-1)

        return self(score_fn)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_eval_users={self.num_eval_users}, "
            f"num_candidates={self.num_candidates}, ks={self.ks})"
        )
