"""User-item interactions as PyG bipartite graphs.

Every dataset in :mod:`dslgraph.data` yields a :class:`~torch_geometric.data.HeteroData` laid out as:

* ``data['user'].num_nodes`` and ``data['item'].num_nodes``;
* ``data['user', 'to', 'item'].edge_index``: the training interactions (row 0 users, row 1 items, 0-based);
* ``data['user', 'to', 'item'].edge_label_index``: the test interactions (as in PyG's ``AmazonBook``);
* ``data['user', 'to', 'item'].val_edge_label_index``: the validation interactions, present only when a
  validation split was requested;
* ``time``, ``edge_label_time`` and ``val_edge_label_time`` of the same store: the ``[E]`` timestamps of
  those three splits, present where the source had timestamps.

:func:`propagation_graph` turns the training edges into the homogeneous symmetric-normalised graph
:math:`D^{-1/2} A D^{-1/2}` over ``num_users + num_items`` nodes (items offset by ``num_users``) that
LightGCN-style models propagate over.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

from ..checks import as_count, require_torch_sparse

EDGE = ("user", "to", "item")
"""The edge type of the user-item interactions in the :class:`~torch_geometric.data.HeteroData` of
this module: ``data[EDGE].edge_index`` holds the training pairs, users in row 0 and items in row 1."""
_MAX_NODES = 2**32  # users and items together: far above any dataset; keeps pair keys below 2**62

#: The (train, test, validation) splits' index attributes and the attributes of their timestamps.
SPLITS = (
    ("edge_index", "time"),
    ("edge_label_index", "edge_label_time"),
    ("val_edge_label_index", "val_edge_label_time"),
)


def make_interaction_data(
    num_users: int,
    num_items: int,
    train: Tensor,
    test: Tensor,
    val: Tensor | None = None,
    times: tuple[Tensor | None, Tensor | None, Tensor | None] | None = None,
) -> HeteroData:
    """Packs ``[2, E]`` user-item index tensors into the :class:`HeteroData` layout of this module, with
    the ``(train, test, val)`` split's ``[E]`` timestamps ``times`` where given.

    Raises :class:`ValueError` for ids out of range or not integers, a pair given twice in one split, a
    test or validation pair that is a training pair too, and counts whose sum exceeds ``2**32``.
    Counts far above the ids present are taken as asked (users or items without
    interactions yet): each id is a row of a model's embedding tables."""
    num_users, num_items = as_count(num_users, "num_users", 1), as_count(num_items, "num_items", 1)
    if num_users + num_items > _MAX_NODES:
        # 10**14 users failed far from here, in torch's allocation of the propagation graph's degrees; the
        # bound also keeps the pair keys user * num_items + item in int64 (with 2**62 items they wrapped
        # around and merged distinct pairs)
        raise ValueError(
            f"num_users + num_items must be at most 2**32 ({_MAX_NODES:,}), got {num_users:,} + "
            f"{num_items:,}: each id is a node of the graph and a row of a model's embedding tables "
            "(2**32 rows of 64 float32 values are 1 TiB); number the ids 0..n-1"
        )
    times = (None, None, None) if times is None else times
    # a pair of times dropped the validation split's (and with them every protocol's use of the times), one
    # tensor failed as "Boolean value of Tensor ... is ambiguous", a list of numbers reading its shape
    listed = isinstance(times, tuple | list)
    if not (listed and len(times) == 3 and all(t is None or isinstance(t, Tensor) for t in times)):
        kinds = ", ".join(type(time).__name__ for time in times) if listed else ""
        got = f"a {type(times).__name__} of {kinds}" if listed else f"a {type(times).__name__}"
        raise ValueError(f"times must be the (train, test, val) splits' timestamp tensors or None, got {got}")
    for name, index, time in zip(("train", "test", "val"), (train, test, val), times):
        if index is None:
            if time is not None:
                raise ValueError(f"{name} timestamps are given without {name} interactions")
            continue
        check_pair_index(f"{name} interactions", index, num_items, num_users)  # .long() would cut 1.5 to 1
        if time is not None and time.shape != (index.size(1),):
            raise ValueError(f"{name} timestamps must have shape [{index.size(1)}], got {tuple(time.shape)}")
    _check_pairs(num_items, train, test, val)
    data = HeteroData()
    data["user"].num_nodes = num_users
    data["item"].num_nodes = num_items
    data[EDGE].edge_index = train.long()
    data[EDGE].edge_label_index = test.long()
    if val is not None:
        data[EDGE].val_edge_label_index = val.long()
    for (_, key), index, time in zip(SPLITS, (train, test, val), times):
        if index is not None and time is not None:
            data[EDGE][key] = time
    return data


def is_index(ids) -> bool:
    """Whether ``ids`` is a tensor of integer ids (not floats, complex numbers or a boolean mask)."""
    return isinstance(ids, Tensor) and not (
        ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool
    )


def is_pair_index(index) -> bool:
    """Whether ``index`` is a ``[2, E]`` tensor of integer (user, item) ids (not ``[E, 2]``, not a mask)."""
    return is_index(index) and index.dim() == 2 and index.size(0) == 2


def check_pair_index(name: str, index, num_items: int, num_users: int | None = None) -> None:
    """Raises a :class:`ValueError` naming ``name`` unless ``index`` is a ``[2, E]`` tensor of integer (user,
    item) ids with items in ``[0, num_items)`` and users in ``[0, num_users)`` (``>= 0`` where
    ``num_users`` is None): an item past ``num_items`` is another user's in a key ``user * num_items +
    item``, and an ``[E, 2]`` or boolean index fails deep in torch or passes as other ids."""
    if not is_pair_index(index):
        got = f"{tuple(index.shape)} {index.dtype}" if isinstance(index, Tensor) else type(index).__name__
        raise ValueError(f"{name} must be a [2, E] tensor of integer (user, item) ids, got {got}")
    if not index.numel():
        return
    users, items = index[0], index[1]
    past_users = num_users is not None and users.max() >= num_users
    if past_users or users.min() < 0 or items.min() < 0 or items.max() >= num_items:
        bound = "users >= 0" if num_users is None else f"users in [0, num_users={num_users})"
        raise ValueError(
            f"{name} must hold {bound} and items in [0, num_items={num_items}), got users "
            f"{int(users.min())}..{int(users.max())}, items {int(items.min())}..{int(items.max())}"
        )


def check_user_ids(name: str, users) -> None:
    """Raises a :class:`ValueError` naming ``name`` unless ``users`` is a 1-D tensor of user ids >= 0: a float
    id was cut to an integer, and a negative one read as the last user's, without a word."""
    ids = is_index(users) and users.dim() == 1
    if not ids or (users.numel() and int(users.min()) < 0):
        got = (
            f"a {users.dtype} tensor of shape {list(users.shape)}"
            if isinstance(users, Tensor)
            else repr(users)
        )
        raise ValueError(
            f"{name} must be a 1-D tensor of user ids >= 0, got {f'id {int(users.min())}' if ids else got}"
        )


def unseen_rank_keys(keys: Tensor, num_items: int) -> Tensor:
    """For the sorted keys ``user * num_items + item`` of seen pairs, each key less its rank among its
    user's keys: ``user * num_items`` + the number of the user's unseen items below the item (sorted, as
    the keys are). :func:`nth_unseen_items` reads them."""
    first = torch.searchsorted(keys, keys // num_items * num_items)
    return keys - (torch.arange(keys.numel(), device=keys.device) - first)


def nth_unseen_items(shifted: Tensor, first: Tensor, users: Tensor, ranks: Tensor, num_items: int) -> Tensor:
    """The ``ranks``-th unseen items of ``users`` (0-based ranks, broadcast with ``users``): the r-th
    unseen item of a user with sorted seen items s_0 < s_1 < ... is r + #{k : s_k - k <= r}, counted in
    :func:`unseen_rank_keys`'s ``shifted`` keys; ``first`` is the position of each user's first key
    (its number of keys of earlier users)."""
    return ranks + torch.searchsorted(shifted, users * num_items + ranks, right=True) - first


def _check_pairs(num_items: int, train: Tensor, test: Tensor, val: Tensor | None) -> None:
    """Refuses a pair given twice in one split (it would weigh twice in the graph and the metrics), and
    a test or validation pair that is also a training pair (ranking leaves out training items, so it
    could never be hit)."""
    keys = {}
    for name, index in zip(("train", "test", "val"), (train, test, val)):
        if index is None:
            continue
        key = index[0].long() * num_items + index[1].long()
        unique, counts = torch.unique(key, return_counts=True)
        if unique.numel() < key.numel():
            pair = unique[counts > 1][0].item()
            raise ValueError(
                f"{name} interactions hold the pair (user {pair // num_items}, item {pair % num_items}) "
                f"more than once; {int((counts - 1).sum())} repeated pair(s) in all"
            )
        keys[name] = unique
    for name in ("test", "val"):
        if name not in keys:
            continue
        seen = torch.isin(keys[name], keys["train"])
        if seen.any():
            pair = keys[name][seen][0].item()
            raise ValueError(
                f"{int(seen.sum())} {name} interaction(s) are training interactions too, e.g. (user "
                f"{pair // num_items}, item {pair % num_items}): ranking leaves out a user's training "
                "items, so they could never be hit"
            )


def num_users_items(data: HeteroData) -> tuple[int, int]:
    """The numbers of users and items of ``data``. Raises a :class:`ValueError` naming what ``data`` lacks of
    this module's layout: PyG's own ``AmazonBook`` names its types ``('user', 'rates', 'book')``, and
    failed with ``int() argument must be ... not 'NoneType'``."""
    layout = (
        f"data must have the layout of dslgraph.data.graph (num_nodes of 'user' and 'item', the training "
        f"interactions in {EDGE}.edge_index)"
    )
    if not isinstance(data, HeteroData):
        # PyG's RandomLinkSplit returns a (train, val, test) tuple, and to_homogeneous() a Data: both failed
        # as a HeteroData lacking every node type
        hint = {
            tuple: " (PyG's RandomLinkSplit returns a (train, val, test) tuple)",
            Data: " (HeteroData.to_homogeneous() merges users and items into one id space)",
        }.get(type(data), "")
        raise ValueError(f"{layout}, a HeteroData; got a {type(data).__name__}{hint}")
    node_types, edge_types = data.node_types, data.edge_types
    missing = [node for node in ("user", "item") if node not in node_types or data[node].num_nodes is None]
    if EDGE not in edge_types or "edge_index" not in data[EDGE]:
        missing.append(f"{EDGE}.edge_index")
    if missing:
        # the store's keys tell a transform's work apart: T.ToSparseTensor() replaces edge_index by adj_t
        keys = f", and {EDGE} holds {sorted(data[EDGE].keys())}" if EDGE in edge_types else ""
        raise ValueError(
            f"{layout}, lacks {', '.join(map(str, missing))}; it has node types {node_types} and edge types "
            f"{edge_types}{keys}"
        )
    return int(data["user"].num_nodes), int(data["item"].num_nodes)


def check_interaction_splits(data: HeteroData) -> None:
    """Raises a :class:`ValueError` where ``data``'s ``edge_label_index`` is not the test interactions of
    this module's layout but a labelled link-prediction split, as PyG's ``RandomLinkSplit`` and
    ``LinkNeighborLoader`` make it (an ``edge_label`` beside it; the sampled negatives among its pairs, or
    the training edges themselves): ranked as test interactions, it was evaluated without a word. And
    where ``data`` is a subgraph a PyG loader sampled (``n_id`` on its nodes): its nodes are renumbered,
    its ``edge_label_index`` is not, and names other users and items."""
    sampled = [node for node in ("user", "item") if "n_id" in data[node]]
    if sampled:
        raise ValueError(
            f"data is a subgraph sampled by a PyG loader (n_id on its {' and '.join(sampled)} nodes): its "
            "nodes are renumbered, but not its test and validation interactions, whose ids would name other "
            "users and items; pass the dataset's data as loaded"
        )
    store = data[EDGE]
    if "edge_label" in store:
        raise ValueError(
            f"data[{EDGE}] holds edge_label: its edge_label_index is a labelled link-prediction split "
            "(PyG's RandomLinkSplit or LinkNeighborLoader: supervision edges, negatives among them), not "
            "the test interactions of dslgraph.data.graph's layout; pass the dataset's data as loaded "
            "(val_ratio > 0 for a validation split)"
        )


def check_numbering(
    data: HeteroData, transformed: HeteroData, argument: str, transform: Callable
) -> HeteroData:
    """Returns ``transformed`` unless ``transform`` changed the number of users or items of ``data``, which
    it raises a :class:`ValueError` for, naming it: PyG's transforms that drop nodes (RemoveIsolatedNodes,
    LargestConnectedComponents) renumber ``edge_index`` but not the test and validation splits, whose ids
    then name other users and items (silently, wherever they stay in range)."""
    changed = [
        f"{node}s {data[node].num_nodes} -> {transformed[node].num_nodes}"
        for node in ("user", "item")
        if node in transformed.node_types and transformed[node].num_nodes != data[node].num_nodes
    ]
    if changed:
        raise ValueError(
            f"{argument} {transform!r} changed the numbers of nodes ({', '.join(changed)}): it renumbers the "
            "training edges but not edge_label_index (the test split) nor val_edge_label_index, whose ids "
            "would name other users and items; a transform must keep every user and item"
        )
    return transformed


def propagation_graph(data: HeteroData, dtype: torch.dtype = torch.float32) -> Tensor:
    """The normalised user-item graph :math:`D^{-1/2} A D^{-1/2}` as a ``torch.sparse_csr`` tensor.

    Nodes ``0 .. num_users-1`` are users and ``num_users ..`` are items. Isolated nodes get zero rows.
    It is made on the device of the training interactions. A CSR tensor works on CPU and CUDA with plain
    torch and is accepted by :func:`torch_geometric.utils.spmm`; see :func:`to_sparse_tensor` for
    torch-sparse.
    """
    num_users, num_items = num_users_items(data)
    # a long dtype failed as "CSR tensors have no strides"
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype (the graph's weights), got {dtype!r}")
    index = data[EDGE].edge_index
    # an item -1 of data built by hand, offset by num_users, was an edge between two users, without a word
    check_pair_index(f"data[{EDGE}].edge_index", index, num_items, num_users)
    user, item = index
    n = num_users + num_items
    row = torch.cat([user, item + num_users])
    col = torch.cat([item + num_users, user])
    # counted as integers, on the interactions' device, and normalised in float32 at least: counted in
    # dtype, float16 degrees stopped at 2048 and bfloat16 ones at 256 (256 + 1 rounds to 256), which gave
    # a popular item's edges weights several times too large, without a word
    deg = torch.bincount(row, minlength=n)
    inv_sqrt = deg.to(torch.promote_types(dtype, torch.float32)).pow(-0.5)
    inv_sqrt[deg == 0] = 0
    value = (inv_sqrt[row] * inv_sqrt[col]).to(dtype)
    adj = torch.sparse_coo_tensor(
        torch.stack([row, col]), value, (n, n), check_invariants=False, device=row.device
    ).coalesce()
    adj = adj.to_sparse_csr()
    if max(n, adj._nnz()) >= 2**31:
        return adj
    # int32 indices, which the CPU and CUDA sparse kernels take: with int64 ones every product
    # first converts them (two copies of the graph's indices per product)
    return torch.sparse_csr_tensor(
        adj.crow_indices().int(),
        adj.col_indices().int(),
        adj.values(),
        adj.shape,
        check_invariants=False,
        device=row.device,
    )


def to_sparse_tensor(adj: Tensor):
    """Converts a CSR adjacency to a ``torch_sparse.SparseTensor`` (requires torch-sparse)."""
    require_torch_sparse("to_sparse_tensor")
    from torch_sparse import SparseTensor

    return SparseTensor(
        rowptr=adj.crow_indices().long(),
        col=adj.col_indices().long(),
        value=adj.values(),
        sparse_sizes=adj.shape,
    )


def interaction_csr(
    index: Tensor, num_users: int, num_items: int, dtype: torch.dtype = torch.float32, name: str = "index"
) -> Tensor:
    """The ``[num_users, num_items]`` CSR matrix of the interactions ``index`` (``[2, E]``: users in row 0,
    items in row 1), a one of ``dtype`` at each pair (a pair given twice sums to two), on ``index``'s device:
    the graph input of CDAE and Mult-VAE, and the seen items that evaluation and ``recommend`` exclude.

    Raises a :class:`ValueError` naming ``name`` for ids out of range, not integers, or an ``[E, 2]`` index:
    with ``check_invariants=False``, an item past ``num_items`` made a CSR of wrong rows without a word."""
    num_users, num_items = as_count(num_users, "num_users"), as_count(num_items, "num_items")
    check_pair_index(name, index, num_items, num_users)
    value = torch.ones(index.size(1), dtype=dtype, device=index.device)
    return (
        torch.sparse_coo_tensor(
            index, value, (num_users, num_items), check_invariants=False, device=index.device
        )
        .coalesce()
        .to_sparse_csr()
    )


def data_fingerprint(data: HeteroData) -> str:
    """A digest of the numbers of users and items, of every split's interactions, of the sampled
    negatives of :func:`~dslgraph.data.protocols.leave_one_out` and of the file's own ids of
    :func:`~dslgraph.data.load_file`, where present: a checkpoint records it, so that data that changed
    since training is noticed rather than silently evaluated or trained on."""
    digest = hashlib.sha1(str(num_users_items(data)).encode())
    store = data[EDGE]
    # the negatives decide the sampled metrics (and the best epoch) as much as the splits do
    for key in (*(index_key for index_key, _ in SPLITS), "test_negatives", "val_negatives"):
        index = store.get(key)
        if index is not None:
            digest.update(key.encode())
            digest.update(index.to(torch.long).contiguous().cpu().numpy().tobytes())
    for node in ("user", "item"):  # renamed ids in the same order would give other names to the same rows
        ids = data[node].get("raw_ids")
        if ids is not None:
            digest.update(node.encode())
            digest.update(pd.util.hash_array(np.asarray(ids, dtype=object)).tobytes())
    return digest.hexdigest()[:16]
