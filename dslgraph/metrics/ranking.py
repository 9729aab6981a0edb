r"""Full-ranking top-:math:`K` evaluation of recommenders (the LightGCN protocol).

Every evaluated user is scored against *all* items; items the user has already seen (training and,
for the test split, validation interactions) are excluded by setting their score to :math:`-\infty`,
and only users with at least one target interaction are averaged over.
For a user :math:`u` with target set :math:`T_u` and top-:math:`K` list :math:`R_u`:

* ``recall@K`` :math:`= |R_u \cap T_u| / |T_u|`;
* ``capped_recall@K`` :math:`= |R_u \cap T_u| / \min(K, |T_u|)`, the recall of Liang et al. (2018) that the
  Mult-VAE and DSL authors report under the held-out-users protocol (it reaches 1 when the top
  :math:`K` are all targets, however many targets a user has);
* ``precision@K`` :math:`= |R_u \cap T_u| / K`;
* ``hr@K`` (hit ratio) :math:`= \mathbb{1}[|R_u \cap T_u| > 0]`;
* ``ndcg@K`` as in :class:`RankingEvaluator`.

These are the definitions of PyG's :class:`~torch_geometric.metrics.LinkPredRecall`,
:class:`~torch_geometric.metrics.LinkPredPrecision`, :class:`~torch_geometric.metrics.LinkPredHitRatio`
and :class:`~torch_geometric.metrics.LinkPredNDCG` (``capped_recall`` has no PyG counterpart).
Users are processed in batches, each batch in a single vectorised top-:math:`\max K` pass shared by
all cut-offs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from dslgraph.checks import as_count, is_count, is_sequence
from dslgraph.data.graph import (
    EDGE,
    check_interaction_splits,
    check_pair_index,
    interaction_csr,
    num_users_items,
)
from dslgraph.sparse.ops import csr_segments, exclude_entries

logger = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("recall", "ndcg", "precision", "hr", "capped_recall")
"""The metric names :class:`RankingEvaluator` understands."""

#: RecBole's names of the metrics that dslgraph names otherwise: its hit@K, the share of users with a hit in
#: their top K, is hr@K.
RECBOLE_METRICS: dict[str, str] = {"hit": "hr"}

ScoreFn = Callable[[Tensor], Tensor]
"""Maps a ``[B]`` tensor of user ids to a ``[B, num_items]`` tensor of scores."""


def eval_split(split: str) -> str:
    """``"test"`` or ``"val"`` for a split named ``"test"``, ``"val"`` or ``"validation"``: the evaluators'
    ``from_data`` took only ``"val"`` and ``Trainer.evaluate`` only ``"validation"`` (the name of its
    ``metrics.json`` entries), each refusing the other's."""
    names = {"test": "test", "val": "val", "validation": "val"}
    if not isinstance(split, str) or split not in names:
        raise ValueError(f"split must be 'test' or 'val' (also 'validation'), got {split!r}")
    return names[split]


def metric_names_hint(names: Iterable[str], metrics: Collection[str], with_k: bool = True) -> str:
    """`` (metric names are lower case: 'recall@20')``, `` (RecBole's 'hit' is 'hr' here)``, or both, for
    the ``names`` (``METRIC@K``, or ``METRIC`` where not ``with_k``) whose metric is none of ``metrics`` as
    it is written, and, where not ``with_k``, the metrics and ks meant by names given a cut-off; else ``""``.
    What the evaluator's refusal of its metrics, and the settings' and the trainer's of a monitor, say."""
    split = [name.partition("@") for name in names if isinstance(name, str)]
    unknown = [(metric, at + k if with_k else "") for metric, at, k in split if metric not in metrics]
    # RecBole reads its metrics' names in any case (Recall, NDCG)
    lower = [metric.lower() + k for metric, k in unknown if metric.lower() in metrics]
    recbole = {
        metric: ours for metric, _ in unknown if (ours := RECBOLE_METRICS.get(metric.lower())) in metrics
    }
    parts = [f"metric names are lower case: {', '.join(map(repr, lower))}"] if lower else []
    if recbole:
        parts.append(f"RecBole's {', '.join(f'{name!r} is {ours!r}' for name, ours in recbole.items())} here")
    cut = [(metric, k) for metric, at, k in split if at and not with_k]
    if cut:  # RankingEvaluator(metrics=["recall@20"]): the cut-offs are ks, for every metric alike
        meant = [recbole.get(name, name.lower() if name.lower() in metrics else name) for name, _ in cut]
        ks = sorted({int(k) for _, k in cut if k.isdigit()})
        parts.append(
            f"the cut-offs are ks, apart from the names: metrics={meant}" + (f", ks={ks}" if ks else "")
        )
    return f" ({'; '.join(parts)})" if parts else ""


def check_ks(ks: Sequence[int], upper: int, upper_label: str = "") -> tuple[int, ...]:
    """The cut-offs ``ks`` as a tuple, checked to be integers in ``[1, upper]`` (``upper_label``, such as
    ``"num_items="``, goes before the bound in the message); ``2.5`` or a bare ``3`` fails naming them rather
    than becoming ``2`` or a TypeError."""
    values = tuple(ks) if is_sequence(ks) and not isinstance(ks, Tensor) else ()
    integers = all(is_count(k) for k in values)
    if not values or not integers or min(values) < 1 or max(values) > upper:
        raise ValueError(f"ks must be non-empty integers in [1, {upper_label}{upper}], got {ks!r}")
    return tuple(int(k) for k in values)


def check_embeddings(user_emb: Tensor, item_emb: Tensor) -> None:
    """Raises a :class:`ValueError` unless ``user_emb`` and ``item_emb`` are 2-D floating-point tensors of
    one width, dtype and device, whose rows can be multiplied (a mismatch failed inside ``torch.mm`` /
    ``torch.bmm``, naming neither argument)."""
    for name, emb in (("user_emb", user_emb), ("item_emb", item_emb)):
        if not (isinstance(emb, Tensor) and emb.dim() == 2 and emb.is_floating_point()):
            got = f"{tuple(emb.shape)} {emb.dtype}" if isinstance(emb, Tensor) else type(emb).__name__
            raise ValueError(f"{name} must be a 2-D floating-point torch.Tensor, got {got}")
    if (user_emb.size(1), user_emb.dtype, user_emb.device) != (
        item_emb.size(1),
        item_emb.dtype,
        item_emb.device,
    ):
        raise ValueError(
            "user_emb and item_emb must have the same width, dtype and device, got "
            f"{tuple(user_emb.shape)} {user_emb.dtype} on {user_emb.device} and "
            f"{tuple(item_emb.shape)} {item_emb.dtype} on {item_emb.device}"
        )


class RankingEvaluator:
    r"""A full-ranking top-:math:`K` evaluator for one fixed split of user-item interactions.

    The interaction indices are compressed once, so the same evaluator can be called every epoch.
    Calling it with a score function returns a dictionary such as
    ``{'recall@20': ..., 'ndcg@20': ..., 'precision@20': ..., 'hr@20': ..., 'capped_recall@20': ...}``;
    the number of users averaged over is :attr:`num_eval_users`. NDCG uses binary relevance and an
    ideal ranking that places all :math:`\min(|T_u|, K)` reachable targets first:

    .. math::
        \mathrm{NDCG@K}(u) = \frac{\sum_{i=1}^{K} \mathbb{1}[r_i \in T_u] / \log_2(i + 1)}
        {\sum_{i=1}^{\min(|T_u|, K)} 1 / \log_2(i + 1)}

    Tied scores are ordered as :func:`torch.topk` returns them, as in the LightGCN code, RecBole and
    PyG: a model that scores many items alike (e.g. a constant) can be credited hits by that order.
    Every cut-off reads one top-:math:`\max K` list, so each top :math:`K` is a prefix of it and
    ``recall@10 <= recall@20`` always; which tied items make the top 10 can then depend on
    :math:`\max K` (``topk(10)`` and the first 10 of ``topk(20)`` may differ), so ``@10`` of two
    evaluations with other ``ks`` is the same only where scores do not tie. A NaN score is never a hit.

    Args:
        num_users (int): The number of users.
        num_items (int): The number of items (every one of them is ranked).
        target_index (torch.Tensor): The ``[2, E]`` (user, item) interactions to retrieve.
        exclude_index (torch.Tensor or list[torch.Tensor], optional): ``[2, E]`` interactions whose
            items are removed from each user's ranking, *e.g.* the training (and validation) edges.
            (default: :obj:`None`)
        ks (Sequence[int], optional): The cut-offs :math:`K`, as :func:`evaluate_ranking`'s and
            :class:`~dslgraph.metrics.SampledRankingEvaluator`'s (training evaluates at
            :class:`~dslgraph.train.TrainConfig`'s ``ks``, ``(20,)``, the papers' cut-off).
            (default: :obj:`(10, 20)`)
        metrics (Sequence[str], optional): A subset of :obj:`METRICS`, ``('recall', 'ndcg',
            'precision', 'hr', 'capped_recall')``. (default: all of them)
        batch_size (int, optional): The number of users scored at once; peak memory is about
            ``batch_size * num_items`` scores. (default: :obj:`1024`)
        device (torch.device or str, optional): The device user-id batches are created on and handed
            to the score function. The index structures follow the scores to their device.
            (default: the device of :obj:`target_index`)
        progress (bool, optional): Show a :mod:`tqdm` progress bar over user batches.
            (default: :obj:`False`)
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        target_index: Tensor,
        exclude_index: Tensor | Sequence[Tensor] | None = None,
        ks: Sequence[int] = (10, 20),
        metrics: Sequence[str] = METRICS,
        batch_size: int = 1024,
        device: torch.device | str | None = None,
        progress: bool = False,
    ) -> None:
        num_users, num_items = as_count(num_users, "num_users"), as_count(num_items, "num_items")
        ks = check_ks(ks, num_items, "num_items=")
        # a bare "recall" was read as its letters, and reported as ('r', 'e', 'c', 'a', 'l', 'l')
        names = tuple(metrics) if is_sequence(metrics) else ()
        if not names or any(name not in METRICS for name in names):
            raise ValueError(
                f"metrics must be a non-empty subset of {METRICS}, got {metrics!r}"
                f"{metric_names_hint(names, METRICS, with_k=False)}"
            )
        if not (is_count(batch_size) and batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if exclude_index is None:
            exclude_index = []
        elif isinstance(exclude_index, Tensor):
            exclude_index = [exclude_index]

        self.num_users = num_users
        self.num_items = num_items
        self.ks = tuple(sorted(set(ks)))
        self.metrics = tuple(m for m in METRICS if m in names)
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else target_index.device
        self.progress = progress

        target_crow, target_col = self._compress([target_index], "target_index")
        exclude_crow, exclude_col = self._compress(list(exclude_index), "exclude_index")
        num_targets = target_crow.diff()
        self.users = torch.nonzero(num_targets).view(-1).to(self.device)
        # Per device: (target crow, target col, exclusion crow, exclusion col, |T_u| of all users).
        self._index: dict[torch.device, tuple[Tensor, ...]] = {}
        self._index[torch.device("cpu")] = (target_crow, target_col, exclude_crow, exclude_col, num_targets)

    @classmethod
    def from_data(cls, data: HeteroData, split: str = "test", **kwargs) -> RankingEvaluator:
        r"""Builds the evaluator of a :mod:`dslgraph.data` split.

        The ``'test'`` split (``edge_label_index``) excludes the training and, when present, validation
        interactions; the ``'val'`` (or ``'validation'``) split (``val_edge_label_index``) excludes the
        training ones.
        Remaining keyword arguments go to :class:`RankingEvaluator`.
        """
        num_users, num_items = num_users_items(data)
        check_interaction_splits(data)
        store = data[EDGE]
        split = eval_split(split)
        if split == "test":
            target = store.edge_label_index
            exclude = [store.edge_index]
            if "val_edge_label_index" in store:
                exclude.append(store.val_edge_label_index)
        else:
            if "val_edge_label_index" not in store:
                raise ValueError("split='val' needs data with a validation split (val_edge_label_index)")
            target, exclude = store.val_edge_label_index, [store.edge_index]
        return cls(num_users, num_items, target, exclude, **kwargs)

    @property
    def num_eval_users(self) -> int:
        """The number of users with at least one target, *i.e.* the users every metric averages over."""
        return self.users.numel()

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The keys of the dictionary a call returns, *e.g.* ``('recall@20', 'ndcg@20', ...)``."""
        return tuple(f"{m}@{k}" for m in self.metrics for k in self.ks)

    def _compress(self, indices: list[Tensor], name: str) -> tuple[Tensor, Tensor]:
        for index in indices:
            check_pair_index(name, index, self.num_items, self.num_users)
        if not indices:
            return torch.zeros(self.num_users + 1, dtype=torch.long), torch.empty(0, dtype=torch.long)
        index = torch.cat([i.detach().long().cpu() for i in indices], dim=1)
        csr = interaction_csr(index, self.num_users, self.num_items)  # duplicates merged, rows sorted
        return csr.crow_indices(), csr.col_indices()

    def _index_on(self, device: torch.device) -> tuple[Tensor, ...]:
        if device not in self._index:
            self._index[device] = tuple(t.to(device) for t in self._index[torch.device("cpu")])
        return self._index[device]

    def __call__(self, score_fn: ScoreFn) -> dict[str, float]:
        r"""Evaluates a score function and returns the metrics averaged over :attr:`num_eval_users`.

        Args:
            score_fn (Callable): Maps a ``[B]`` tensor of user ids to their ``[B, num_items]`` scores
                on any device. Seen items are set to :math:`-\infty` in the returned tensor itself
                when it is one of its own; a view of another tensor (an expanded popularity row, rows
                of a stored score matrix), one with a zero stride or a parameter is copied first. A
                tensor that the function keeps and returns whole is overwritten.
        """
        return self._evaluate(score_fn, own_scores=False)

    @torch.no_grad()
    def _evaluate(self, score_fn: ScoreFn, own_scores: bool) -> dict[str, float]:
        """:meth:`__call__`; ``own_scores``: the scores are the evaluator's own, written unchecked."""
        max_k = self.ks[-1]
        discount = 1.0 / torch.arange(2, max_k + 2, dtype=torch.float64).log2()
        idcg = torch.cat([discount.new_zeros(1), discount.cumsum(0)])
        values: dict[str, list[Tensor]] = {name: [] for name in self.metric_names}

        batches = self.users.split(self.batch_size)
        for users in tqdm(batches, desc="evaluating", unit="batch", leave=False, disable=not self.progress):
            scores = score_fn(users)
            self._check_scores(scores, users.numel())
            device = scores.device
            target_crow, target_col, exclude_crow, exclude_col, num_targets = self._index_on(device)
            users = users.to(device)

            scores = exclude_entries(scores, exclude_crow, exclude_col, users, copy_shared=not own_scores)
            top_score, top_item = scores.topk(max_k, dim=1)
            # the batch's [B, num_items] scores (750 MB for 2048 Amazon-book users) go before the next
            # batch is scored: kept until `scores` is reassigned, two batches' would be held at once
            del scores

            # A top item is a hit iff (batch row, item) is among the sorted keys of the batch's targets.
            pos, row = csr_segments(target_crow, users)
            target_key = row * self.num_items + target_col[pos]
            top_key = torch.arange(users.numel(), device=device).view(-1, 1) * self.num_items + top_item
            # Every batch user has a target, so target_key is non-empty.
            found = torch.searchsorted(target_key, top_key).clamp_(max=target_key.numel() - 1)
            # An excluded item can only be a target if the splits overlap; it is never recommended. A NaN
            # score (topk ranks it first) is never a hit either: it counts against the model, as ties do in
            # the sampled protocol.
            hit = (target_key[found] == top_key) & (top_score > float("-inf"))

            hit = hit.to(torch.float64)
            hits = hit.cumsum(1).cpu()
            dcg = (hit * discount.to(device)).cumsum(1).cpu()
            target_counts = num_targets[users].cpu()
            for k in self.ks:
                hits_k = hits[:, k - 1]
                per_user = {
                    "recall": hits_k / target_counts,
                    "precision": hits_k / k,
                    "hr": (hits_k > 0).to(torch.float64),
                    "ndcg": dcg[:, k - 1] / idcg[target_counts.clamp(max=k)],
                    "capped_recall": hits_k / target_counts.clamp(max=k),
                }
                for m in self.metrics:
                    values[f"{m}@{k}"].append(per_user[m])

        return mean_over_users(values, self.num_eval_users)

    def _check_scores(self, scores: Tensor, num_rows: int) -> None:
        """Raises a :class:`ValueError` unless a score function's ``scores`` are a floating-point
        ``[num_rows, num_items]`` tensor (a batch of ``num_rows`` users)."""
        if not isinstance(scores, Tensor):  # a NumPy array failed reading its missing is_floating_point
            raise ValueError(f"score_fn must return a torch.Tensor, got {type(scores).__name__}")
        expected = (num_rows, self.num_items)
        if scores.shape != expected:
            raise ValueError(f"score_fn must return shape {expected}, got {tuple(scores.shape)}")
        if not scores.is_floating_point():  # seen items get -inf, which an integer tensor cannot hold
            raise ValueError(f"score_fn must return floating-point scores, got {scores.dtype}")

    def evaluate_embeddings(self, user_emb: Tensor, item_emb: Tensor) -> dict[str, float]:
        r"""Evaluates dot-product scores :math:`\mathbf{e}_u^{\top} \mathbf{e}_i` of user and item embeddings.

        Args:
            user_emb (torch.Tensor): The ``[num_users, d]`` user embeddings.
            item_emb (torch.Tensor): The ``[num_items, d]`` item embeddings (same dtype and device).
        """
        check_embeddings(user_emb, item_emb)
        if user_emb.size(0) != self.num_users or item_emb.size(0) != self.num_items:
            raise ValueError(
                f"expected {self.num_users} user and {self.num_items} item embeddings, "
                f"got {user_emb.size(0)} and {item_emb.size(0)}"
            )
        item_t = item_emb.detach().t()
        user_emb = user_emb.detach()
        # One score buffer for all batches: a fresh batch_size x num_items allocation per batch costs
        # about as much as the product itself on CPU (page faults on every new block).
        buffer = user_emb.new_empty(min(self.batch_size, self.num_eval_users), self.num_items)

        def score_fn(users: Tensor) -> Tensor:
            out = buffer[: users.numel()]
            return torch.mm(user_emb[users.to(user_emb.device)], item_t, out=out)

        return self._evaluate(score_fn, own_scores=True)  # the buffer is written every batch anyway

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_eval_users={self.num_eval_users}, "
            f"num_items={self.num_items}, ks={self.ks}, metrics={self.metrics})"
        )


def evaluate_ranking(
    score_fn: ScoreFn,
    num_users: int,
    num_items: int,
    target_index: Tensor,
    exclude_index: Tensor | Sequence[Tensor] | None = None,
    ks: Sequence[int] = (10, 20),
    metrics: Sequence[str] = METRICS,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, float]:
    r"""Full-ranking top-:math:`K` metrics of a score function, *e.g.* ``{'recall@20': 0.18, ...}``.

    A one-shot wrapper around :class:`RankingEvaluator` (which also reports the number of evaluated
    users and should be reused when the same split is evaluated repeatedly); see it for the arguments.
    """
    evaluator = RankingEvaluator(
        num_users, num_items, target_index, exclude_index, ks, metrics, batch_size, device, progress
    )
    return evaluator(score_fn)


def evaluate_embeddings(
    user_emb: Tensor,
    item_emb: Tensor,
    target_index: Tensor,
    exclude_index: Tensor | Sequence[Tensor] | None = None,
    ks: Sequence[int] = (10, 20),
    metrics: Sequence[str] = METRICS,
    batch_size: int = 1024,
    progress: bool = False,
) -> dict[str, float]:
    r"""Full-ranking top-:math:`K` metrics of dot-product scores :math:`\mathbf{e}_u^{\top} \mathbf{e}_i`.

    The numbers of users and items are the embedding counts and the evaluation runs on the device of
    :obj:`user_emb`; see :class:`RankingEvaluator` for the other arguments.
    """
    check_embeddings(user_emb, item_emb)
    evaluator = RankingEvaluator(
        user_emb.size(0),
        item_emb.size(0),
        target_index,
        exclude_index,
        ks,
        metrics,
        batch_size,
        user_emb.device,
        progress,
    )
    return evaluator.evaluate_embeddings(user_emb, item_emb)


def most_popular_scores(train_index: Tensor, num_items: int) -> ScoreFn:
    """The most-popular baseline: ``score(users, items=None)`` gives every user the training degree of
    each item (of every item, or of the ``[B, C]`` candidates ``items``), so both
    :class:`RankingEvaluator` and :class:`~dslgraph.metrics.SampledRankingEvaluator` take it.

    Args:
        train_index (torch.Tensor): The ``[2, E]`` training (user, item) interactions.
        num_items (int): The number of items.
    """
    num_items = as_count(num_items, "num_items")
    # an [E, 2] index was read as popularity of the ids of its second pair, without a word, and an item past
    # num_items gave scores of another width
    check_pair_index("train_index", train_index, num_items)
    popularity = torch.bincount(train_index[1].long().cpu(), minlength=num_items).to(torch.float32)

    def score_fn(users: Tensor, items: Tensor | None = None) -> Tensor:
        if items is not None:
            return popularity.to(items.device)[items]
        # A fresh tensor per call, since the evaluator writes -inf into it.
        return popularity.to(users.device).expand(users.numel(), -1).clone()

    return score_fn


def mean_over_users(values: dict[str, list[Tensor]], num_users: int) -> dict[str, float]:
    """Per-user metric values, a tensor per batch, averaged over the evaluated users (0 everywhere, with a
    warning, if none). Summed over all users at once: sums per batch, added up, rounded as the batches split
    the users, and a run resumed with another eval_batch_size (or a checkpoint evaluated with one) reported
    other last digits than the uninterrupted run."""
    if num_users == 0:
        logger.warning("no user has a target interaction; all metrics are reported as 0")
    return {
        name: float(torch.cat(parts).sum()) / max(num_users, 1) if parts else 0.0
        for name, parts in values.items()
    }
