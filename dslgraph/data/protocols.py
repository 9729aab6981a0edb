r"""Evaluation protocols: seeded re-splits of the interactions of a dataset.

Each protocol is a function :class:`~torch_geometric.data.HeteroData` :math:`\to`
:class:`~torch_geometric.data.HeteroData` that first merges *all* interactions of its input (training,
validation and test; a pair found in several splits counts once) and then splits them again. The
output keeps the layout of :mod:`dslgraph.data.graph`, with every split sorted by user then item:

* ``data['user', 'to', 'item'].edge_index``: what models read (train on, or fold in);
* ``data['user', 'to', 'item'].edge_label_index``: the test targets;
* ``data['user', 'to', 'item'].val_edge_label_index``: the validation targets, when requested;
* ``time``, ``edge_label_time`` and ``val_edge_label_time``: the ``[E]`` timestamps of these three
  splits, kept when the input had timestamps for all its splits (see
  :class:`~dslgraph.data.datasets.MovieLens` and :class:`~dslgraph.data.datasets.Foursquare`).

The protocols, by the names :func:`apply_protocol` and :func:`~dslgraph.data.datasets.load_dataset`
take (:data:`PROTOCOLS`):

* ``"full"``: the data as loaded (full ranking over all items, LightGCN protocol).
* ``"leave-one-out"`` (:func:`leave_one_out`): one held-out interaction per user, ranked among
  sampled negatives, as in NeuMF and ConvNCF. Adds ``test_negatives`` (and ``val_negatives``),
  ``[num_evaluated_users, num_negatives]`` item indices whose rows follow the columns of
  ``edge_label_index`` (``val_edge_label_index``); evaluate with
  :class:`~dslgraph.metrics.SampledRankingEvaluator`.
* ``"held-out-users"`` (:func:`held_out_users`): whole users held out, as in Mult-VAE and CDAE.
  Adds ``data['user'].train_mask``, the users to train on (:func:`training_users`).

Both mark their output with the protocol's name, ``data.protocol``: the trainer reads a ``train_mask``
only beside ``data.protocol == "held-out-users"``, not one that a node split such as PyG's
``RandomNodeSplit`` made (``data.train_mask_digest`` tells the protocol's own mask from one written over it).
Their output is on the device of the input's training interactions.
"""

from __future__ import annotations

import hashlib
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from ..checks import as_count, is_count, is_real
from .graph import (
    EDGE,
    SPLITS,
    check_pair_index,
    check_user_ids,
    make_interaction_data,
    nth_unseen_items,
    num_users_items,
    unseen_rank_keys,
)
from .interactions import (
    Seed,
    caller_stacklevel,
    check_option,
    check_seed,
    holdout_latest,
    leave_one_out_mask,
    seeded_rng,
)

PROTOCOLS = ("full", "leave-one-out", "held-out-users")
"""The evaluation protocols :func:`apply_protocol` understands."""


def merge_interactions(data: HeteroData) -> tuple[Tensor, Tensor | None]:
    """All distinct interactions of ``data`` (every split), sorted by user then item, and their times.

    Returns the ``[2, E]`` index and the ``[E]`` timestamps, or :obj:`None` when a split of ``data``
    has no timestamps, on the device of the training interactions. A pair found more than once keeps its
    latest time.
    """
    num_users, num_items = num_users_items(data)  # first: data[EDGE] would add that type to other layouts
    store = data[EDGE]
    device = store.edge_index.device
    indices, times = [], []
    for index_key, time_key in SPLITS:
        if index_key not in store:
            continue
        # an item past num_items is another pair's in the key user * num_items + item: merged with it
        check_pair_index(f"data[{EDGE}].{index_key}", store[index_key], num_items, num_users)
        index = store[index_key].detach().long().cpu()
        time = store[time_key].detach().cpu() if time_key in store else None
        if time is not None and time.shape != (index.size(1),):
            raise ValueError(
                f"data[{EDGE}].{time_key} must have shape [{index.size(1)}], one time per pair of "
                f"{index_key}, got {tuple(time.shape)}"
            )
        indices.append(index)
        times.append(time)
    index = torch.cat(indices, dim=1)
    key = (index[0] * num_items + index[1]).numpy()
    if any(time is None for time in times):
        key = np.sort(key)  # faster than np.unique's hashing at this size
        key, time = key[np.r_[True, key[1:] != key[:-1]]], None
    else:
        all_times = torch.cat(times).numpy()
        order = np.lexsort((all_times, key))
        last = np.r_[key[order][1:] != key[order][:-1], True]  # the latest copy of each pair
        key, time = key[order][last], torch.from_numpy(all_times[order][last])
    key = torch.from_numpy(key)
    # on the data's device: data moved by .to("cuda") came back from a protocol on the CPU
    index = torch.stack([key // num_items, key % num_items]).to(device)
    return index, None if time is None else time.to(device)


def _split(
    data: HeteroData, index: Tensor, time: Tensor | None, test: Tensor, val: Tensor | None = None
) -> HeteroData:
    """The :class:`HeteroData` whose test (and validation) splits are the masked merged interactions, with
    the nodes' ``raw_ids`` of ``data`` carried over (the rest of ``data`` is dropped, with a warning)."""
    train = ~test if val is None else ~(test | val)
    masks = [train, test, val]
    splits = [None if mask is None else index[:, mask] for mask in masks]
    times = None if time is None else tuple(None if mask is None else time[mask] for mask in masks)
    _warn_dropped(data)
    out = make_interaction_data(*num_users_items(data), *splits, times)
    for node in ("user", "item"):  # the same nodes, numbered as before: a file's own ids still name them
        if "raw_ids" in data[node]:
            out[node].raw_ids = data[node].raw_ids
    return out


# What a protocol's output holds of its input, made anew from its interactions or (raw_ids) carried over.
_KEPT = {
    "user": {"num_nodes", "train_mask", "raw_ids"},
    "item": {"num_nodes", "raw_ids"},
    EDGE: {key for keys in SPLITS for key in keys} | {"test_negatives", "val_negatives"},
}


def _warn_dropped(data: HeteroData) -> None:
    """Warns of what ``data`` holds beside its interactions, which a protocol's new split does not carry: the
    reverse edges of a pre_transform ``T.ToUndirected()``, or node features, were lost without a word (edges
    or features computed on the old training split would leak the new test interactions)."""
    items = (*data.node_items(), *data.edge_items())
    dropped = [
        f"data[{kind!r}].{key}" for kind, store in items for key in store if key not in _KEPT.get(kind, ())
    ]
    if dropped:
        warnings.warn(
            f"the protocol splits data's interactions anew and does not carry the rest of data: "
            f"{', '.join(dropped)}; apply what adds them to its output (load_dataset applies its transform "
            "there), or copy node features that do not depend on the split (out['user'].x = data['user'].x)",
            stacklevel=caller_stacklevel(),
        )


def sample_negatives(
    seen_index: Tensor, users: Tensor, num_items: int, num_negatives: int, seed: Seed = 0
) -> Tensor:
    """Uniformly samples, for each of ``users``, ``num_negatives`` distinct items it never interacted with.

    Returns a ``[len(users), num_negatives]`` tensor on the device of ``users``, each row in random order
    (drawn on the CPU, the same draws on any device). Raises a
    :class:`ValueError` when a user has fewer than ``num_negatives`` items left to draw from.

    Args:
        seen_index: The ``[2, E]`` (user, item) interactions to avoid, in any order (faster sorted by user
            then item and distinct, as :func:`merge_interactions` returns them).
        users: The ``[U]`` users to draw for (repeats allowed).
        num_items: The number of items.
        num_negatives: The number of items drawn per user.
        seed: An integer seed or a :class:`numpy.random.Generator`. (default: :obj:`0`)
    """
    num_negatives = as_count(num_negatives, "num_negatives")  # -1 or 2.0 failed inside NumPy, naming nothing
    num_items = as_count(num_items, "num_items", 1)
    # an item past num_items is another user's in the keys; a float user was cut to an integer
    check_pair_index("seen_index", seen_index, num_items)
    check_user_ids("users", users)
    device = users.device
    rng = seeded_rng(seed)
    keys = (seen_index[0].long() * num_items + seen_index[1].long()).cpu().numpy()
    if np.any(keys[1:] <= keys[:-1]):  # unsorted or repeated: each user's count and ranks were read wrong
        keys = np.unique(keys)
    seen_user = keys // num_items
    users = users.long().cpu().numpy()
    num_users = max(int(users.max(initial=-1)), int(seen_user.max(initial=-1))) + 1
    start = np.r_[0, np.cumsum(np.bincount(seen_user, minlength=num_users))]
    available = num_items - np.diff(start)[users]
    short = np.flatnonzero(available < num_negatives)
    if short.size:
        user = users[short[0]]
        raise ValueError(
            f"num_negatives={num_negatives} exceeds the {available[short[0]]} items user {user} never "
            f"interacted with ({short.size} evaluated user(s) are short); lower num_negatives (CLI: "
            "--eval-negatives)"
        )
    ranks = torch.from_numpy(_distinct_ranks(available, num_negatives, rng))
    shifted = unseen_rank_keys(torch.from_numpy(keys), num_items)
    users = torch.from_numpy(users)[:, None]
    return nth_unseen_items(shifted, torch.from_numpy(start)[users], users, ranks, num_items).to(device)


def _distinct_ranks(available: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Row ``u``: ``n`` distinct uniform draws from ``range(available[u])`` (``>= n``), in random order."""
    out = np.empty((available.size, n), dtype=np.int64)
    # Few choices: a random permutation of all of them. Many: draws with rejection of repeats.
    dense = np.flatnonzero(available <= 4 * n)
    if dense.size:
        keys = rng.random((dense.size, int(available[dense].max())))
        keys[np.arange(keys.shape[1]) >= available[dense, None]] = 2.0  # never chosen
        out[dense] = np.argsort(keys, axis=1)[:, :n]
    pending = np.flatnonzero(available > 4 * n)
    while pending.size:
        draws = (rng.random((pending.size, 2 * n)) * available[pending, None]).astype(np.int64)
        order = np.argsort(draws, axis=1, kind="stable")
        repeat = np.zeros(draws.shape, dtype=bool)
        sorted_draws = np.take_along_axis(draws, order, axis=1)
        np.put_along_axis(repeat, order[:, 1:], sorted_draws[:, 1:] == sorted_draws[:, :-1], axis=1)
        # Keep the first n distinct draws of each row in draw order; retry rows with fewer.
        keep = ~repeat & (np.cumsum(~repeat, axis=1) <= n)
        done = keep.sum(axis=1) == n
        position = np.where(keep, np.arange(2 * n), 2 * n)
        chosen = np.argsort(position[done], axis=1, kind="stable")[:, :n]
        out[pending[done]] = np.take_along_axis(draws[done], chosen, axis=1)
        pending = pending[~done]
    return out


def leave_one_out(
    data: HeteroData, num_negatives: int = 100, validation: bool = False, seed: int = 0
) -> HeteroData:
    r"""The leave-one-out protocol of `"Neural Collaborative Filtering" <https://arxiv.org/abs/1708.05031>`_
    (NeuMF) and ConvNCF: each user's held-out interaction is ranked among sampled negatives.

    Every user with at least two interactions gets one held out as its test target: the latest when
    ``data`` carries timestamps (``time``, ``edge_label_time``, ...), else one at random. With
    ``validation``, every user with at least two interactions left also gets one (the latest of the rest)
    held out for validation. ``edge_label_index`` then holds exactly one column per evaluated user,
    sorted by user, and ``test_negatives`` the ``[num_test_users, num_negatives]`` items ranked against
    it: drawn uniformly, without repeats, among the items the user interacted with in *no* split
    (``val_negatives`` likewise, drawn independently: the validation split has a generator of its own, so
    the test pairs and negatives are those drawn without ``validation``). Users with one interaction only
    train; without a user of two or more (of three or more, with ``validation``), a :class:`ValueError` is
    raised.

    Args:
        data: The interactions, in the layout of :mod:`dslgraph.data.graph`.
        num_negatives: The number of sampled negatives per evaluated user. (default: :obj:`100`)
        validation: Whether to hold out a validation interaction too. (default: :obj:`False`)
        seed: The seed of every random choice. (default: :obj:`0`)
    """
    check_option(
        is_count(num_negatives) and num_negatives >= 1,
        "num_negatives",
        "an integer >= 1",
        num_negatives,
    )
    check_option(isinstance(validation, bool), "validation", "True or False", validation)
    check_seed(seed)  # None drew another split at every call, 1.5 failed inside NumPy
    index, time = merge_interactions(data)
    counts = torch.bincount(index[0])
    if not (counts >= 2).any():  # nobody would be evaluated: every metric would read 0
        raise ValueError(
            "leave_one_out needs a user with at least two interactions; every user has at most one"
        )
    if validation and not (counts >= 3).any():  # an empty validation split: every metric 0
        raise ValueError(
            "leave_one_out(validation=True) needs a user with at least three interactions (one to train on, "
            "one to test, one to validate); every user has at most two"
        )
    # the validation split draws from a generator of its own: with it or without, the test pairs and their
    # negatives are the same (NCF's fixed candidates), and runs with and without validation rank alike
    rng, val_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    test = leave_one_out_mask(index[0], rng, time)
    val = None
    if validation:
        rest = (~test).nonzero().view(-1)
        val = torch.zeros_like(test)
        val[rest[leave_one_out_mask(index[0, rest], val_rng, None if time is None else time[rest])]] = True
    out = _split(data, index, time, test, val)
    store, num_items = out[EDGE], out["item"].num_nodes
    store.test_negatives = sample_negatives(index, store.edge_label_index[0], num_items, num_negatives, rng)
    if validation:
        users = store.val_edge_label_index[0]
        store.val_negatives = sample_negatives(index, users, num_items, num_negatives, val_rng)
    out.protocol = "leave-one-out"
    return out


def _num_users(value: int | float, available: int, field: str, minimum: int) -> int:
    """Resolves a user count given as an integer or as a fraction in (0, 1) of ``available`` users (at
    least one user then)."""
    if is_count(value) and value >= 0:
        count = int(value)
    elif is_real(value) and 0 < value < 1:  # NumPy's floats too
        count = max(round(float(value) * available), 1)
    else:
        raise ValueError(f"{field} must be an integer >= 0 or a fraction in (0, 1), got {value!r}")
    check_option(
        count >= minimum,
        field,
        f"at least {minimum} user(s) (of {available} with >= 2 interactions)",
        value,
    )
    return count


def held_out_users(
    data: HeteroData,
    num_test_users: int | float = 0.1,
    num_val_users: int | float = 0,
    fold_in: float = 0.8,
    seed: int = 0,
) -> HeteroData:
    r"""The held-out-users protocol of `"Variational Autoencoders for Collaborative Filtering"
    <https://arxiv.org/abs/1802.05814>`_ (Mult-VAE), also used for CDAE.

    Test (and validation) users are drawn at random among the users with at least two interactions,
    leaving at least one user with interactions to train on; all other users keep all their interactions
    in ``edge_index`` and are the only ones to train on (``data['user'].train_mask``). Each held-out
    user's interactions are split at random: a ``fold_in`` fraction stays in ``edge_index`` as the
    fold-in input that models read at evaluation time (and that
    :class:`~dslgraph.metrics.RankingEvaluator` excludes from the ranking), the rest
    (:math:`\min(\max(\mathrm{round}((1 - \text{fold\_in}) \cdot n), 1), n - 1)` of :math:`n`) becomes
    ``edge_label_index`` for test users and ``val_edge_label_index`` for validation users. The output is
    marked ``data.protocol = "held-out-users"`` beside ``data.train_mask_digest``, by which
    :func:`training_users` reads its ``train_mask`` and no other written over it.

    Args:
        data: The interactions, in the layout of :mod:`dslgraph.data.graph`.
        num_test_users: The number of test users, or their fraction in :math:`(0, 1)` of the users with
            at least two interactions (rounded, at least one user). (default: :obj:`0.1`)
        num_val_users: The number or fraction of validation users; no validation split when :obj:`0`.
            (default: :obj:`0`)
        fold_in: The fraction of a held-out user's interactions kept as fold-in input, in
            :math:`(0, 1)`. (default: :obj:`0.8`)
        seed: The seed of every random choice. (default: :obj:`0`)
    """
    check_option(is_real(fold_in) and 0 < fold_in < 1, "fold_in", "a float in (0, 1)", fold_in)
    fold_in = float(fold_in)  # NumPy's too
    check_seed(seed)  # None drew another split at every call, 1.5 failed inside NumPy
    index, time = merge_interactions(data)
    num_users, _ = num_users_items(data)
    counts = torch.bincount(index[0], minlength=num_users)
    eligible = (counts >= 2).nonzero().view(-1)
    num_test = _num_users(num_test_users, eligible.numel(), "num_test_users", 1)
    num_val = _num_users(num_val_users, eligible.numel(), "num_val_users", 0)
    check_option(
        num_test + num_val <= eligible.numel(),
        "num_test_users + num_val_users",
        f"at most the {eligible.numel()} users with >= 2 interactions",
        num_test + num_val,
    )
    # Else nobody trains: the trainer would find no batch (or fail with no word of these options).
    active = int((counts > 0).sum())
    check_option(
        num_test + num_val < active,
        "num_test_users + num_val_users",
        f"fewer than the {active} users with interactions (one must be left to train on)",
        num_test + num_val,
    )
    rng = np.random.default_rng(seed)
    chosen = eligible[torch.from_numpy(rng.permutation(eligible.numel())[: num_test + num_val])]
    role = torch.zeros(num_users, dtype=torch.long, device=index.device)  # 0 trains, 1 tests, 2 validates
    role[chosen[:num_test]], role[chosen[num_test:]] = 1, 2
    edge_role = role[index[0]]

    held = (edge_role > 0).nonzero().view(-1)
    num_targets = torch.round((1 - fold_in) * counts).long().clamp(min=1).minimum(counts - 1)
    target = torch.zeros(index.size(1), dtype=torch.bool, device=index.device)
    target[held[holdout_latest(index[0, held], num_targets, None, rng)]] = True
    val = target & (edge_role == 2) if num_val else None
    out = _split(data, index, time, target & (edge_role == 1), val)
    out["user"].train_mask = role == 0
    out.protocol = "held-out-users"  # the mark training_users reads the mask by
    # and what tells this mask from one written over it (T.RandomNodeSplit puts its own on every node type)
    out.train_mask_digest = _mask_digest(out["user"].train_mask)
    return out


def _mask_digest(mask: Tensor) -> str:
    """A digest of a boolean mask's values, the same on every device."""
    return hashlib.sha1(mask.cpu().numpy().tobytes()).hexdigest()[:16]


def training_users(data: HeteroData) -> Tensor | None:
    """The ``[num_users]`` boolean mask of the users to train on, ``data['user'].train_mask`` of
    :func:`held_out_users`, or :obj:`None` where every user trains (no ``train_mask``).

    Raises a :class:`ValueError` on a ``train_mask`` in data that :func:`held_out_users` did not mark
    (``data.protocol``), or that was written over since it did (``data.train_mask_digest``): PyG's
    ``T.RandomNodeSplit`` puts one on every node type, and its held-out users' interactions were left out of
    training without a word, though they stay in the test split.
    """
    mask = data["user"].get("train_mask")
    if mask is None:
        return None
    if getattr(data, "protocol", None) != "held-out-users":
        raise ValueError(
            "data['user'].train_mask is read as the users the held-out-users protocol trains on, but this "
            "data was not split by it (held_out_users sets data.protocol = 'held-out-users'): a node split "
            "such as T.RandomNodeSplit's would leave the other users' interactions out of training; delete "
            "data['user'].train_mask, or set data.protocol = 'held-out-users' if it is a held-out-users "
            "split of one's own"
        )
    num_users, _ = num_users_items(data)
    check_option(
        isinstance(mask, Tensor) and mask.dtype == torch.bool and mask.shape == (num_users,),
        "data['user'].train_mask",
        f"a boolean tensor of shape [{num_users}]",
        f"{tuple(mask.shape)} {mask.dtype}" if isinstance(mask, Tensor) else type(mask).__name__,
    )
    digest = getattr(data, "train_mask_digest", None)  # none on a held-out-users split of one's own
    if digest is not None and digest != _mask_digest(mask):
        raise ValueError(
            f"data['user'].train_mask is not the one held_out_users made: it trains {int(mask.sum())} of "
            f"{num_users} users, written over since (T.RandomNodeSplit puts a random train_mask on every "
            "node type, which would leave other users' interactions out of training); leave train_mask as "
            "the protocol made it, or delete data.train_mask_digest to train the users of this mask"
        )
    return mask


_PROTOCOL_FUNCTIONS: dict[str, Callable[..., HeteroData]] = {
    "leave-one-out": leave_one_out,
    "held-out-users": held_out_users,
}


def check_protocol(protocol: str, options: dict[str, Any] | None = None) -> None:
    """Raises a :class:`ValueError` unless ``protocol`` is in :data:`PROTOCOLS` and takes ``options``."""
    check_option(protocol in PROTOCOLS, "protocol", f"one of {PROTOCOLS}", protocol)
    options = options or {}
    if protocol == "full":
        check_option(not options, "protocol options", "empty for protocol 'full'", options)
        return
    allowed = list(inspect.signature(_PROTOCOL_FUNCTIONS[protocol]).parameters)[1:]  # all but data
    unknown = sorted(set(options) - set(allowed))
    check_option(not unknown, f"options of protocol {protocol!r}", f"among {allowed}", unknown)


def apply_protocol(data: HeteroData, protocol: str = "full", seed: int = 0, **options: Any) -> HeteroData:
    """Applies the evaluation protocol ``protocol`` (one of :data:`PROTOCOLS`) to ``data``.

    Args:
        data: The interactions, in the layout of :mod:`dslgraph.data.graph`.
        protocol: ``"full"`` (``data`` itself), ``"leave-one-out"`` (:func:`leave_one_out`) or
            ``"held-out-users"`` (:func:`held_out_users`). (default: ``"full"``)
        seed: The seed of the protocol's random choices. (default: :obj:`0`)
        **options: The further arguments of the protocol's function, e.g. ``num_negatives``.
    """
    check_protocol(protocol, options)
    check_seed(seed)
    if protocol == "full":
        return data
    return _PROTOCOL_FUNCTIONS[protocol](data, seed=seed, **options)
