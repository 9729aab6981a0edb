"""Vectorised negative sampling for pairwise (BPR) training."""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from ..checks import as_count, is_count
from .graph import check_pair_index, check_user_ids, nth_unseen_items, unseen_rank_keys

SAMPLING_MODES = ("edge", "user")
#: From this many membership tests on, :meth:`NegativeSampler.is_positive` sorts them first.
SORTED_SEARCH_MIN = 2**16


def check_train_index(train_index: Tensor, num_items: int) -> int:
    """Raises a :class:`ValueError` unless ``train_index`` is a ``[2, E]`` integer tensor of users >= 0 and
    items in ``[0, num_items)``: the key ``user * num_items + item`` of an item past ``num_items`` is
    another user's, which then never gets that item as a negative (and a float index failed in
    :func:`torch.bincount`). Returns ``num_items`` as a Python int (it may come as ``index.max() + 1``)."""
    num_items = as_count(num_items, "num_items", minimum=1)
    check_pair_index("train_index", train_index, num_items)
    return num_items


class NegativeSampler:
    """Draws items uniformly at random that are not training positives of the user.

    Membership is tested against the sorted keys ``user * num_items + item`` of the training
    interactions with :func:`torch.searchsorted`; collisions are redrawn, so a whole epoch of
    negatives is drawn in a handful of vectorised passes. Draws still colliding after
    ``max_rounds`` redraws (users whose items cover most of the catalogue) are made directly among
    the user's other items, so they stay uniform; a user with every item has no negative to draw
    and raises a :class:`ValueError`.

    Args:
        train_index (torch.Tensor): ``[2, E]`` user-item training interactions.
        num_items (int): Number of items.
        max_rounds (int, optional): Redraw rounds before the remaining draws are made directly.
            (default: :obj:`100`)
    """

    def __init__(self, train_index: Tensor, num_items: int, max_rounds: int = 100) -> None:
        self.num_items = num_items = check_train_index(train_index, num_items)
        self.max_rounds = as_count(max_rounds, "max_rounds")  # a float failed in range() naming nothing
        # int64 keys: int32 ids of 30,000 users by 100,000 items wrapped past 2**31, and were then looked up
        # against int64 ones that never matched (positives drawn as negatives)
        self.keys = torch.unique(train_index[0].long() * num_items + train_index[1].long())

    @functools.cached_property
    def shifted(self) -> Tensor:
        """The keys :func:`nth_unseen_items` reads, made at the first direct draw of :meth:`_draw_free`
        (most samplers never make one)."""
        return unseen_rank_keys(self.keys, self.num_items)

    def __repr__(self) -> str:  # the default named a memory address
        return f"{self.__class__.__name__}(num_items={self.num_items}, positives={self.keys.numel()})"

    def is_positive(self, users: Tensor, items: Tensor) -> Tensor:
        """Whether each (user, item) pair of ``users`` and ``items`` (broadcast) is a training interaction, on
        the device of ``users``; the pairs may be on any device (ids on another than the interactions'
        failed in :func:`torch.searchsorted`)."""
        keys = (users.long() * self.num_items + items.long().to(users.device)).to(self.keys.device)
        if keys.numel() < SORTED_SEARCH_MIN:
            return self._in_keys(keys).to(users.device)
        # searched in sorted order, each binary search walking the memory the previous one cached: an
        # epoch's 2.4 M draws against Amazon-book's 2.4 M training keys took 3.2 s in random order, 1.0
        # sorted (sort included), on one CPU thread
        sorted_keys, order = keys.reshape(-1).sort()
        found = self._in_keys(sorted_keys)
        return torch.empty_like(found).scatter_(0, order, found).view(keys.shape).to(users.device)

    def _in_keys(self, keys: Tensor) -> Tensor:
        if not self.keys.numel():  # no positive: every key's search position was past the end
            return torch.zeros_like(keys, dtype=torch.bool)
        pos = torch.searchsorted(self.keys, keys).clamp_(max=self.keys.numel() - 1)
        return self.keys[pos] == keys

    def sample(
        self, users: Tensor, num_negatives: int = 1, generator: torch.Generator | None = None
    ) -> Tensor:
        """Returns ``[len(users)]`` (or ``[len(users), num_negatives]``) negative items, on the device of
        ``users``; they are drawn on ``generator``'s (the one of the training interactions without one)."""
        # 0 negatives gave an empty draw without a word, 2.0 failed in expand; a negative user got any items
        num_negatives = as_count(num_negatives, "num_negatives", 1)
        check_user_ids("users", users)
        device = users.device
        users = users.long().to(self.keys.device)
        shape = (users.numel(),) if num_negatives == 1 else (users.numel(), num_negatives)
        expanded = users if num_negatives == 1 else users.view(-1, 1).expand(shape)
        items = self._draw(torch.randint, (self.num_items, shape), generator)
        bad = self.is_positive(expanded, items)
        for _ in range(self.max_rounds):
            count = int(bad.sum())
            if count == 0:
                return items.to(device)
            items[bad] = self._draw(torch.randint, (self.num_items, (count,)), generator)
            bad[bad.clone()] = self.is_positive(expanded[bad], items[bad])
        if bad.any():
            items[bad] = self._draw_free(expanded[bad], generator)
        return items.to(device)

    def _draw(self, draw, args: tuple, generator: torch.Generator | None, **kwargs) -> Tensor:
        """``draw(*args)`` made on ``generator``'s device (the keys' without one) and moved to the keys':
        a sampler of GPU interactions drew its items on the CPU, then failed to look them up."""
        device = self.keys.device if generator is None else generator.device
        return draw(*args, generator=generator, device=device, **kwargs).to(self.keys.device)

    def _draw_free(self, users: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One uniform draw among each user's non-positive items (:func:`nth_unseen_items`)."""
        start = users * self.num_items
        first = torch.searchsorted(self.keys, start)
        free = self.num_items - (torch.searchsorted(self.keys, start + self.num_items) - first)
        if (free == 0).any():  # the data's problem, reported as the CLI reports bad input
            raise ValueError(
                f"cannot draw a negative for user {int(users[free == 0][0])}: it has interacted with every "
                "item; drop such users from the training data"
            )
        rank = (self._draw(torch.rand, (users.shape,), generator, dtype=torch.float64) * free).long()
        rank = torch.minimum(rank, free - 1)
        return nth_unseen_items(self.shifted, first, users, rank, self.num_items)


class BPRBatches:
    """Iterates an epoch of shuffled ``(user, positive, negatives)`` training triples.

    An epoch has as many triples as there are training interactions. With ``mode="edge"`` each
    interaction appears once (PyG, RecBole); with ``mode="user"`` each triple picks a user with
    training items uniformly, then one of the user's items (LightGCN's official sampler, which
    weighs users equally). With one negative per positive the negatives are ``[B]`` and drawn for
    the whole epoch at once with :class:`NegativeSampler`; with ``num_negatives > 1`` they are
    ``[B, num_negatives]`` and drawn batch by batch (UltraGCN's 1,500 per positive would not fit
    in memory for a whole epoch).

    Args:
        train_index (torch.Tensor): ``[2, E]`` user-item training interactions, on any device (an epoch is
            drawn on the CPU, as the generator's numbers are).
        num_items (int): Number of items.
        batch_size (int): Triples per batch.
        generator (torch.Generator, optional): Source of randomness (its state is checkpointed).
        device (torch.device, optional): Where the batches are sent, one transfer per epoch.
        mode (str, optional): ``"edge"`` or ``"user"``. (default: :obj:`"edge"`)
        num_negatives (int, optional): Negatives per positive. (default: :obj:`1`)
        exclude_positives (bool, optional): Redraw negatives that are training positives of the
            user; UltraGCN's official sampler does not (with hundreds of negatives the few
            positives among them barely matter and the check dominates). Such unchecked draws are
            made on ``device`` itself, from a generator seeded by ``generator`` once per epoch, so
            that a GPU is not fed ``B × num_negatives`` indices drawn and copied from the CPU in
            every iteration (UltraGCN on Gowalla: 768,000). (default: :obj:`True`)
    """

    def __init__(
        self,
        train_index: Tensor,
        num_items: int,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        mode: str = "edge",
        num_negatives: int = 1,
        exclude_positives: bool = True,
    ) -> None:
        if not (is_count(batch_size) and batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not (is_count(num_negatives) and num_negatives >= 1):
            raise ValueError(f"num_negatives must be an integer >= 1, got {num_negatives!r}")
        if mode not in SAMPLING_MODES:
            raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {mode!r}")
        num_items = check_train_index(train_index, num_items)
        if train_index.size(1) == 0:  # an epoch of no batch would train nothing, its loss reported as 0
            raise ValueError("train_index holds no interaction to train on")
        self.mode = mode
        # drawn on the CPU, as the generator is, and sent to ``device`` once an epoch: interactions on a GPU
        # (data.to("cuda")) failed in torch.cat beside the CPU's zero
        train_index = train_index.cpu()
        self.train_index = train_index[:, train_index[0].argsort(stable=True)]
        self.user_ptr = torch.cat(
            [torch.zeros(1, dtype=torch.long), torch.bincount(self.train_index[0]).cumsum(0)]
        )
        self.active_users = self.user_ptr.diff().nonzero().squeeze(1)
        self.batch_size = batch_size
        self.num_negatives = num_negatives
        self.exclude_positives = exclude_positives
        self.num_items = num_items
        self.generator = generator
        self.device = device
        # unchecked negatives drawn where they are used (off the CPU only: CPU runs stay as they were)
        self.draw_on_device = not exclude_positives and torch.device(device or "cpu").type != "cpu"

    @functools.cached_property
    def sampler(self) -> NegativeSampler:
        """The negative sampler, built at the first draw: counting an epoch's batches (``len``, as the CLI
        does to lay out DSL's schedule) needs none (Amazon-book's: about a second and 100 MB)."""
        return NegativeSampler(self.train_index, self.num_items)

    def __len__(self) -> int:
        return -(-self.train_index.size(1) // self.batch_size)

    def __repr__(self) -> str:  # the default named a memory address
        return (
            f"{self.__class__.__name__}(interactions={self.train_index.size(1)}, num_items={self.num_items}, "
            f"batch_size={self.batch_size}, batches={len(self)}, mode={self.mode!r}, "
            f"num_negatives={self.num_negatives})"
        )

    def __iter__(self):
        num = self.train_index.size(1)
        if self.mode == "edge":
            users, items = self.train_index[:, torch.randperm(num, generator=self.generator)]
        else:
            users = self.active_users[
                torch.randint(self.active_users.numel(), (num,), generator=self.generator)
            ]
            start, degree = self.user_ptr[users], self.user_ptr[users + 1] - self.user_ptr[users]
            offset = (torch.rand(num, generator=self.generator) * degree).long().clamp_(max=degree - 1)
            items = self.train_index[1, start + offset]
        # One negative each: drawn for the whole epoch at once; many: batch by batch (memory).
        whole_epoch = self.num_negatives == 1
        negatives = (
            self.sampler.sample(users, generator=self.generator).to(self.device) if whole_epoch else None
        )
        users_on, items_on = users.to(self.device), items.to(self.device)
        on_device = None
        if self.draw_on_device and not whole_epoch:
            seed = int(torch.randint(2**62, (1,), generator=self.generator))
            on_device = torch.Generator(device=self.device).manual_seed(seed)
        for start in range(0, num, self.batch_size):
            batch = slice(start, start + self.batch_size)
            drawn = negatives[batch] if whole_epoch else self._draw(users[batch], on_device).to(self.device)
            yield users_on[batch], items_on[batch], drawn

    def _draw(self, users: Tensor, on_device: torch.Generator | None = None) -> Tensor:
        """``[len(users), num_negatives]`` negatives, training positives excluded if asked; unchecked
        ones from ``on_device`` where given."""
        if self.exclude_positives:
            return self.sampler.sample(users, self.num_negatives, self.generator)
        shape = (users.numel(), self.num_negatives)
        if on_device is not None:
            return torch.randint(self.num_items, shape, generator=on_device, device=on_device.device)
        return torch.randint(self.num_items, shape, generator=self.generator)


class UserBatches:
    """Iterates an epoch of shuffled user batches ``(users,)`` (CDAE, MultVAE).

    Args:
        users (torch.Tensor): The users to train on (e.g. those with training interactions).
        batch_size (int): Users per batch.
        generator (torch.Generator, optional): Source of randomness (its state is checkpointed).
        device (torch.device, optional): Where the batches are sent.
    """

    def __init__(
        self,
        users: Tensor,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if not (is_count(batch_size) and batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        check_user_ids("users", users)  # float ids were batched as they were, a negative one as the last user
        if users.numel() == 0:
            raise ValueError("no user to train on")
        self.users = users
        self.batch_size = batch_size
        self.generator = generator
        self.device = device

    def __len__(self) -> int:
        return -(-self.users.numel() // self.batch_size)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(users={self.users.numel()}, batch_size={self.batch_size}, "
            f"batches={len(self)})"
        )

    def __iter__(self):
        users = self.users[torch.randperm(self.users.numel(), generator=self.generator)].to(self.device)
        for start in range(0, users.numel(), self.batch_size):
            yield (users[start : start + self.batch_size],)
