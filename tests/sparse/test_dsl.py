import copy
import io
import math
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from dslgraph.data import EDGE, propagation_graph
from dslgraph.nn import CDAE, LightGCN, MultVAE, NeuMF
from dslgraph.nn.base import table_row_degrees
from dslgraph.sparse import (
    DenseEmbedding,
    DynamicSparseLearning,
    EmbeddingTable,
    SparseEmbedding,
    SparseLinear,
    update_fraction,
)
from dslgraph.sparse import dsl as dsl_module
from dslgraph.sparse.dsl import _largest, _random_excluding, _reset_state
from dslgraph.sparse.embedding import degree_widths
from dslgraph.train import TrainConfig, Trainer


def _train_steps(model, dsl, optimizer, adj, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        users, pos, neg = (torch.randint(n, (32,), generator=g).to(adj.device) for n in (30, 40, 40))
        optimizer.zero_grad()
        model.loss(adj, users, pos, neg).backward()
        optimizer.step()
        dsl.step()
        yield


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
@pytest.mark.parametrize("growth", ["gradient", "random"])
def test_active_count_is_constant_at_every_step(small_data, backend, growth, device):
    model = LightGCN(30, 40, embedding_dim=8).to(device)
    dsl = DynamicSparseLearning(model, 0.8, total_steps=40, update_interval=3, backend=backend, growth=growth)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    adj = propagation_graph(small_data).to(device)
    expected = round(70 * 8 * 0.2)
    positions_seen = set()
    for _ in _train_steps(model, dsl, optimizer, adj, 40):
        dense = model.embedding.weight if backend == "masked" else model.embedding.to_dense()
        assert dsl.active_counts() == {"embedding": expected}
        assert int((dense != 0).sum()) <= expected
        positions_seen.add(tuple(sorted(dsl.targets[0].active_positions().tolist())))
    assert len(dsl.updates) == 13
    assert len(positions_seen) > 1, "the mask never changed"


def test_prune_smallest_and_grow_largest_gradient(small_data):
    model = LightGCN(30, 40, embedding_dim=8)
    dsl = DynamicSparseLearning(model, 0.5, total_steps=1, update_interval=1, schedule="constant", rho0=0.25)
    table = model.embedding
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # keep values fixed to check selection
    dsl.attach(optimizer)
    adj = propagation_graph(small_data)
    before = dict(zip(table.positions.tolist(), table.values.detach().abs().tolist()))
    dense_model = LightGCN(30, 40, embedding_dim=8)
    dense_model.embedding.weight.data.copy_(table.to_dense().detach())
    users, pos, neg = torch.arange(30), torch.arange(30), torch.arange(30).flip(0)
    dense_model.loss(adj, users, pos, neg).backward()
    grad = dense_model.embedding.weight.grad.reshape(-1).abs()

    optimizer.zero_grad()
    model.loss(adj, users, pos, neg).backward()
    optimizer.step()
    dsl.step()

    n = math.ceil(0.25 * len(before))
    pruned = sorted(before, key=before.get)[:n]
    kept = set(before) - set(pruned)
    after = set(table.positions.tolist())
    grown = after - kept
    assert len(after) == len(before) and kept <= after
    candidates = torch.ones_like(grad, dtype=torch.bool)
    candidates[list(kept)] = False
    threshold = grad[candidates].topk(n).values.min()
    assert all(grad[p] >= threshold - 1e-12 for p in grown)
    new_values = dict(zip(table.positions.tolist(), table.values.detach().tolist()))
    assert all(new_values[p] == 0 for p in grown - set(before))


@pytest.mark.parametrize("mode,expect_zero", [("reset", True), ("keep", False)])
def test_optimizer_state_of_grown_entries(small_data, mode, expect_zero, device):
    model = LightGCN(30, 40, embedding_dim=8).to(device)
    dsl = DynamicSparseLearning(model, 0.5, total_steps=4, update_interval=4, optimizer_state=mode)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    adj = propagation_graph(small_data).to(device)
    table = model.embedding
    before = table.positions.clone()
    for _ in _train_steps(model, dsl, optimizer, adj, 4):
        pass
    moved = (table.positions != before).nonzero().squeeze(1)
    assert moved.numel() > 0
    moments = optimizer.state[table.values]["exp_avg"][moved]
    assert bool((moments == 0).all()) == expect_zero


@pytest.mark.parametrize("mode,expect_zero", [("reset", True), ("keep", False)])
def test_optimizer_state_of_grown_entries_of_a_masked_weight(mode, expect_zero):
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=4, update_interval=4, targets="tables", backend="masked", optimizer_state=mode
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    before = model.emb.weight_mask.clone()
    for _ in _custom_steps(model, dsl, optimizer, 4):
        pass
    grown = model.emb.weight_mask & ~before
    assert grown.any()
    moments = optimizer.state[model.emb.weight]["exp_avg"][grown]
    assert bool((moments == 0).all()) == expect_zero


def test_cosine_schedule_and_t_end():
    assert update_fraction("cosine", 0, 100, 0.5, 0.005) == pytest.approx(0.5)
    assert update_fraction("cosine", 50, 100, 0.5, 0.005) == pytest.approx(0.2525)
    assert update_fraction("cosine", 100, 100, 0.5, 0.005) == pytest.approx(0.005)
    assert update_fraction("linear", 50, 100, 0.5, 0.0) == pytest.approx(0.25)
    assert update_fraction("constant", 70, 100, 0.3, 0.0) == pytest.approx(0.3)
    dsl = DynamicSparseLearning(
        LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=100, update_interval=10, t_end=30
    )
    assert [t for t in range(1, 101) if dsl.is_update_step(t)] == [10, 20, 30]


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        ("cosine", 25, 0.1 + 0.2 * (1 + math.sqrt(0.5))),  # cos(π/4)
        ("linear", 25, 0.4),
        ("cosine", 150, 0.1),  # past T, t is clipped to T: ρ_min, not the cosine's way back up
        ("linear", 150, 0.1),  # nor the line on below ρ_min (here below 0)
    ],
)
def test_update_fraction_between_and_past_the_ends(schedule, step, expected):
    """ρ_0 = 0.5, ρ_min = 0.1, T = 100. The checks at 0, T/2 and T above leave a linear schedule run
    backwards (equal at T/2) and an unclipped t (never past T there) unseen."""
    assert update_fraction(schedule, step, 100, 0.5, 0.1) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("step", "total", "message"),
    [(-10, 100, "step must be an integer >= 0, got -10"), (5, 0, "total must be an integer >= 1, got 0")],
)
def test_update_fraction_refuses_a_step_before_the_first_or_no_steps(step, total, message):
    """A negative step gave ρ_t above ρ_0 (0.54 here, linear) and total=0 gave ρ_0, silently."""
    with pytest.raises(ValueError, match=message):
        update_fraction("linear", step, total, 0.5, 0.1)


def test_update_fraction_refuses_an_unknown_schedule_naming_the_known_ones():
    with pytest.raises(
        ValueError, match=r"schedule must be one of \['cosine', 'linear', 'constant'\], got 'step'"
    ):
        update_fraction("step", 10, 100, 0.5, 0.1)


@pytest.mark.parametrize(
    ("rho0", "rho_min"), [(2, 0.1), (0.5, -0.1), (0.1, 0.5), (float("nan"), 0.1), (True, 0)]
)
def test_update_fraction_refuses_fractions_the_controller_refuses(rho0, rho_min):
    """rho0=2 gave ρ_t = 2.0 (more than every active weight) and rho_min > rho0 a schedule that rose,
    silently: the exported function checks them as DynamicSparseLearning does, naming both."""
    message = re.escape(f"need 0 <= rho_min <= rho0 <= 1, got rho0={rho0!r}, rho_min={rho_min!r}")
    with pytest.raises(ValueError, match=message):
        update_fraction("cosine", 10, 100, rho0, rho_min)
    with pytest.raises(ValueError, match=message):
        DynamicSparseLearning(LightGCN(3, 4), 0.5, total_steps=100, rho0=rho0, rho_min=rho_min)


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant"])
def test_rho_min_equal_to_rho0_holds_the_fraction_constant(schedule):
    """0 <= rho_min <= rho0 <= 1 allows the two to be equal: every schedule is then flat at rho0, which a
    strict check (rho_min < rho0) would refuse in both update_fraction and the controller."""
    assert [update_fraction(schedule, t, 100, 0.3, 0.3) for t in (0, 37, 100, 150)] == pytest.approx(
        [0.3] * 4
    )
    dsl = DynamicSparseLearning(
        LightGCN(3, 4), 0.5, total_steps=100, schedule=schedule, rho0=0.3, rho_min=0.3
    )
    assert dsl.update_fraction() == pytest.approx(0.3)


def test_each_update_moves_ceil_of_rho_t_times_nnz_with_t_end_as_the_horizon():
    """Each update's ρ_t is the cosine's at its iteration t with T = t_end (not total_steps, not t counted
    in updates), and it moves ⌈ρ_t · nnz⌉ entries: nnz = 100, and no ρ_t · nnz here is a whole number."""
    model = nn.Sequential(nn.Embedding(10, 20))
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=100, update_interval=10, t_end=60, rho0=0.5, rho_min=0.033, growth="random"
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    dsl.attach(optimizer)
    for _ in range(100):
        optimizer.step()
        dsl.step()
    iterations = [10, 20, 30, 40, 50, 60]
    rho = [0.033 + 0.2335 * (1 + math.cos(math.pi * t / 60)) for t in iterations]
    assert [update["iteration"] for update in dsl.updates] == iterations
    assert [update["rho"] for update in dsl.updates] == pytest.approx(rho)
    assert all(abs(r * 100 - round(r * 100)) > 0.01 for r in rho)  # a floor or a round would differ
    assert [update["changed"]["0"] for update in dsl.updates] == [math.ceil(r * 100) for r in rho]
    assert dsl.active_counts() == {"0": 100}


class _Custom(nn.Module):
    """A user's own recommender: a plain nn.Embedding and an MLP."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.mlp = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, index):
        return self.mlp(self.emb(index)).squeeze(-1)


def _custom_steps(model, dsl, optimizer, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randint(50, (16,))).pow(2).mean().backward()
        optimizer.step()
        dsl.step()
        yield


def _warned_in_custom_steps(model, dsl, optimizer, steps) -> str:
    """The warnings of ``steps`` :func:`_custom_steps` by ``optimizer``, joined by " | "."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in _custom_steps(model, dsl, optimizer, steps):
            pass
    return " | ".join(str(w.message) for w in caught)


def _seeded_custom() -> tuple[_Custom, DynamicSparseLearning]:
    """A :class:`_Custom` made after ``torch.manual_seed(0)``, under a fresh controller at 50% (20 steps,
    ΔT 4) whose optimizer is not made yet: the same weights and masks at each call."""
    torch.manual_seed(0)
    model = _Custom()
    return model, DynamicSparseLearning(model, 0.5, total_steps=20, update_interval=4)


@pytest.mark.parametrize("distribution", ["uniform", "erk"])
def test_plugs_into_a_custom_model_with_masked_mlp(distribution):
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(
        model,
        0.6,
        total_steps=20,
        targets=["tables", r"mlp\.\d\.weight"],
        update_interval=5,
        distribution=distribution,
        backend="masked",
    )
    assert isinstance(model.emb.weight_mask, torch.Tensor)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    counts = dsl.active_counts()
    total = 50 * 8 + 8 * 16 + 16
    assert sum(counts.values()) == pytest.approx(0.4 * total, abs=3)
    for _ in _custom_steps(model, dsl, optimizer, 20):
        assert dsl.active_counts() == counts
        for name in ("mlp.0.weight", "mlp.2.weight"):
            param = model.get_parameter(name)
            assert bool((param[~model.get_buffer(name + "_mask")] == 0).all())


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_tables_take_an_embedding_bag_masked_in_place(backend):
    """targets='tables' passed over an nn.EmbeddingBag, which trained dense beside the sparse tables."""
    torch.manual_seed(0)
    model = nn.ModuleDict({"user": nn.Embedding(10, 4), "tags": nn.EmbeddingBag(12, 4, mode="sum")})
    dsl = DynamicSparseLearning(model, 0.5, total_steps=6, update_interval=2, backend=backend)
    assert isinstance(model["tags"], nn.EmbeddingBag)  # no sparse bag: masked under every backend
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    dsl.attach(optimizer)
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        users, tags = torch.randint(10, (8,), generator=g), torch.randint(12, (8, 3), generator=g)
        optimizer.zero_grad()
        (model["user"](users) * model["tags"](tags)).sum(-1).sub(1).pow(2).mean().backward()
        optimizer.step()
        dsl.step()
        assert dsl.active_counts() == {"user": 20, "tags": 24}
        assert not model["tags"].weight[~model["tags"].weight_mask].any()
    assert len(dsl.updates) == 3 and all(update["changed"]["tags"] for update in dsl.updates)


@pytest.mark.parametrize("targets", ["tables", [r"weight", "tables"]])
def test_tables_in_a_model_without_one_are_refused_naming_its_parameters(targets):
    """Named after a regular expression, 'tables' in a model without a table was passed over silently."""
    with pytest.raises(ValueError, match=r"no embedding table .*parameters are \['weight', 'bias'\]"):
        DynamicSparseLearning(nn.Linear(4, 3), 0.5, total_steps=10, targets=targets, backend="masked")


@pytest.mark.parametrize("bias_first", [False, True])
def test_sparse_backend_makes_linear_weights_genuinely_sparse(bias_first):
    torch.manual_seed(0)
    model = _Custom()
    targets = [r"mlp\.0\.bias", r"mlp\.0\.weight"] if bias_first else [r"mlp\.0\.weight", r"mlp\.0\.bias"]
    dsl = DynamicSparseLearning(model, 0.5, total_steps=20, targets=["tables", *targets], update_interval=5)
    layer = model.mlp[0]
    assert isinstance(model.emb, SparseEmbedding) and isinstance(layer, SparseLinear)
    assert isinstance(model.mlp[2], nn.Linear)
    assert "mlp.0.weight" not in dict(model.named_parameters())  # no dense weight is stored
    assert layer.sparse_weight.values.numel() == 64
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    counts = dsl.active_counts()
    masks = []
    for _ in _custom_steps(model, dsl, optimizer, 20):
        assert dsl.active_counts() == counts
        assert bool((layer.bias[~layer.bias_mask] == 0).all())
        masks.append(layer.sparse_weight.positions.clone())
    assert "mlp.0.bias_mask" in model.state_dict()
    assert any(not torch.equal(masks[0], m) for m in masks), "the linear layer's mask never changed"
    assert all(s.numel() == 64 for s in optimizer.state[layer.sparse_weight.values].values() if s.dim())


@pytest.mark.parametrize("mask_init", ["aligned", "degree"])
@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_prefix_mask_inits_give_every_row_its_first_columns(small_data, backend, mask_init):
    """aligned: every row as wide as the others (±1); degree: busier rows wider."""
    model = LightGCN(30, 40, embedding_dim=8)
    degrees = table_row_degrees(model, small_data)
    dsl = DynamicSparseLearning(
        model,
        0.7,
        total_steps=10,
        mask_init=mask_init,
        backend=backend,
        update_interval=3,
        row_degrees=degrees if mask_init == "degree" else None,
    )
    if backend == "masked":
        positions = model.embedding.weight_mask.view(-1).nonzero().squeeze(1)
    else:
        positions = model.embedding.positions
    rows, cols = positions // 8, positions % 8
    width = torch.bincount(rows, minlength=70)
    assert int(width.sum()) == round(70 * 8 * 0.3)
    assert torch.equal(cols, torch.cat([torch.arange(int(w)) for w in width]))  # each row's first columns
    if mask_init == "aligned":
        assert set(width.tolist()) == {2, 3}
    else:
        degree = degrees["embedding"]
        lower = degree.unsqueeze(1) < degree.unsqueeze(0)  # [i, j]: row i has the lower degree
        assert (width.unsqueeze(1) <= width.unsqueeze(0))[lower].all()  # never narrower for a busier row
        assert width.min() >= 1 and width.max() > width.min()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    for _ in _train_steps(model, dsl, optimizer, propagation_graph(small_data), 6):
        assert dsl.active_counts() == {"embedding": 168}


def test_degree_widths_keep_the_count_and_the_bounds():
    degree = torch.tensor([0, 3, 8, 99, 10_000])
    width = degree_widths(degree, 40, 16)
    assert int(width.sum()) == 40 and width.tolist() == sorted(width.tolist())
    assert width.min() >= 1 and width.max() == 16
    assert int(degree_widths(degree, 3, 16).sum()) == 3  # fewer entries than rows: some rows get none
    # as many entries as rows or more: every row keeps one, however far its weight is below the others'
    assert degree_widths(torch.tensor([0, 0, 0, 10_000]), 8, 16).tolist() == [1, 1, 1, 5]


def test_degree_widths_grow_as_the_square_root_of_degree_plus_one():
    """Degrees 0, 3, 8, 15, 24 weigh 1, 2, 3, 4, 5: 15 entries give exactly those widths, in any row order."""
    assert degree_widths(torch.tensor([0, 3, 8, 15, 24]), 15, 16).tolist() == [1, 2, 3, 4, 5]
    assert degree_widths(torch.tensor([24, 0, 15, 3, 8]), 15, 16).tolist() == [5, 1, 4, 2, 3]


def test_aligned_mask_gives_its_extra_columns_to_random_rows():
    """168 entries over 70 rows: 2 columns each and a third for 28 rows drawn at random, not the first 28
    (a LightGCN table's users, who would all start wider than every item)."""
    table = SparseEmbedding(70, 8, 0.3, mask_init="aligned", generator=torch.Generator().manual_seed(0))
    width = torch.bincount(table.positions // 8, minlength=70)
    wide = (width == 3).nonzero().squeeze(1)
    assert int(width.sum()) == 168 and wide.numel() == 28
    assert wide.max() >= 30  # an item row among them


def test_degree_mask_init_without_degrees_names_the_table(small_data):
    with pytest.raises(
        ValueError, match=r"row_degrees\['embedding'\], one degree per row of its 70 rows, got none"
    ):
        DynamicSparseLearning(LightGCN(30, 40, embedding_dim=8), 0.5, total_steps=10, mask_init="degree")
    wrong = {"embedding": torch.ones(30, dtype=torch.long)}
    with pytest.raises(ValueError, match=r"got shape \(30,\)"):
        DynamicSparseLearning(
            LightGCN(30, 40, embedding_dim=8), 0.5, total_steps=10, mask_init="degree", row_degrees=wrong
        )
    with pytest.raises(ValueError, match="one degree per row of the 70-row table, got none"):
        SparseEmbedding(70, 8, 0.5, mask_init="degree")
    # a list failed with an AttributeError, on the shape it lacks
    for degrees, got in ((list(range(70)), "a list"), (np.arange(70), "a ndarray")):
        with pytest.raises(ValueError, match=rf"row_degrees\['embedding'\], .* got {got}, not a tensor"):
            DynamicSparseLearning(
                LightGCN(30, 40, embedding_dim=8),
                0.5,
                total_steps=10,
                mask_init="degree",
                row_degrees={"embedding": degrees},
            )


def test_row_degrees_without_degree_mask_init_or_as_one_tensor_are_refused(small_data):
    """row_degrees with the default mask_init='random' were ignored (random masks, silently), and one
    table's tensor failed inside torch ("Boolean value of Tensor ... is ambiguous")."""
    degrees = table_row_degrees(LightGCN(30, 40, embedding_dim=8), small_data)
    with pytest.raises(ValueError, match="read by mask_init='degree' only, got mask_init='random'"):
        DynamicSparseLearning(LightGCN(30, 40, embedding_dim=8), 0.5, total_steps=10, row_degrees=degrees)
    with pytest.raises(ValueError, match="row_degrees must be a dict .* got Tensor"):
        DynamicSparseLearning(
            LightGCN(30, 40, embedding_dim=8),
            0.5,
            total_steps=10,
            mask_init="degree",
            row_degrees=degrees["embedding"],
        )


def test_degree_mask_init_says_which_tables_table_row_degrees_places():
    """With as many users as items, table_row_degrees cannot tell a user table from an item table and
    leaves both out; the error said it gives them."""
    model = nn.ModuleDict({"user": nn.Embedding(30, 4), "item": nn.Embedding(30, 4)})
    with pytest.raises(ValueError, match="or num_items rows when the two differ"):
        DynamicSparseLearning(model, 0.5, total_steps=10, mask_init="degree", row_degrees={})


def test_row_degrees_of_no_table_are_refused_naming_them():
    """Degrees of a table held as a bare parameter, or under a misspelt name, were passed over: its mask was
    drawn at random. Those of a table that is no target (the CLI gives every table's) are taken."""
    model = nn.Module()
    model.user, model.item = nn.Parameter(torch.randn(10, 4)), nn.Embedding(8, 4)
    degrees = {"user": torch.arange(10), "item": torch.arange(8)}
    message = r"names \['user'\], which are no embedding table .*tables: \['item'\]"
    with pytest.raises(ValueError, match=message):
        DynamicSparseLearning(
            model, 0.5, 10, targets=["tables", "user"], mask_init="degree", row_degrees=degrees
        )
    with pytest.raises(ValueError, match=r"names \['itme'\]"):
        DynamicSparseLearning(model, 0.5, 10, mask_init="degree", row_degrees={"itme": torch.arange(8)})
    item_only = {"item": degrees["item"]}
    dsl = DynamicSparseLearning(model, 0.5, 10, targets=["user"], mask_init="degree", row_degrees=item_only)
    assert dsl.active_counts() == {"user": 20}


def test_table_row_degrees_map_rows_to_users_and_items(small_data):
    users, items = small_data[EDGE].edge_index
    lightgcn = table_row_degrees(LightGCN(30, 40, embedding_dim=8), small_data)
    expected = torch.cat([torch.bincount(users, minlength=30), torch.bincount(items, minlength=40)])
    assert list(lightgcn) == ["embedding"] and torch.equal(lightgcn["embedding"], expected)
    two_tables = nn.ModuleDict(
        {
            "user": nn.Embedding(30, 4),
            "item": nn.Embedding(40, 4),
            "other": nn.Embedding(7, 4),
            "tags": nn.EmbeddingBag(40, 4),
        }
    )
    degrees = table_row_degrees(two_tables, small_data)
    assert set(degrees) == {"user", "item", "tags"} and torch.equal(degrees["item"], expected[30:])


def test_bad_settings_fail_clearly():
    for sparsity in (1.0, 80, -0.1):  # 80: a percentage
        with pytest.raises(ValueError, match=rf"sparsity must be a fraction in \[0, 1\), got {sparsity}"):
            DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), sparsity, total_steps=10)
    with pytest.raises(ValueError, match="update_interval"):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, update_interval=0)
    with pytest.raises(ValueError, match="total_steps must be >= 1, got 0"):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=0)
    for t_end in (0, 11):
        with pytest.raises(ValueError, match=rf"t_end must be in \(0, total_steps=10\], got {t_end}"):
            DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, t_end=t_end)
    # the closed end of (0, total_steps] is taken: updates then run to the last step, as without t_end
    dsl = DynamicSparseLearning(
        LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, update_interval=5, t_end=10
    )
    assert dsl.horizon == 10 and dsl.is_update_step(10)
    with pytest.raises(ValueError, match="chunk_rows must be >= 1, got 0"):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, chunk_rows=0)
    with pytest.raises(ValueError, match="matches no parameter"):
        DynamicSparseLearning(
            LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, targets=["decoder.weight"]
        )
    with pytest.raises(ValueError, match="targets is empty"):  # it sparsified nothing, silently
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, targets=[])
    # a TypeError ("'int' object is not iterable") and a bare re.error before
    with pytest.raises(ValueError, match="targets must be 'tables' and/or regular expressions, got 5"):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, targets=5)
    with pytest.raises(ValueError, match=r"targets must be .*\(strings\), got \['tables', 3\]"):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, targets=["tables", 3])
    with pytest.raises(ValueError, match=r"target 'embedding\(' is not a regular expression"):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, targets=["embedding("])
    with pytest.raises(ValueError, match="mask_init must be one of"):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, mask_init="diagonal")
    with pytest.raises(ValueError, match="schedule must be one of"):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, schedule="step")
    with pytest.raises(ValueError, match="momentum"):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, total_steps=10, growth="momentum")


def test_numpy_numbers_are_taken_and_kept_as_python_ones():
    # np.int64 ints passed and were kept (manual_seed refused np.int64 seeds), and checkpoints then held NumPy
    # scalars in run_settings(), which torch.load(weights_only=True) refuses
    dsl = DynamicSparseLearning(
        LightGCN(3, 4, embedding_dim=8),
        np.float32(0.5),
        np.int64(10),
        update_interval=np.int32(3),
        rho0=np.float64(0.5),
        rho_min=np.int64(0),
        t_end=np.int64(9),
        chunk_rows=np.int32(2),
        seed=np.int64(1),
        skip_zero_gradient=np.True_,
        # np.str_ choices were kept too
        schedule=np.str_("linear"),
        growth=np.str_("gradient"),
        optimizer_state=np.str_("keep"),
        distribution=np.str_("erk"),
        mask_init=np.str_("aligned"),
        backend=np.str_("compact"),
    )
    settings = dsl.run_settings() | {"total_steps": dsl.total_steps, "chunk_rows": dsl.chunk_rows}
    assert settings["sparsity"] == 0.5 and settings["rho_min"] == 0.0 and settings["t_end"] == 9
    assert settings["backend"] == "compact" and dsl.mask_init == "aligned"
    assert all(type(value) in (bool, int, float, str) for value in settings.values()), settings
    assert type(dsl.mask_init) is str
    assert dsl.skip_zero_gradient is True
    buffer = io.BytesIO()
    torch.save(dsl.state_dict(), buffer)
    buffer.seek(0)
    dsl.load_state_dict(torch.load(buffer, weights_only=True))


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"update_interval": np.float64(3.0)}, r"update_interval must be an int, got {}"),
        ({"seed": 1.5}, r"seed must be an int, got 1.5"),
        # torch's "Overflow when unpacking long long" named nothing
        ({"seed": 2**64}, r"seed must be in \[-2\*\*63, 2\*\*64\), .* got 18446744073709551616"),
        ({"seed": -(2**63) - 1}, r"seed must be in \[-2\*\*63, 2\*\*64\)"),
        ({"t_end": np.True_}, r"t_end must be an int, got {}"),
        ({"sparsity": "0.8"}, r"sparsity must be a fraction in \[0, 1\), got '0.8'"),  # a TypeError before
        ({"sparsity": np.float64(80.0)}, r"sparsity must be a fraction in \[0, 1\), got {}"),
        # a tensor (the value a sweep read from a tensor) was named as 0.800000011920929, in [0, 1)
        ({"sparsity": torch.tensor(0.8)}, r"sparsity must be a fraction in \[0, 1\), got tensor\(0.8000\)"),
        ({"rho0": "1"}, r"need 0 <= rho_min <= rho0 <= 1, got rho0='1', rho_min=0.005"),
        ({"skip_zero_gradient": "no"}, r"skip_zero_gradient must be True or False, got 'no'"),  # grew as True
    ],
)
def test_a_wrong_number_is_refused_naming_it(setting, message):
    settings = {"sparsity": 0.5, "total_steps": 10} | setting
    # {} is the value as NumPy writes it: np.float64(3.0) from NumPy 2 on, 3.0 before
    with pytest.raises(ValueError, match=message.format(re.escape(repr(*setting.values())))):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), **settings)


def test_a_model_that_is_no_module_is_refused_naming_it():
    """A model's state_dict() (or its parameters) given for the model failed on named_modules."""
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got OrderedDict"):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8).state_dict(), 0.5, 10)


def test_lazy_layer_target_fails_naming_it():
    from torch_geometric.nn import Linear

    model = nn.Sequential(nn.Embedding(10, 8), Linear(-1, 4))
    with pytest.raises(ValueError, match=r"'1.weight' is not initialised yet .* run the model on one batch"):
        DynamicSparseLearning(model, 0.5, total_steps=10, targets=["tables", r"1\.weight"])
    model(torch.tensor([0, 1]))  # the advice works
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, targets=["tables", r"1\.weight"])
    assert dsl.active_counts()["1.weight"] == 16


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
@pytest.mark.parametrize("layer", [nn.Embedding, nn.Linear])
def test_a_meta_or_complex_target_is_refused_naming_it(backend, layer):
    """A meta target failed inside torch where replaced ("Cannot copy out of meta tensor") and got a mask of
    no values where masked; a complex one replaced lost its imaginary parts (masking one works)."""
    targets = ["tables"] if layer is nn.Embedding else [r"1\.weight"]
    model = nn.Sequential(nn.Embedding(10, 4), layer(4, 3, device="meta"))
    with pytest.raises(ValueError, match="'1.weight' is on the meta device"):
        DynamicSparseLearning(model, 0.5, 10, targets=targets, update_interval=5, backend=backend)
    model = nn.Sequential(nn.Embedding(10, 4), layer(4, 3, dtype=torch.complex64))
    if backend == "masked":
        DynamicSparseLearning(model, 0.5, 10, targets=[r"1\.weight"], update_interval=5, backend=backend)
        return
    with pytest.raises(ValueError, match="'1.weight' is torch.complex64.* use backend='masked'"):
        DynamicSparseLearning(model, 0.5, 10, targets=targets, update_interval=5, backend=backend)
    assert type(model[0]) is nn.Embedding  # refused before the model changed


@pytest.mark.parametrize("distribution", ["uniform", "erk"])
def test_an_empty_target_is_refused_naming_it(distribution):
    """ERK's budgets divided by an empty tensor's 0 entries (a ZeroDivisionError); uniform kept 0 of them."""
    model = nn.Module()
    model.table, model.empty = nn.Embedding(10, 4), nn.Parameter(torch.zeros(0, 4))
    with pytest.raises(ValueError, match=r"'empty' has no entries \(shape \(0, 4\)\).*leave it out"):
        DynamicSparseLearning(
            model, 0.5, total_steps=10, targets=["tables", "empty"], distribution=distribution
        )


def test_momentum_growth_on_masked_backend(small_data, device):
    model = LightGCN(30, 40, embedding_dim=8).to(device)
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=6, update_interval=3, growth="momentum", backend="masked"
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    for _ in _train_steps(model, dsl, optimizer, propagation_graph(small_data).to(device), 6):
        assert dsl.active_counts() == {"embedding": 280}
    assert len(dsl.updates) == 2


@pytest.mark.parametrize("make", ["adam", "sgd"])
def test_momentum_growth_takes_the_largest_first_moments_in_absolute_value(make):
    """Momentum growth ranks inactive entries by |Adam's exp_avg| or |SGD's momentum_buffer| (a negative
    moment by its size, Adam's second moment not at all), after pruning the active entries of smallest |w|
    (weights of both signs)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4))
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=1, update_interval=1, schedule="constant", rho0=0.5,
        backend="masked", growth="momentum",
    )  # fmt: skip
    # values stay as they are
    if make == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=0.0)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    dsl.attach(optimizer)
    weight = model[0].weight
    active = dsl.targets[0].active_positions()
    kept = active[weight.detach().view(-1)[active].abs().argsort()[10:]]  # 10 of the 20 pruned
    model[0](torch.arange(10)).sum().backward()
    optimizer.step()
    moment = (torch.randperm(40) + 1.0) * torch.tensor([1.0, -1.0]).repeat(20)  # distinct sizes, both signs
    if make == "adam":
        optimizer.state[weight]["exp_avg"] = moment.view(10, 4).clone()
        optimizer.state[weight]["exp_avg_sq"] = (41 - moment.abs()).view(10, 4)  # the reverse order
    else:
        optimizer.state[weight]["momentum_buffer"] = moment.view(10, 4).clone()
    dsl.step()
    free = moment.abs()
    free[kept] = -math.inf
    grown = free.topk(10).indices
    assert torch.equal(dsl.targets[0].active_positions(), torch.cat([kept, grown]).sort().values)


def _sparse_run(data, out, epochs, resume=False, device="cpu", growth="gradient"):
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=8)
    config = TrainConfig(epochs=4, batch_size=64, lr=0.01, eval_every=1, progress=False, seed=1)
    steps = 4 * -(-data[EDGE].edge_index.size(1) // 64)
    dsl = DynamicSparseLearning(model, 0.8, total_steps=steps, update_interval=3, growth=growth, seed=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    trainer = Trainer(model, data, config, output_dir=out, device=device, hooks=[dsl], optimizer=optimizer)
    trainer.config.epochs = epochs
    return trainer.fit(resume=resume), model, dsl


@pytest.mark.parametrize("growth", ["gradient", "random"])  # random: the controller's generator too
def test_resume_reproduces_masks_and_metrics(small_data, tmp_path, growth):
    full, full_model, full_dsl = _sparse_run(small_data, tmp_path / "full", 4, growth=growth)
    _sparse_run(small_data, tmp_path / "split", 2, growth=growth)
    resumed, resumed_model, resumed_dsl = _sparse_run(
        small_data, tmp_path / "split", 4, resume=True, growth=growth
    )
    assert torch.equal(full_model.embedding.positions, resumed_model.embedding.positions)
    # the controller's log of every update (iteration, ρ_t, entries moved), the first half's included
    assert len(full_dsl.updates) > 2 and resumed_dsl.updates == full_dsl.updates
    torch.testing.assert_close(full_model.embedding.values, resumed_model.embedding.values)

    def without_times(history):
        return [{k: v for k, v in entry.items() if not k.endswith("seconds")} for entry in history]

    assert without_times(full["history"]) == without_times(resumed["history"])


def test_a_run_on_the_device_resumes_with_its_controller(small_data, tmp_path, device):
    # built on the CPU and moved by the trainer, as the CLI does; the resume maps last.pt to the device
    full, full_model, _ = _sparse_run(small_data, tmp_path / "full", 4, device=device)
    _sparse_run(small_data, tmp_path / "split", 2, device=device)
    resumed, resumed_model, _ = _sparse_run(small_data, tmp_path / "split", 4, resume=True, device=device)
    assert resumed_model.embedding.positions.device.type == device.type
    assert [entry["epoch"] for entry in resumed["history"]] == [1, 2, 3, 4]
    # a GPU's sparse products may round differently from run to run: close, not equal
    losses = [[entry["loss"] for entry in run["history"]] for run in (full, resumed)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
    assert resumed_model.embedding.nnz == full_model.embedding.nnz


def test_resume_refuses_a_controller_of_other_settings(caplog):
    def controller(**overrides):
        settings = dict(total_steps=100, update_interval=10, seed=0) | overrides
        return DynamicSparseLearning(LightGCN(30, 40, embedding_dim=8), 0.8, **settings)

    state = controller().state_dict()
    with pytest.raises(ValueError, match="update_interval was 10, now 20"):
        controller(update_interval=20).load_state_dict(state)
    with pytest.raises(ValueError, match="schedule was 'cosine', now 'linear'"):
        controller(schedule="linear").load_state_dict(state)
    longer = controller(total_steps=200)  # a longer run: ρ_t follows its length from here on
    longer.load_state_dict(state)
    assert "total_steps 200 (saved: 100)" in caplog.text
    del state["settings"]  # a state saved before settings were recorded loads unchecked
    controller(update_interval=20).load_state_dict(state)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({}, r"lacks \['iteration', 'generator', 'updates'\]"),
        ({"iteration": 3, "updates": []}, r"lacks \['generator'\]"),
        (LightGCN(3, 4).state_dict(), r"lacks \['iteration', 'generator', 'updates'\]"),  # the model's
        (None, "got NoneType"),
        ({"iteration": -1, "generator": None, "updates": []}, "its iteration is -1, where a"),
        ({"iteration": 2.0, "generator": None, "updates": []}, "its iteration is 2.0"),
        ({"iteration": True, "generator": None, "updates": []}, "its iteration is True"),  # no count
    ],
)
def test_load_state_dict_names_what_a_state_lacks(state, message):
    """{} or a model's state dict failed with a bare KeyError: 'iteration', and None with a TypeError."""
    dsl = DynamicSparseLearning(LightGCN(30, 40, embedding_dim=8), 0.8, total_steps=100)
    with pytest.raises(ValueError, match="not a DSL controller's state .*" + message):
        dsl.load_state_dict(state)


@pytest.mark.parametrize(
    "setting",
    [
        {"sparsity": 0.5},
        {"backend": "masked"},
        {"rho0": 0.4},
        {"rho_min": 0.01},
        {"t_end": 50},
        {"growth": "random"},
        {"optimizer_state": "keep"},
        {"skip_zero_gradient": True},  # it decides which entries grow, and how many are pruned
    ],
)
def test_resume_refuses_each_setting_that_decides_the_masks(setting):
    """Each of run_settings() is checked on resume, not only the two named above."""

    def controller(**overrides):
        settings = dict(sparsity=0.8, total_steps=100, update_interval=10, seed=0) | overrides
        return DynamicSparseLearning(LightGCN(30, 40, embedding_dim=8), **settings)

    ((key, value),) = setting.items()
    state = controller().state_dict()
    with pytest.raises(ValueError, match=f"{key} was .*, now {value!r}"):
        controller(**setting).load_state_dict(state)


def test_load_state_dict_names_settings_this_version_does_not_know():
    """A state saved by a version with another setting failed with a bare KeyError: 'prune_rule'."""
    dsl = DynamicSparseLearning(LightGCN(30, 40, embedding_dim=8), 0.8, total_steps=100)
    state = dsl.state_dict()
    state["settings"] |= {"prune_rule": "magnitude", "anneal": 2}
    message = r"settings this version does not know \(anneal, prune_rule; known: sparsity, backend"
    with pytest.raises(ValueError, match=message):
        dsl.load_state_dict(state)


class _DotModel(nn.Module):
    """Dot-product scores without propagation: only the batch's rows get a gradient."""

    def __init__(self):
        super().__init__()
        self.user = nn.Embedding(50, 8)
        self.item = nn.Embedding(20, 8)

    def loss(self, users, items):
        return -torch.nn.functional.logsigmoid((self.user(users) * self.item(items)).sum(-1)).mean()


@pytest.mark.parametrize("backend", ["sparse", "masked"])
@pytest.mark.parametrize("skip", [False, True])
def test_skip_zero_gradient_grows_only_rows_the_loss_sees(backend, skip):
    torch.manual_seed(0)
    model = _DotModel()
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=1, update_interval=1, schedule="constant", rho0=0.5,
        backend=backend, skip_zero_gradient=skip,
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    user = next(t for t in dsl.targets if t.name == "user")
    before = set(user.active_positions().tolist())
    users, items = torch.arange(10).repeat(2), torch.arange(20)  # users 10..49 are not in the batch
    optimizer.zero_grad()
    model.loss(users, items).backward()
    optimizer.step()
    dsl.step()
    moved_in = set(user.active_positions().tolist()) - before
    grown_rows = {p // 8 for p in moved_in}
    assert dsl.active_counts() == {"user": 200, "item": 80}
    changed = dsl.updates[-1]["changed"]["user"]
    assert dsl.updates[-1]["moved"]["user"] == len(moved_in)  # changed less those grown back at once
    if skip:  # the batch's 10 rows have 40 inactive entries, all with a gradient: the rest stays
        assert grown_rows and max(grown_rows) < 10
        assert changed < 100
    else:  # exactly n = 100 grown, most of them in rows the loss never saw
        assert changed == 100
        assert max(grown_rows) >= 10


def test_without_zero_growth_prunes_fewer_when_a_kept_entry_was_a_candidate():
    from dslgraph.sparse.dsl import _without_zero_growth

    active = torch.tensor([10, 11, 12, 13])  # flat positions; pruned indexes into them, smallest first
    pruned, grown = torch.tensor([0, 1, 2]), torch.tensor([12, 20, 21])
    # 20 has no gradient; keeping 2 swaps would leave 12 active, so it cannot be grown too: one swap remains
    kept_pruned, kept_grown = _without_zero_growth(active, pruned, grown, torch.tensor([5.0, 0.0, 3.0]))
    assert kept_pruned.tolist() == [0] and kept_grown.tolist() == [21]
    all_live = _without_zero_growth(active, pruned, grown, torch.tensor([5.0, 1.0, 3.0]))
    assert [t.tolist() for t in all_live] == [[0, 1, 2], [12, 21, 20]]


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_attach_rejects_an_optimizer_made_before_the_controller(backend):
    torch.manual_seed(0)
    model = _Custom()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, backend=backend)
    if backend == "masked":  # the masked tensors are the ones the optimizer holds
        assert dsl.attach(optimizer) is dsl
    else:  # the optimizer holds the replaced dense table, so the sparse one would never train
        with pytest.raises(ValueError, match="optimizer does not hold the parameters of DSL target 'emb'"):
            dsl.attach(optimizer)


def test_attach_names_one_optimizer_for_every_target():
    """A loop with an optimizer per part of the model (SparseAdam for the table, Adam for the rest)
    was told to create its optimizer after the controller, which it had done."""
    model = nn.Sequential(nn.Embedding(10, 4, sparse=True), nn.Linear(4, 1))
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=10, targets=["tables", r"1\.weight"], backend="masked"
    )
    for part in model:
        optimizer = (torch.optim.SparseAdam if part is model[0] else torch.optim.Adam)(part.parameters())
        with pytest.raises(ValueError, match="DSL manages one optimizer, which holds every target"):
            dsl.attach(optimizer)


def test_attach_names_the_renamed_parameter_a_choice_by_name_missed():
    """Parameters chosen by name after the controller (those ending in weight or bias) passed over the
    sparse table's "0.values"; attach() named the target only and said to create the optimizer after the
    controller, which the loop had done."""
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 1))
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10)
    chosen = [p for name, p in model.named_parameters() if name.endswith(("weight", "bias"))]
    with pytest.raises(ValueError, match=r"DSL target '0' \('0.values'\).*'0.values' among them"):
        dsl.attach(torch.optim.AdamW(chosen))


@pytest.mark.parametrize("backend", ["sparse", "masked"])
@pytest.mark.parametrize("optimizer_state", ["reset", "keep"])
def test_a_target_unfrozen_after_the_optimizer_was_made_is_named_at_the_update(backend, optimizer_state):
    """A table frozen while the optimizer was built from the parameters that train, and unfrozen later:
    the update failed with a bare StopIteration (reset), or pruned trained weights for grown zeros that
    the optimizer never trained (keep)."""
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 1))
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=10, update_interval=2, backend=backend, optimizer_state=optimizer_state
    )
    model[0].requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    dsl.attach(optimizer)
    model[0].requires_grad_(True)
    name = "0.values" if backend == "sparse" else "0.weight"
    with pytest.raises(ValueError, match=f"DSL target '0' \\('{name}'\\).*needs optimizer.add_param_group"):
        for _ in range(2):
            optimizer.zero_grad()
            model(torch.arange(10)).sum().backward()
            optimizer.step()
            dsl.step()


def test_reset_without_an_attached_optimizer_fails_clearly():
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=1)
    model(torch.arange(4)).sum().backward()
    with pytest.raises(RuntimeError, match="no optimizer is attached"):
        dsl.step()


class _Params(nn.Module):
    """Bare parameters whose ERK budgets all exceed 1 at density 1 (it divided by zero)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = (nn.Parameter(torch.randn(shape)) for shape in ((10, 25), (1, 11), (25,)))


def test_erk_at_full_density_keeps_every_entry():
    model = _Params()
    dsl = DynamicSparseLearning(
        model, 0.0, total_steps=10, targets=["a", "b", "c"], distribution="erk", backend="masked"
    )
    assert dsl.active_counts() == {"a": 250, "b": 11, "c": 25}


def test_erk_at_full_density_keeps_every_entry_where_rounding_takes_every_budget_past_one():
    """At density 1 each ERK budget is 1 up to rounding; for these tables the rounding takes each past 1 in
    turn, so all are capped and none is left to share the budget (the branch that returns density 1 for
    every tensor). _Params above reaches it too, but there 0.999 of each tensor rounds back to all of it."""
    model = nn.Module()
    model.users, model.items = nn.Parameter(torch.randn(50, 64)), nn.Parameter(torch.randn(118, 64))
    dsl = DynamicSparseLearning(model, 0.0, total_steps=10, targets=["users", "items"], distribution="erk")
    assert dsl.active_counts() == {"users": 50 * 64, "items": 118 * 64}


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_double_model_stays_double_and_matches_its_dense_twin(backend):
    torch.manual_seed(0)
    model = _Custom().double()
    dense = _Custom().double()
    dense.load_state_dict(model.state_dict())
    DynamicSparseLearning(model, 0.5, total_steps=10, targets=["tables", r"mlp\.0\.weight"], backend=backend)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    with torch.no_grad():  # the dense twin holds the sparse model's weights, zeros included
        dense.emb.weight.copy_(model.emb.weight)
        dense.mlp[0].weight.copy_(model.mlp[0].weight)
    index = torch.arange(50)
    torch.testing.assert_close(model(index), dense(index), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "options", [{"padding_idx": 0}, {"max_norm": 1.0}, {"scale_grad_by_freq": True}, {"sparse": True}]
)
def test_embedding_options_a_sparse_table_would_drop_fail_clearly(options):
    model = nn.Sequential(nn.Embedding(10, 4, **options))
    option, value = next(iter(options.items()))  # with its value: "with sparse" read as a noun
    with pytest.raises(ValueError, match=re.escape(f"'0' is an nn.Embedding with {option}={value!r},")):
        DynamicSparseLearning(model, 0.5, total_steps=10)
    if "sparse" not in options:  # a masked dense table keeps them
        DynamicSparseLearning(model, 0.5, total_steps=10, backend="masked")


def test_update_prunes_ceil_of_rho_times_nnz_exactly():
    """0.07 x 100 is 7.000000000000001 in floating point: the update must prune 7 entries, not 8."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 20))
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=1, update_interval=1, schedule="constant", rho0=0.07, growth="random"
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    dsl.attach(optimizer)
    model[0](torch.arange(10)).sum().backward()
    optimizer.step()
    dsl.step()
    assert dsl.updates[0]["changed"] == {"0": 7}


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_a_pruned_entry_grown_back_keeps_its_value_and_optimizer_state(backend):
    """Pruned and regrown in one update, an entry never left (the DSL authors' masks, RigL): it keeps
    its value and, even under optimizer_state="reset", its moments."""
    model = torch.nn.Sequential(torch.nn.Embedding(1, 4))
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=1, update_interval=1, schedule="constant", rho0=0.5, backend=backend
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0)  # values stay as set
    dsl.attach(optimizer)
    target = dsl.targets[0]
    weak, strong = target.active_positions().tolist()
    (param,), _ = target.storage()
    index = torch.arange(2) if backend == "sparse" else target.active_positions()  # slots, or positions
    with torch.no_grad():
        param.view(-1)[index] = torch.tensor([0.1, 1.0])
    scale = torch.ones(4)
    scale[weak] = 10.0  # the pruned entry has the largest gradient, so it is grown back at once
    (model[0](torch.zeros(1, dtype=torch.long)).squeeze(0) * scale).sum().backward()
    optimizer.step()
    dsl.step()
    assert target.active_positions().tolist() == [weak, strong]
    assert param.view(-1)[index[0]].item() == pytest.approx(0.1)
    assert optimizer.state[param]["exp_avg"].view(-1)[index[0]].item() == pytest.approx(1.0)


def test_sparse_tables_reset_as_the_tables_they_replace():
    """model.reset_parameters() after DSL draws a replaced table's values as the dense table did."""
    lightgcn = LightGCN(30, 40, embedding_dim=8, init="xavier")
    DynamicSparseLearning(lightgcn, 0.5, total_steps=1)
    assert (lightgcn.embedding.init, lightgcn.embedding.std) == ("xavier", 0.1)
    plain = torch.nn.Sequential(torch.nn.Embedding(300, 40))
    DynamicSparseLearning(plain, 0.5, total_steps=1)
    plain[0].reset_parameters(torch.Generator().manual_seed(0))
    assert 0.9 < plain[0].values.std().item() < 1.1  # nn.Embedding's normal(0, 1), not normal(0, 0.1)


class _Resettable(_Custom):
    """A custom model whose reset_parameters() writes into a table's weight itself (as PyG's LightGCN)."""

    def reset_parameters(self):
        nn.init.xavier_uniform_(self.emb.weight)
        for layer in (self.mlp[0], self.mlp[2]):
            layer.reset_parameters()


@pytest.mark.parametrize("copied", [False, True])
def test_reset_parameters_of_a_masked_model_keeps_inactive_weights_zero(copied):
    """reset_parameters() of the model or of one masked module redrew whole dense weights, active until
    the next optimizer step."""
    torch.manual_seed(0)
    model = _Resettable()
    targets = ["tables", r"mlp\.0\.(weight|bias)", r"mlp\.2\.weight"]
    DynamicSparseLearning(model, 0.6, total_steps=10, targets=targets, backend="masked")
    model = copy.deepcopy(model) if copied else model
    names = ["emb.weight", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight"]
    masks = {name: model.get_buffer(f"{name}_mask").clone() for name in names}
    before = {name: model.get_parameter(name).detach().clone() for name in names}
    for reset in (model.reset_parameters, model.mlp[0].reset_parameters, model.emb.reset_parameters):
        reset()
        for name in names:
            assert torch.equal(model.get_buffer(f"{name}_mask"), masks[name])
            assert bool((model.get_parameter(name)[~masks[name]] == 0).all()), name
    assert not torch.equal(model.emb.weight, before["emb.weight"])  # the values were redrawn


def test_reset_parameters_of_a_module_tied_to_a_masked_one_keeps_the_mask():
    """A tied weight is masked on its first module: the other module's reset_parameters() redrew it too."""
    model = nn.Module()
    model.emb, model.out = nn.Embedding(10, 4), nn.Linear(4, 10, bias=False)
    model.out.weight = model.emb.weight
    DynamicSparseLearning(model, 0.5, total_steps=10, backend="masked")
    model.out.reset_parameters()
    assert bool((model.emb.weight[~model.emb.weight_mask] == 0).all())


@pytest.mark.parametrize("backend", ["sparse", "compact"])
def test_reset_parameters_of_sparse_targets_keeps_their_positions(backend):
    """A sparse table's and sparse linear layer's reset_parameters() drew a new mask, apart from the
    controller's seed and from the one the masked backend keeps; it now redraws the values only."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(
        model, 0.6, total_steps=10, targets=["tables", r"mlp\.0\.weight"], backend=backend
    )
    tables = [model.emb, model.mlp[0].sparse_weight]
    positions = [table.positions.clone() for table in tables]
    values = [table.values.detach().clone() for table in tables]
    model.emb.reset_parameters()
    model.mlp[0].reset_parameters()
    for table, kept, old in zip(tables, positions, values, strict=True):
        assert torch.equal(table.positions, kept)
        assert not torch.equal(table.values, old)
    assert 0.8 < model.emb.values.std().item() < 1.2  # nn.Embedding's normal(0, 1), as before
    assert dsl.active_counts() == {"emb": 160, "mlp.0.weight": 51}
    standalone = SparseEmbedding(50, 8, 0.4)  # not a DSL target: a new mask, as documented
    kept = standalone.positions.clone()
    standalone.reset_parameters()
    assert not torch.equal(standalone.positions, kept)


class _WritesWeights(_Custom):
    """A model whose reset_parameters() initialises a table and a linear layer by writing into their
    weights (PyG's LightGCN: xavier_uniform_(self.embedding.weight)), after the layer's own reset."""

    fail = False

    def reset_parameters(self):
        if not self.fail:
            self.emb.reset_parameters()  # drawn over by the write below
        nn.init.xavier_uniform_(self.emb.weight)
        nn.init.constant_(self.mlp[0].weight, 0.5)
        if self.fail:
            raise RuntimeError("a failed reset")


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_reset_parameters_writing_into_a_sparse_weight_draws_its_active_values(backend):
    # under the sparse backends the write went into a dense copy and changed nothing, silently
    torch.manual_seed(0)
    model = _WritesWeights()
    dsl = DynamicSparseLearning(
        model, 0.6, total_steps=10, targets=["tables", r"mlp\.0\.weight"], backend=backend
    )
    active = [model.emb.weight != 0, model.mlp[0].weight != 0]
    counts = dsl.active_counts()
    torch.manual_seed(1)
    model.reset_parameters()
    torch.manual_seed(1)
    nn.Embedding(50, 8)  # the table's own reset draws as nn.Embedding's does, before the write
    expected = nn.init.xavier_uniform_(torch.empty(50, 8))
    assert torch.equal(model.emb.weight.detach(), expected * active[0])
    assert torch.equal(model.mlp[0].weight.detach(), 0.5 * active[1])
    assert dsl.active_counts() == counts
    before = model.emb.weight.detach().clone()
    model.fail = True
    with pytest.raises(RuntimeError, match="a failed reset"):
        model.reset_parameters()
    if backend != "masked":  # a sparse table keeps nothing of a reset that failed
        assert torch.equal(model.emb.weight, before)
        nn.init.zeros_(model.emb.weight)  # outside a reset, writing into the dense view changes nothing
        assert torch.equal(model.emb.weight, before)


def _order_run(small_data, backend, order, steps=6, zero_grad="start"):
    """LightGCN under DSL (ΔT = 5) with the calls of an iteration in ``order``; returns the model,
    the controller and the positions of each step."""
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=8)
    dsl = DynamicSparseLearning(model, 0.8, total_steps=steps, update_interval=5, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    adj = propagation_graph(small_data)
    g = torch.Generator().manual_seed(0)
    positions = []
    for _ in range(steps):
        users, pos, neg = (torch.randint(n, (32,), generator=g) for n in (30, 40, 40))
        if zero_grad == "start":
            optimizer.zero_grad()
        model.loss(adj, users, pos, neg).backward()
        if order == "dsl_first":
            dsl.step()
            optimizer.step()
        else:
            optimizer.step()
            if zero_grad != "start":  # the user zeroes right after the optimizer's step
                optimizer.zero_grad(set_to_none=zero_grad == "none")
            if order == "documented":
                dsl.step()
        positions.append(dsl.targets[0].active_positions().clone())
    return model, dsl, positions


@pytest.mark.parametrize("order", ["dsl_first", "forgotten"])
def test_masked_weights_stay_zero_whatever_the_call_order(small_data, order):
    """A masked table's dense gradient reaches inactive weights: the re-mask runs after every
    optimizer step, not only in dsl.step() (before, both orders trained the whole table)."""
    if order == "forgotten":
        with pytest.warns(UserWarning, match="stepped twice without a dsl.step"):
            model, dsl, _ = _order_run(small_data, "masked", order)
    else:
        model, dsl, _ = _order_run(small_data, "masked", order)
    weight = model.embedding.weight
    assert int((weight != 0).sum()) <= dsl.active_counts()["embedding"]
    assert not weight[~model.embedding.weight_mask].any()


def test_dsl_stepped_once_an_epoch_warns_that_it_counts_its_own_steps():
    """dsl.step() once an epoch, after many optimizer steps, counted one iteration per epoch: the masks
    were updated far less often than update_interval asks (here never), without a word."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=40, update_interval=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    with pytest.warns(UserWarning, match="stepped twice without a dsl.step.*not once an epoch"):
        for _ in range(4):  # epochs of 10 batches
            for _ in range(10):
                optimizer.zero_grad()
                model(torch.randint(50, (16,))).pow(2).mean().backward()
                optimizer.step()
            dsl.step()
    assert dsl.iteration == 4 and not dsl.updates


def test_a_resume_that_loads_the_optimizer_but_not_the_controller_warns():
    """The optimizer's state was loaded, the controller's was not: DSL restarted ρ_t and its update times
    from iteration 0 without a word. Loaded too, and in a fresh run, it says nothing."""
    model, dsl = _seeded_custom()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    assert _warned_in_custom_steps(model, dsl, optimizer, 6) == ""
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict(), dsl.state_dict()))
    for load_controller in (False, True):
        model, dsl = _seeded_custom()
        model.load_state_dict(saved[0])
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        optimizer.load_state_dict(saved[1])
        dsl.attach(optimizer)
        if load_controller:
            dsl.load_state_dict(saved[2])
        warned = _warned_in_custom_steps(model, dsl, optimizer, 2)
        assert ("attached optimizer at step 7" in warned) != load_controller, warned


def test_an_optimizer_one_step_ahead_of_a_fresh_controller_is_said_to_be_resumed():
    """The least resume the check sees: an optimizer that stepped once before it was attached, at the
    controller's first step (its second step, one more than the controller has seen)."""
    model, dsl = _seeded_custom()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randint(50, (16,))).pow(2).mean().backward()
    optimizer.step()  # a run's first iteration, whose controller state is not loaded
    optimizer.zero_grad()
    dsl.attach(optimizer)
    assert "attached optimizer at step 2" in _warned_in_custom_steps(model, dsl, optimizer, 1)


def test_a_controller_resumed_after_an_interrupted_iteration_counts_its_steps_afresh():
    """Interrupted between optimizer.step() and dsl.step() (Ctrl-C in a notebook) and resumed in the same
    process (Trainer.fit(resume=True)), the controller warned at its first step that the optimizer "stepped
    twice without a dsl.step() between": the interrupted iteration's step was still counted."""
    model, dsl = _seeded_custom()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    assert _warned_in_custom_steps(model, dsl, optimizer, 2) == ""
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict(), dsl.state_dict()))
    model(torch.randint(50, (16,))).pow(2).mean().backward()
    optimizer.step()  # interrupted here, before dsl.step()
    model.load_state_dict(saved[0])
    optimizer.load_state_dict(saved[1])
    dsl.load_state_dict(saved[2])
    assert _warned_in_custom_steps(model, dsl, optimizer, 4) == ""
    assert dsl.iteration == 6 and [update["iteration"] for update in dsl.updates] == [4]


class _Subclassed(torch.optim.SGD):
    """An optimizer of one's own whose step calls its parent's."""

    def step(self, closure=None):
        return super().step(closure)


def test_a_subclassed_optimizer_step_counts_once():
    """torch runs the step hooks of both the subclass's step and the parent's it calls, once it has
    wrapped the parent's (an instance of it made before): one step, not two."""
    torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1)  # wraps SGD.step with its hooks
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=6, update_interval=2, backend="masked")
    optimizer = _Subclassed(model.parameters(), lr=0.1)
    dsl.attach(optimizer)
    assert _warned_in_custom_steps(model, dsl, optimizer, 6) == ""
    assert len(dsl.updates) == 3


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_grown_entries_start_at_zero_when_dsl_steps_before_the_optimizer(small_data, backend):
    """The slot of a grown entry held the pruned weight's gradient (a masked table's dense gradient,
    the one that grew it); an optimizer step after the update applied it to the grown weight."""
    model, dsl, positions = _order_run(small_data, backend, "dsl_first", steps=5)
    grown = positions[-1][~torch.isin(positions[-1], positions[-2])]
    assert grown.numel()
    assert not model.embedding.to_dense().detach().reshape(-1)[grown].any()


@pytest.mark.parametrize("zero_grad", ["none", "zeros"])
def test_masked_growth_does_not_read_a_gradient_zeroed_before_dsl_step(small_data, zero_grad):
    """zero_grad() between optimizer.step() and dsl.step() left .grad None (an error) or zero
    (growth by zero scores, silently); the gradient is now recorded during backward."""
    _, _, expected = _order_run(small_data, "masked", "documented")
    _, dsl, positions = _order_run(small_data, "masked", "documented", zero_grad=zero_grad)
    assert len(dsl.updates) == 1
    assert torch.equal(positions[-1], expected[-1])


def test_missing_attach_fails_at_the_first_step():
    """Without attach(), the default optimizer_state='reset' failed only at the first update, ΔT
    (3000 by default) iterations into training."""
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10_000)
    model(torch.arange(4)).sum().backward()
    with pytest.raises(RuntimeError, match="no optimizer is attached"):
        dsl.step()


def test_keep_without_attach_fails_at_the_first_step():
    """optimizer_state='keep' ran without attach(), so nothing refused an optimizer made before the
    controller: it trained the replaced dense table and the sparse one never trained, silently (the
    error of the 'reset' case even suggested 'keep' as the way out)."""
    model = _Custom()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)  # before the controller: stale
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=5, optimizer_state="keep")
    model(torch.arange(4)).sum().backward()
    optimizer.step()
    with pytest.raises(RuntimeError, match=r"no optimizer is attached: create it after"):
        dsl.step()


@pytest.mark.parametrize("resumed", [False, True])
def test_missing_attach_fails_in_a_run_without_updates(resumed):
    """The first step checked attach() only when an update was to come: with ΔT past the run's length
    (the default 3000 on a small dataset), or a run resumed at its last iteration, an optimizer made
    before the controller trained the replaced dense table and the sparse one never trained, silently."""
    model = _Custom()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)  # before the controller: stale
    dsl = DynamicSparseLearning(model, 0.5, total_steps=100, update_interval=3000 if not resumed else 10)
    if resumed:
        dsl.load_state_dict({**dsl.state_dict(), "iteration": 100})
    model(torch.arange(4)).sum().backward()
    optimizer.step()
    with pytest.raises(RuntimeError, match="no optimizer is attached"):
        dsl.step()


def test_an_optimizer_that_was_not_attached_is_masked_after_and_named():
    """A second optimizer (a new learning-rate phase) stepped without attach(): its dense steps left
    masked weights active until the next update, and DSL reset the state of grown entries in the
    first optimizer, silently."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=20, update_interval=3, backend="masked")
    dsl.attach(torch.optim.Adam(model.parameters(), lr=0.01))
    second = torch.optim.Adam(model.parameters(), lr=0.01)
    with pytest.warns(UserWarning, match=r"has not stepped since the last update \(iteration 3\)"):
        for _ in _custom_steps(model, dsl, second, 3):
            assert not model.emb.weight[~model.emb.weight_mask].any()
    dsl.attach(second)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in _custom_steps(model, dsl, second, 3):
            pass


def test_an_optimizer_not_attached_mid_interval_is_named_at_the_skipped_update():
    """A second optimizer created between two updates (the first one had stepped since the last): the
    first warning, that the update was skipped, spoke of a GradScaler and of calling dsl.step() once,
    not of the optimizer left unattached."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=20, update_interval=4, backend="masked")
    dsl.attach(torch.optim.Adam(model.parameters(), lr=0.01))
    for _ in _custom_steps(model, dsl, dsl.optimizer, 2):
        pass
    second = torch.optim.Adam(model.parameters(), lr=0.01)
    warned = _warned_in_custom_steps(model, dsl, second, 2)
    assert "skipped its update at iteration 4" in warned
    assert "dsl.attach() an optimizer created later" in warned


def test_dsl_stepped_after_each_backward_of_an_accumulated_gradient_says_how_to_call_it():
    """Stepped after each of an accumulated gradient's backward passes, DSL counts them as iterations, and
    skips the updates that fall where the optimizer did not step: the warning spoke of a GradScaler alone."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    optimizer.zero_grad()
    model(torch.randint(50, (16,))).pow(2).mean().backward()
    dsl.step()
    message = r"skipped its update at iteration 2.*once after each optimizer\.step"
    with pytest.warns(UserWarning, match=message):
        model(torch.randint(50, (16,))).pow(2).mean().backward()
        dsl.step()
    optimizer.step()


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_an_update_at_a_step_a_grad_scaler_skipped_is_skipped(backend, fused):
    """A GradScaler skips the optimizer step of an iteration whose gradients overflowed: DSL's update at
    that iteration ranked the inf gradients and failed with a FloatingPointError saying that training
    had diverged, ending a run that the scaler was built to carry on. A fused Adam (make_adam's) is
    stepped all the same, told by the scaler to skip (its found_inf): the update failed there still."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=3, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, fused=fused)
    dsl.attach(optimizer)
    scaler = torch.amp.GradScaler("cpu")
    counts = dsl.active_counts()
    for iteration in range(1, 7):
        optimizer.zero_grad()
        loss = model(torch.randint(50, (16,))).pow(2).mean()
        scaler.scale(loss * (float("inf") if iteration == 3 else 1)).backward()
        scaler.step(optimizer)  # skipped at iteration 3
        scaler.update()
        if iteration == 3:
            with pytest.warns(UserWarning, match="DSL skipped its update at iteration 3"):
                dsl.step()
        else:
            dsl.step()
        assert dsl.active_counts() == counts
    assert [record["iteration"] for record in dsl.updates] == [6]


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_dense_state_dict_loads_into_the_model_built_without_dsl(backend):
    """A DSL-trained model's state holds values and positions (or masks) where its own class has a
    dense weight: serving it with that class meant rebuilding every table and layer by hand."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=10, update_interval=2, targets=["tables", r"mlp\..*"], backend=backend
    )
    dsl.attach(torch.optim.Adam(model.parameters(), lr=0.01))
    for _ in _custom_steps(model, dsl, dsl.optimizer, 3):
        pass
    plain = _Custom()
    plain.load_state_dict(dsl.dense_state_dict())  # strict: the keys are the dense model's
    assert torch.equal(plain.emb.weight, model.emb.weight)
    assert torch.equal(plain.mlp[0].weight, model.mlp[0].weight)
    assert int(plain.emb.weight.count_nonzero()) <= dsl.active_counts()["emb"]  # grown ones may be 0
    index = torch.arange(50)
    torch.testing.assert_close(plain(index), model(index))


@pytest.mark.parametrize("copy_with", ["pickle", "deepcopy"])
@pytest.mark.filterwarnings("error:the optimizer attached to DSL")
def test_a_copied_controller_trains_its_copy_through_an_update(copy_with):
    """Pickling an attached controller failed on its optimizer hook's lambda, and a deep copy's
    optimizer (torch's pickle no hooks) stepped unseen: masked weights stayed active until step()
    and the update warned that the optimizer had not stepped. Copied between the step before an
    update and that update, a masked target had lost its gradient probe and the update failed."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=2, backend="masked")
    dsl.attach(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    next(_custom_steps(model, dsl, dsl.optimizer, 1))  # the next iteration updates
    copied = pickle.loads(pickle.dumps(dsl)) if copy_with == "pickle" else copy.deepcopy(dsl)
    model, optimizer = copied.model, copied.optimizer
    model(torch.randint(50, (16,))).pow(2).mean().backward()
    optimizer.step()
    assert not model.emb.weight[~model.emb.weight_mask].any()  # re-masked by the optimizer's step
    copied.step()
    assert copied.updates[-1]["changed"]["emb"] > 0
    assert dsl.iteration == 1 and not dsl.updates  # the original is left as it was


def test_a_controller_copied_before_attach_trains_its_copy():
    """A copy made before an optimizer is attached hooks the optimizer attached to it later, and records
    the growth gradient of its own model's masked weights."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=2, backend="masked")
    copied = copy.deepcopy(dsl)
    copied.attach(torch.optim.Adam(copied.model.parameters(), lr=0.1))
    for _ in _custom_steps(copied.model, copied, copied.optimizer, 2):
        emb = copied.model.emb
        assert not emb.weight[~emb.weight_mask].any()  # re-masked after each optimizer step
    assert copied.updates[-1]["changed"]["emb"] > 0
    assert dsl.optimizer is None and dsl.iteration == 0  # the original is left as it was


def test_a_model_is_sparsified_once():
    model = _Custom()
    DynamicSparseLearning(model, 0.5, total_steps=10)
    with pytest.raises(ValueError, match="'emb' is already a sparse table"):
        DynamicSparseLearning(model, 0.5, total_steps=10, seed=1)
    masked = _Custom()  # a second masked controller kept the first's masks, ignoring its own sparsity
    DynamicSparseLearning(masked, 0.5, total_steps=10, backend="masked")
    with pytest.raises(ValueError, match="'emb.weight' is already masked"):
        DynamicSparseLearning(masked, 0.8, total_steps=10, backend="masked")
    # a regular expression reaching a SparseLinear's values masked them, sparsifying the layer twice
    layered = _Custom()
    DynamicSparseLearning(layered, 0.5, total_steps=10, targets=r"mlp\.0\.weight")
    with pytest.raises(ValueError, match="'mlp.0.sparse_weight' is already a sparse table"):
        DynamicSparseLearning(layered, 0.5, total_steps=10, targets=r"mlp\..*")


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_a_model_saved_whole_given_a_controller_again_is_told_how_to_train_on(backend):
    """A model saved whole (torch.save(model)) keeps its sparse tables or masks, not its controller: the
    refusal of a new one said "one controller per model", and not how to go on training it with DSL."""
    model = _Custom()
    DynamicSparseLearning(model, 0.5, total_steps=10, backend=backend)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with pytest.raises(ValueError, match=r"already .*saved whole .*load the saved model's state_dict\(\)"):
        DynamicSparseLearning(loaded, 0.5, total_steps=10, backend=backend)
    fresh = _Custom()
    DynamicSparseLearning(fresh, 0.5, total_steps=10, backend=backend, seed=1)
    fresh.load_state_dict(loaded.state_dict())
    assert torch.equal(fresh.emb.weight, loaded.emb.weight)  # the way the message gives


class _Kernel(nn.Module):
    """A 4-D weight, as a convolution kernel, read elementwise (the same gradient in any memory format)."""

    def __init__(self):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(4, 3, 2, 2))

    def forward(self, x):
        return (self.kernel * x).pow(2).sum()


@pytest.mark.parametrize("growth, make", [("gradient", "adam"), ("random", "asgd"), ("momentum", "sgd")])
def test_a_channels_last_target_trains_as_a_contiguous_one(growth, make):
    """A masked target in channels_last memory format (model.to(memory_format=torch.channels_last), before
    or after the controller: the mask follows) failed its first update in view(-1)."""
    optimizers = {
        "adam": lambda params: torch.optim.Adam(params, lr=0.1),
        "asgd": lambda params: torch.optim.ASGD(params, lr=0.1),  # a state read from the parameter
        "sgd": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    }
    runs = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        model = _Kernel()
        dsl = DynamicSparseLearning(
            model, 0.5, total_steps=8, update_interval=2, targets="kernel", growth=growth, backend="masked"
        )
        if channels_last:
            model.to(memory_format=torch.channels_last)
            assert not model.kernel.is_contiguous() and not model.kernel_mask.is_contiguous()
        optimizer = optimizers[make](model.parameters())
        dsl.attach(optimizer)
        x = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(1))
        for _ in range(8):
            optimizer.zero_grad()
            model(x).backward()
            optimizer.step()
            dsl.step()
        runs.append((model.kernel.detach().contiguous(), model.kernel_mask.contiguous()))
        assert not model.kernel[~model.kernel_mask].any() and int(model.kernel_mask.sum()) == 24
    assert torch.equal(runs[0][1], runs[1][1])
    torch.testing.assert_close(runs[0][0], runs[1][0])


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_reset_restarts_adagrad_at_its_initial_accumulator(backend):
    """RigL's reset zeroed every state, Adagrad's sum of squares too, whose start is not 0."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=3, backend=backend)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.01, initial_accumulator_value=0.25)
    dsl.attach(optimizer)
    before = dsl.targets[0].active_positions().clone()
    for _ in _custom_steps(model, dsl, optimizer, 3):
        pass
    after = dsl.targets[0].active_positions()
    params, _ = dsl.targets[0].storage()
    accumulator = optimizer.state[params[0]]["sum"].view(-1)
    # the sparse table's state is per slot (slots whose position changed), the masked one's per position
    grown = (after != before).nonzero() if backend == "sparse" else after[~torch.isin(after, before)]
    assert grown.numel() > 0
    assert torch.equal(accumulator[grown], torch.full_like(accumulator[grown], 0.25))


def _grown_after_first_update(model, dsl, optimizer, backend):
    """Three steps of ``_Custom`` (the first update) and the flat storage indices of the grown entries:
    slots whose position changed for a sparse table, the new positions for a masked one."""
    before = dsl.targets[0].active_positions().clone()
    for _ in _custom_steps(model, dsl, optimizer, 3):
        pass
    after = dsl.targets[0].active_positions()
    grown = (
        (after != before).nonzero().squeeze(1) if backend == "sparse" else after[~torch.isin(after, before)]
    )
    assert grown.numel() > 0
    (param,), _ = dsl.targets[0].storage()
    return param, grown


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_reset_restarts_rprop_step_sizes_at_the_learning_rate(backend):
    """Rprop's step size was zeroed with the moments: clamped to its 1e-6 floor, a grown entry barely
    moved, where a fresh one moves by lr at its first step."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=3, backend=backend)
    optimizer = torch.optim.Rprop(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    param, grown = _grown_after_first_update(model, dsl, optimizer, backend)
    state = optimizer.state[param]
    assert torch.equal(state["step_size"].view(-1)[grown], torch.full((grown.numel(),), 0.01))
    assert not state["prev"].view(-1)[grown].any()
    optimizer.zero_grad()
    model(torch.arange(50)).pow(2).mean().backward()  # every row: every grown entry has a gradient
    optimizer.step()
    dsl.step()  # iteration 4, no update
    moving = param.grad.view(-1)[grown] != 0
    assert moving.sum() > 0
    step = param.detach().view(-1)[grown][moving].abs()  # the entries were 0
    assert torch.allclose(step, torch.full_like(step, 0.01))


def test_reset_restarts_asgd_average_at_the_parameter():
    """ASGD's ``ax`` averages the parameter: it restarts at the parameter's value, not at 0."""
    param = nn.Parameter(torch.arange(1.0, 7.0))
    optimizer = torch.optim.ASGD([param], lr=0.1, t0=0)
    param.grad = torch.ones(6)
    optimizer.step()
    state = optimizer.state[param]
    eta, mu = state["eta"].clone(), state["mu"].clone()
    _reset_state(optimizer, param, torch.tensor([1, 4]))
    assert torch.equal(state["ax"][[1, 4]], param.detach()[[1, 4]])
    assert torch.equal(state["eta"], eta) and torch.equal(state["mu"], mu)  # scalars, left alone


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True),
        lambda p: torch.optim.AdamW(p, lr=0.01),
        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
        lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9, centered=True),
        lambda p: torch.optim.Adadelta(p),
        lambda p: torch.optim.Adamax(p),
        lambda p: torch.optim.NAdam(p),
        lambda p: torch.optim.RAdam(p),
        lambda p: torch.optim.ASGD(p, lr=0.01, t0=0),
        lambda p: torch.optim.Rprop(p, lr=0.01),
        lambda p: torch.optim.Adafactor(p),  # factored row_var / col_var: not per element, left alone
    ],
    ids=[
        "adam-amsgrad", "adamw", "sgd", "rmsprop", "adadelta", "adamax", "nadam", "radam", "asgd", "rprop",
        "adafactor",
    ],
)  # fmt: skip
def test_reset_knows_the_states_of_torch_optimizers(make, caplog):
    """Every per-element state of torch's optimizers restarts without the unknown-state warning; moments
    restart at 0 (Adam's unchanged: exp_avg, exp_avg_sq and max_exp_avg_sq)."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=3, backend="masked")
    optimizer = make(model.parameters())
    dsl.attach(optimizer)
    with caplog.at_level("WARNING", logger="dslgraph.sparse.dsl"):
        param, grown = _grown_after_first_update(model, dsl, optimizer, "masked")
    assert "does not know" not in caplog.text
    for key, value in optimizer.state[param].items():
        if key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "grad_avg",
                   "acc_delta", "exp_inf", "prev", "ax"):  # fmt: skip
            assert not value.view(-1)[grown].any(), key  # ASGD's ax: the grown entries' value, 0


class _Traced(torch.optim.SGD):
    """SGD with a per-element state of its own, which starts at 1."""

    def step(self, closure=None):
        loss = super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p].setdefault("trace", torch.ones_like(p))
        return loss


def test_reset_warns_once_of_a_state_it_does_not_know(caplog, monkeypatch):
    """An unknown per-element state was zeroed silently: it still is zeroed, but named once."""
    monkeypatch.setattr("dslgraph.sparse.dsl._warned_states", set(), raising=False)
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=3, backend="masked")
    optimizer = _Traced(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    with caplog.at_level("WARNING", logger="dslgraph.sparse.dsl"):
        param, grown = _grown_after_first_update(model, dsl, optimizer, "masked")
        trace = optimizer.state[param]["trace"].view(-1)
        assert not trace[grown].any() and trace.sum() == trace.numel() - grown.numel()
        for _ in _custom_steps(model, dsl, optimizer, 3):  # a second update warns no more
            pass
    assert len(dsl.updates) == 2
    warned = [r.getMessage() for r in caplog.records if "does not know" in r.getMessage()]
    assert len(warned) == 1 and "_Traced's state 'trace'" in warned[0]


class _Tied(nn.Module):
    """A table whose weight is also the output layer's (weight tying)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.out = nn.Linear(8, 50, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, index):
        return self.out(self.emb(index))


class _SharedTable(nn.Module):
    """One table for users and items, registered under both names."""

    def __init__(self):
        super().__init__()
        self.user = nn.Embedding(50, 8)
        self.item = self.user


@pytest.mark.parametrize("model", [_Tied, _SharedTable])
def test_a_shared_weight_is_refused_where_a_sparse_module_would_untie_it(model):
    """The sparse table replaced one module; the other kept training the dense weight, untied, silently."""
    with pytest.raises(ValueError, match=r"'(emb|user)\.weight' is shared as .*backend='masked'"):
        DynamicSparseLearning(model(), 0.5, total_steps=10)
    tied = _Tied()
    DynamicSparseLearning(tied, 0.5, total_steps=10, backend="masked")  # masked in place: still tied
    assert tied.out.weight is tied.emb.weight and int((tied.emb.weight != 0).sum()) == 200


@pytest.mark.parametrize("backend", ["sparse", "masked"])
@pytest.mark.parametrize("target", ["tables", r"mlp\.0\.weight", r"mlp\.0\.bias"])
def test_a_frozen_target_is_refused(backend, target):
    """A frozen table became a trainable sparse one (sparse backend) or failed registering a hook."""
    model = _Custom()
    model.requires_grad_(False)
    with pytest.raises(ValueError, match=r"'(emb|mlp\.0)\.(weight|bias)' is frozen"):
        DynamicSparseLearning(model, 0.5, total_steps=10, targets=target, backend=backend)


@pytest.mark.parametrize("model,target", [(nn.Embedding(10, 4), "tables"), (nn.Linear(10, 4), "weight")])
def test_a_model_that_is_itself_the_replaced_module_is_refused(model, target):
    """The sparse module was added as a child named '' while the model trained its dense weight."""
    with pytest.raises(ValueError, match=f"the model is itself the {type(model).__name__}"):
        DynamicSparseLearning(model, 0.5, total_steps=10, targets=target)
    DynamicSparseLearning(nn.Sequential(model), 0.5, total_steps=10, targets=r"0\.weight")


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_a_target_the_update_iteration_did_not_use_is_named(backend):
    """A sparse table failed with 'set probing=True before the backward pass', naming no table."""
    model = _DotModel()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=1, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    model.user(torch.arange(5)).sum().backward()  # the item table takes no part
    optimizer.step()
    with pytest.raises(RuntimeError, match="'item' received no gradient before the DSL update step"):
        dsl.step()


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_an_update_called_where_no_gradient_was_recorded_says_so(backend):
    """dsl.update() called by a loop of one's own (at an epoch's end) failed saying that the loss did not use
    the table, which it had: the gradient is recorded only on the iteration before one of step()'s updates."""
    model = _DotModel()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=5, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    (model.user(torch.arange(5)) * model.item(torch.arange(5))).sum().backward()
    optimizer.step()
    with pytest.raises(RuntimeError, match=r"dsl.update\(\) at iteration 0 has no gradient to grow by"):
        dsl.update()
    # after the step before an update, which arms the recording for the next iteration: the same words
    # (not "'user' received no gradient", which blamed the loss)
    for _ in range(4):
        dsl.step()
    with pytest.raises(RuntimeError, match=r"dsl.update\(\) at iteration 4 has no gradient to grow by"):
        dsl.update()
    counts = dsl.active_counts()
    random = DynamicSparseLearning(_DotModel(), 0.5, total_steps=10, update_interval=5, growth="random")
    random.attach(torch.optim.Adam(random.model.parameters(), lr=0.01)).update()  # needs no gradient
    assert random.active_counts() == counts and random.updates[0]["changed"] == {"user": 100, "item": 40}


class _ScaledSequence(nn.Module):
    """SASRec's way with its item table: a sequence's rows scaled in place, the target's row read plain."""

    def __init__(self):
        super().__init__()
        self.item = nn.Embedding(20, 8)

    def forward(self, sequence, target):
        rows = self.item(sequence)
        rows *= 8**0.5
        return (rows.mean(1) * self.item(target)).sum(-1)


def test_a_table_whose_rows_are_scaled_in_place_grows_as_under_the_masked_backend():
    """The sparse table recorded no gradient of rows its caller changed in place: growth ranked by the
    target rows' gradient alone, and grew other entries than the masked backend, silently."""
    grown = []
    for backend in ("sparse", "masked"):
        torch.manual_seed(0)
        model = _ScaledSequence()
        dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=2, backend=backend)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        dsl.attach(optimizer)
        g = torch.Generator().manual_seed(0)
        for _ in range(4):
            sequence, target = torch.randint(20, (6, 5), generator=g), torch.randint(20, (6,), generator=g)
            optimizer.zero_grad()
            (model(sequence, target) - 1).pow(2).mean().backward()
            optimizer.step()
            dsl.step()
        grown.append(dsl.targets[0].active_positions().sort().values)
    assert torch.equal(*grown)


class _TiedTables(nn.Module):
    """Two tables holding one weight."""

    def __init__(self):
        super().__init__()
        self.user, self.item = nn.Embedding(50, 8), nn.Embedding(50, 8)
        self.item.weight = self.user.weight


class _OutputFirst(nn.Module):
    """An output layer registered before the table whose weight it shares."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(8, 50, bias=False)
        self.emb = nn.Embedding(50, 8)
        self.emb.weight = self.out.weight


@pytest.mark.parametrize(
    "model,targets", [(_TiedTables, "tables"), (_OutputFirst, ["tables", r"out\.weight"])]
)
def test_a_tied_weight_selected_twice_is_masked_once(model, targets):
    """Each name got a mask of its own: the weight kept only the entries both masks left active
    (about 100 of 200) while the controller counted 400."""
    tied = model()
    dsl = DynamicSparseLearning(tied, 0.5, total_steps=10, targets=targets, backend="masked")
    assert len(dsl.targets) == 1 and sum(dsl.active_counts().values()) == 200
    assert int((tied.get_parameter(next(n for n, _ in tied.named_parameters())) != 0).sum()) == 200


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_a_tied_weight_named_by_its_second_name_is_a_target(backend):
    """r"out\\.weight" of a weight tied to emb.weight matched no parameter, in a list of parameters
    that left out.weight out."""
    tied = _Tied()
    if backend == "sparse":
        with pytest.raises(ValueError, match=r"'out\.weight' is shared as \['emb\.weight', 'out\.weight'\]"):
            DynamicSparseLearning(tied, 0.5, total_steps=10, targets=r"out\.weight")
        return
    dsl = DynamicSparseLearning(tied, 0.5, total_steps=10, targets=r"out\.weight", backend=backend)
    assert dsl.active_counts() == {"out.weight": 200}
    assert tied.out.weight is tied.emb.weight and int((tied.emb.weight != 0).sum()) == 200


def test_a_dense_state_loaded_loosely_into_a_tied_masked_model_is_masked():
    """The table's module masked the weight after its own load; the output layer tied to it then loaded
    the dense weight again, active at every entry until the next optimizer step."""
    torch.manual_seed(0)
    dense = _Tied()
    tied = _Tied()
    dsl = DynamicSparseLearning(tied, 0.5, total_steps=10, backend="masked")
    tied.load_state_dict(dense.state_dict(), strict=False)
    assert tied.out.weight is tied.emb.weight
    torch.testing.assert_close(tied.emb.weight, dense.emb.weight * tied.emb.weight_mask)
    assert dsl.active_counts() == {"emb": 200}


def test_a_refused_embedding_leaves_the_model_as_it_was():
    """The first table was already replaced by a sparse one when the second was refused."""
    model = nn.Sequential(nn.Embedding(10, 4), nn.Embedding(10, 4, padding_idx=0))
    with pytest.raises(ValueError, match="'1' is an nn.Embedding with padding_idx"):
        DynamicSparseLearning(model, 0.5, total_steps=10)
    assert type(model[0]) is nn.Embedding


class _ScaledLinear(nn.Linear):
    def forward(self, x):
        return super().forward(x) * 10


class _ScaledEmbedding(nn.Embedding):
    def forward(self, index):
        return super().forward(index) * 10


class _CalledEmbedding(nn.Embedding):
    """Its own ``__call__``, not ``forward``: what nn.Module calls is the subclass's."""

    def __call__(self, index):
        return super().__call__(index) * 10


class _DelegatingLinear(nn.Linear):
    def __getattr__(self, name):
        return name if name == "role" else super().__getattr__(name)


class _XavierLinear(nn.Linear):
    def reset_parameters(self):
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)


class _XavierEmbedding(nn.Embedding):
    def reset_parameters(self):
        nn.init.xavier_uniform_(self.weight)


class _XavierTable(DenseEmbedding):
    def reset_parameters(self):
        nn.init.xavier_uniform_(self.weight)


class _ModuloTable(EmbeddingTable):
    """A table of one's own behind the seam, whose rows are shared (id modulo 3)."""

    def __init__(self, num_embeddings, embedding_dim):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = nn.Parameter(torch.randn(num_embeddings, embedding_dim))

    def forward(self, index):
        return self.weight[index % 3]


class _LoRALinear(nn.Linear):
    """A low-rank update beside the weight, as LoRA adds one."""

    def __init__(self, in_features, out_features, rank=2):
        super().__init__(in_features, out_features)
        self.lora_a = nn.Parameter(torch.randn(rank, in_features))
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank))

    def forward(self, x):
        return super().forward(x) + x @ self.lora_a.t() @ self.lora_b.t()


class _PenalisedLinear(nn.Linear):
    def penalty(self):
        return self.weight.abs().sum()


class _TaggedLinear(nn.Linear):
    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features)
        self.tag = "encoder"


class _NoBiasLinear(nn.Linear):
    """A constructor of its own alone: a SparseLinear computes and holds what it does."""

    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features, bias=False)

    def extra_repr(self):
        return "no bias"


def _hooked(module, hook):
    getattr(module, hook)(lambda *args: None)
    return module


def _with(module, register, name, value):
    getattr(module, register)(name, value)
    return module


@pytest.mark.parametrize(
    "layer, target, message",
    [
        (lambda: _ScaledEmbedding(6, 4), "tables", "'0' is a _ScaledEmbedding with its own forward()"),
        (lambda: _ScaledLinear(6, 4), r"0\.weight", "'0' is a _ScaledLinear with its own forward()"),
        (
            lambda: _hooked(nn.Embedding(6, 4), "register_forward_pre_hook"),
            "tables",
            "'0' is an nn.Embedding with forward pre-hooks",
        ),
        (
            lambda: _hooked(nn.Linear(6, 4), "register_forward_hook"),
            r"0\.weight",
            "'0' is an nn.Linear with forward hooks, which a sparse linear layer",
        ),
        (lambda: _XavierLinear(6, 4), r"0\.weight", "'0' is a _XavierLinear with its own reset_parameters()"),
        (
            lambda: _XavierEmbedding(6, 4),
            "tables",
            "'0' is a _XavierEmbedding with its own reset_parameters()",
        ),
        (lambda: _XavierTable(6, 4), "tables", "'0' is a _XavierTable with its own reset_parameters()"),
        (
            lambda: _LoRALinear(6, 4),
            r"0\.weight",
            "'0' is a _LoRALinear with its own forward(), parameter 'lora_a', parameter 'lora_b', which a "
            "sparse linear layer in its place would drop",
        ),
        (lambda: _PenalisedLinear(6, 4), r"0\.weight", "'0' is a _PenalisedLinear with its own penalty()"),
        (lambda: _TaggedLinear(6, 4), r"0\.weight", "'0' is a _TaggedLinear with attribute 'tag'"),
        (lambda: _ModuloTable(6, 4), "tables", "'0' is a _ModuloTable with its own forward()"),
        (lambda: _CalledEmbedding(6, 4), "tables", "'0' is a _CalledEmbedding with its own __call__()"),
        (
            lambda: _DelegatingLinear(6, 4),
            r"0\.weight",
            "'0' is a _DelegatingLinear with its own __getattr__()",
        ),
        (
            lambda: _with(nn.Linear(6, 4), "register_buffer", "scale", torch.ones(4)),
            r"0\.weight",
            "'0' is an nn.Linear with buffer 'scale'",
        ),
        (
            lambda: _with(nn.Embedding(6, 4), "add_module", "norm", nn.LayerNorm(4)),
            "tables",
            "'0' is an nn.Embedding with submodule 'norm'",
        ),
        # named by the subclass torch's parametrization swaps in: "a ParametrizedLinear with its own
        # __getstate__(), its own __deepcopy__(), its own attribute 'bias', a parametrization"
        (
            lambda: nn.utils.parametrize.register_parametrization(nn.Linear(6, 4), "bias", _Double()),
            r"0\.weight",
            "'0' is an nn.Linear with a parametrization, which a sparse linear layer",
        ),
    ],
    ids=[
        "subclassed-table",
        "subclassed-linear",
        "table-pre-hook",
        "linear-hook",
        "linear-reset",
        "table-reset",
        "dense-table-reset",
        "lora-linear",
        "linear-method",
        "linear-attribute",
        "own-table",
        "table-call",
        "linear-getattr",
        "linear-buffer",
        "table-submodule",
        "linear-parametrized-bias",
    ],
)
@pytest.mark.parametrize("backend", ["sparse", "compact"])
def test_a_module_doing_more_than_a_lookup_or_product_is_not_replaced(layer, target, message, backend):
    """A subclass's own forward (or a hook) was dropped with the module DSL replaced: the model's
    output changed tenfold at sparsity 0, silently. So were a subclass's own reset_parameters (a
    model resetting its layers after the controller drew nn.Linear's numbers, not its own), its
    methods, and the parameters, buffers and attributes a module holds besides its weight and bias.
    The masked backend keeps the module."""
    torch.manual_seed(0)
    model = nn.Sequential(layer())
    index = torch.arange(6) if target == "tables" else torch.eye(6)
    before = model(index).detach()
    with pytest.raises(ValueError, match=re.escape(message) + r".*use backend='masked'"):
        DynamicSparseLearning(model, 0.0, total_steps=10, targets=target, backend=backend)
    kind = type(model[0])
    DynamicSparseLearning(model, 0.0, total_steps=10, targets=target, backend="masked")
    assert type(model[0]) is kind
    torch.testing.assert_close(model(index), before)


def test_a_masked_subclass_resets_by_its_own_reset_parameters():
    """What the sparse backends refuse: the masked backend runs the subclass's own initialisation
    and keeps its mask."""
    torch.manual_seed(0)
    model = nn.Sequential(_XavierLinear(6, 4))
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, targets=r"0\.weight", backend="masked")
    model[0].reset_parameters()
    assert torch.equal(model[0].bias, torch.zeros(4))  # nn.Linear's draws a bias in U(-1/sqrt(6), ..)
    assert (model[0].weight[~model[0].weight_mask] == 0).all()
    assert dsl.active_counts() == {"0.weight": 12}


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_a_reset_parameters_set_on_the_instance_is_the_one_run(backend):
    """A model's reset_parameters() set on the instance, not its class: DSL's reset runs it, its draws
    land at the active entries, and the mask stays."""
    model = _Custom()
    model.reset_parameters = lambda: nn.init.constant_(model.emb.weight, 2.0)
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, targets="tables", backend=backend)
    active = model.emb.weight.detach() != 0
    model.reset_parameters()
    weight = model.emb.weight.detach()
    assert torch.equal(weight != 0, active) and (weight[active] == 2.0).all()
    assert dsl.active_counts() == {"emb": 200}


def test_a_linear_subclass_with_only_a_constructor_of_its_own_is_replaced():
    """A subclass that sets nn.Linear's own arguments (and its repr) holds and computes what a
    SparseLinear does."""
    torch.manual_seed(0)
    model = nn.Sequential(_NoBiasLinear(6, 4))
    before = model(torch.eye(6)).detach()
    DynamicSparseLearning(model, 0.0, total_steps=10, targets=r"0\.weight")
    assert isinstance(model[0], SparseLinear) and model[0].bias is None
    torch.testing.assert_close(model(torch.eye(6)), before)


def test_a_linear_subclass_without_its_own_forward_is_still_replaced():
    """nn.MultiheadAttention's out_proj is an nn.Linear subclass that only marks it: it computes
    what a SparseLinear does."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.MultiheadAttention(4, 2))
    query = torch.randn(3, 1, 4)
    before = model[0](query, query, query)[0].detach()
    DynamicSparseLearning(model, 0.0, total_steps=10, targets=r"0\.out_proj\.weight")
    assert isinstance(model[0].out_proj, SparseLinear)
    torch.testing.assert_close(model[0](query, query, query)[0], before)


class _ListedLayers(nn.Module):
    """A model that calls its layers through a plain list, outside its module tree."""

    def __init__(self):
        super().__init__()
        self.emb, self.lin = nn.Embedding(6, 4), nn.Linear(4, 1)
        self.layers = [self.emb, self.lin]

    def forward(self, index):
        return self.layers[1](self.layers[0](index))


@pytest.mark.parametrize("target, name", [("tables", "emb"), (r"lin\.weight", "lin")])
def test_a_replaced_module_called_through_a_reference_fails_naming_it(target, name):
    """A model calling its table or layer through a plain list ran the replaced dense module, which
    the optimizer no longer held: nothing trained, silently (gradient growth failed ΔT iterations
    later, blaming the loss)."""
    model = _ListedLayers()
    DynamicSparseLearning(model, 0.5, total_steps=10, targets=target)
    with pytest.raises(
        RuntimeError, match=f"'{name}', which DynamicSparseLearning replaced .* model.{name} after"
    ):
        model(torch.arange(6))
    model.layers = [model.emb, model.lin]  # read after the controller
    model(torch.arange(6)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


class _ListedWeights(_ListedLayers):
    """A model that reads its layers' weights through a plain list, calling none of them."""

    def forward(self, index):
        emb, lin = self.layers
        return emb.weight[index] @ lin.weight.T


@pytest.mark.parametrize("target, name", [("tables", "emb"), (r"lin\.weight", "lin")])
def test_a_replaced_module_whose_weight_is_read_through_a_reference_fails_naming_it(target, name):
    """A replaced module whose weight a model reads through a plain list (torch.cat([t.weight for t in
    tables])) is not called: its weight took the gradient in the sparse module's place, and nothing trained,
    silently (gradient growth failed at its update, blaming the loss)."""
    model = _ListedWeights()
    DynamicSparseLearning(model, 0.5, total_steps=10, targets=target)
    out = model(torch.arange(6)).sum()
    message = f"'{name}', which .* replaced .* had its weight read .*model.{name} after"
    with pytest.raises(RuntimeError, match=message):
        out.backward()
    model.layers = [model.emb, model.lin]  # read after the controller
    model(torch.arange(6)).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p is not model.lin.bias)


class _Double(nn.Module):
    def forward(self, weight):
        return 2 * weight


@pytest.mark.parametrize(
    "compute, original",
    [
        (
            lambda table: nn.utils.parametrize.register_parametrization(table, "weight", _Double()),
            "0.parametrizations.weight.original",
        ),
        (lambda table: prune.identity(table, "weight"), "0.weight_orig"),
    ],
    ids=["parametrize", "prune"],
)
@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_a_computed_table_weight_is_refused_naming_its_original(compute, original, backend):
    """A table's parametrized (or pruned) weight is recomputed at every use: the sparse backend replaced
    the table and dropped the parametrization, silently; the masked one masked the recomputed tensor and
    then blamed the optimizer. Naming the original as a target masks what trains (it was a crash, or,
    for torch's pruning, the table replaced without its mask)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(6, 4))
    compute(model[0])
    with pytest.raises(ValueError, match=rf"'0\.weight' is computed .*\['{re.escape(original)}'\]"):
        DynamicSparseLearning(model, 0.5, total_steps=10, backend=backend)
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=4, update_interval=2, targets=re.escape(original), backend=backend
    )
    dsl.attach(torch.optim.Adam(model.parameters(), lr=0.1))
    for _ in range(4):
        dsl.optimizer.zero_grad()
        model(torch.arange(6)).pow(2).sum().backward()
        dsl.optimizer.step()
        dsl.step()
    assert int((model[0].weight != 0).sum()) == 12 == dsl.active_counts()[original]


def _sparse_gradient_embedding(make_optimizer, **options):
    """An nn.Embedding(sparse=True) under the masked backend (updates every 2 steps), the optimizer
    ``make_optimizer`` makes, attached, and a loss with a different gradient at each entry it uses."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(20, 4, sparse=True))
    dsl = DynamicSparseLearning(model, 0.5, total_steps=4, update_interval=2, backend="masked", **options)
    optimizer = make_optimizer(model.parameters())
    dsl.attach(optimizer)
    coefficient = torch.randperm(48).view(12, 4) + 1.0
    return model, dsl, optimizer, lambda: (model(torch.arange(12)) * coefficient).sum()


@pytest.mark.parametrize("growth", ["gradient", "momentum"])
def test_a_sparse_gradient_embedding_grows_under_the_masked_backend(growth):
    """nn.Embedding(sparse=True) sends sparse gradients (and SGD keeps a sparse momentum): gradient and
    momentum growth failed reading them ('reshape is not implemented for sparse tensors'). The loss
    reaches inactive entries, so entries move and the reset restarts the sparse momentum at them."""
    model, dsl, optimizer, loss = _sparse_gradient_embedding(
        lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9), growth=growth
    )
    for _ in range(4):
        before = dsl.targets[0].active_positions()
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
        dsl.step()
        assert dsl.active_counts() == {"0": 40} and int((model[0].weight != 0).sum()) <= 40
        after = dsl.targets[0].active_positions()
        grown = after[~torch.isin(after, before)]
        momentum = optimizer.state[model[0].weight]["momentum_buffer"].to_dense().view(-1)
        assert not momentum[grown].any()
    assert len(dsl.updates) == 2 and all(u["changed"] for u in dsl.updates)
    assert grown.numel() > 0  # the last update moved entries


def test_grown_entries_of_a_sparse_gradient_embedding_start_at_zero_when_dsl_steps_first():
    """The masked backend zeroes the grown entries' gradient for an optimizer step after the update;
    nn.Embedding(sparse=True)'s gradient is sparse, and stays so for SparseAdam, which takes no other."""
    model, dsl, optimizer, loss = _sparse_gradient_embedding(lambda params: torch.optim.SparseAdam(params))
    for _ in range(2):
        before = dsl.targets[0].active_positions()
        optimizer.zero_grad()
        loss().backward()
        dsl.step()
        optimizer.step()
    after = dsl.targets[0].active_positions()
    grown = after[~torch.isin(after, before)]
    assert grown.numel() and model[0].weight.grad.is_sparse
    assert not model[0].weight.detach().view(-1)[grown].any()


def test_nesterov_momentum_of_a_sparse_gradient_embedding_stays_sparse_through_an_update():
    """The reset made SGD's sparse momentum dense, and Nesterov's next step failed inside torch with
    'add(sparse, dense) is not supported'."""
    model, dsl, optimizer, loss = _sparse_gradient_embedding(
        lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    )
    for _ in range(4):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
        dsl.step()
        assert not model[0].weight[~model[0].weight_mask].any()
    momentum = optimizer.state[model[0].weight]["momentum_buffer"]
    assert momentum.layout == torch.sparse_coo
    assert len(dsl.updates) == 2 and all(u["moved"]["0"] for u in dsl.updates)


@pytest.mark.parametrize(
    "make,holds",
    [
        (lambda p: torch.optim.Adagrad(p), r"Adagrad holds \['sum'\]"),
        (lambda p: torch.optim.SGD(p, lr=0.1), "SGD holds no per-entry state"),
    ],
    ids=["adagrad", "sgd-without-momentum"],
)
def test_momentum_growth_without_a_momentum_names_the_optimizer(make, holds):
    """It said the optimizer needed 'momentum state', naming neither the optimizer nor what would do."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=10, update_interval=3, growth="momentum", backend="masked"
    )
    optimizer = make(model.parameters())
    dsl.attach(optimizer)
    with pytest.raises(
        ValueError, match=f"momentum growth needs a momentum of 'emb': Adam's exp_avg .*{holds}"
    ):
        for _ in _custom_steps(model, dsl, optimizer, 3):
            pass


class _Stepper:
    """A wrapper that steps a torch optimizer (a Lookahead of one's own), not an Optimizer itself."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.param_groups, self.state = optimizer.param_groups, optimizer.state

    def step(self):
        self.optimizer.step()


@pytest.mark.parametrize(
    "make",
    [lambda o: torch.optim.lr_scheduler.StepLR(o, 1), _Stepper, lambda o: o.param_groups[0]["params"]],
    ids=["scheduler", "wrapper", "parameters"],
)
def test_attach_refuses_what_is_not_an_optimizer(make):
    """An AttributeError from inside attach(); a wrapper failed after the controller had taken it as its
    optimizer, whose steps were then never seen."""
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10)
    optimizer = torch.optim.Adam(model.parameters())
    with pytest.raises(TypeError, match="attach takes a torch.optim.Optimizer, got"):
        dsl.attach(make(optimizer))
    assert dsl.optimizer is None
    dsl.attach(optimizer)  # the optimizer the wrapper steps


@pytest.mark.parametrize("sparsity,active", [(0.0, 250), (0.5, 124)])
def test_erk_gives_a_scalar_parameter_its_entry(sparsity, active):
    """A 0-d parameter's ERK weight was (rows + cols) / numel = 0: at density 1 a division by zero,
    below it a budget of 0 that the count's minimum of one then exceeded."""
    model = nn.Module()
    model.a, model.s = nn.Parameter(torch.randn(10, 25)), nn.Parameter(torch.tensor(1.0))
    dsl = DynamicSparseLearning(model, sparsity, total_steps=10, targets=["a", "s"], distribution="erk")
    assert dsl.active_counts() == {"a": active, "s": 1}


@pytest.mark.parametrize(
    "setting", [{"update_interval": 2.5}, {"update_interval": True}, {"total_steps": 10.5}, {"t_end": 5.5},
                {"chunk_rows": 2.5}],
)  # fmt: skip
def test_non_integer_counts_fail_naming_the_setting(setting):
    """update_interval=2.5 passed the checks and updated every 5 iterations (True: every one)."""
    arguments = {"total_steps": 10, **setting}
    with pytest.raises(ValueError, match=f"{next(iter(setting))} must be an int"):
        DynamicSparseLearning(LightGCN(3, 4, embedding_dim=8), 0.5, **arguments)


def test_random_growth_finds_the_one_free_position():
    excluded = torch.cat([torch.arange(417), torch.arange(418, 1000)])
    generator = torch.Generator().manual_seed(0)
    assert _random_excluding(1000, excluded, 1, generator).tolist() == [417]


def test_random_growth_near_a_full_tensor_draws_from_the_free_positions(monkeypatch):
    """At density 0.999 the rejection loop ran thousands of rounds, each redrawing mostly excluded or
    already chosen positions (3 s here, minutes for a Gowalla table): past half the tensor it must not
    draw by rejection (``torch.randint``) at all."""
    generator = torch.Generator().manual_seed(0)
    excluded = torch.randperm(50_000, generator=generator)[:24_975].sort().values

    def rejection(*args, **kwargs):
        raise AssertionError("drew by rejection near a full tensor")

    monkeypatch.setattr(torch, "randint", rejection)
    grown = _random_excluding(50_000, excluded, 24_975, generator)
    assert grown.unique().numel() == 24_975 and not torch.isin(grown, excluded).any()


@pytest.mark.parametrize(
    # nothing excluded: every active entry pruned (rho0=1), by rejection and by permuting
    "numel,num_excluded,n",
    [(1000, 100, 50), (1000, 400, 300), (1000, 900, 90), (50, 0, 50), (1000, 0, 100)],
)
def test_random_growth_draws_distinct_free_positions(numel, num_excluded, n):
    generator = torch.Generator().manual_seed(1)
    excluded = torch.randperm(numel, generator=generator)[:num_excluded].sort().values
    grown = _random_excluding(numel, excluded, n, generator)
    assert grown.numel() == n and grown.unique().numel() == n
    assert not torch.isin(grown, excluded).any() and grown.min() >= 0 and grown.max() < numel


@pytest.mark.parametrize("num_excluded", [2, 8])  # by rejection, and by permuting the free positions
def test_random_growth_is_uniform_over_the_free_positions(num_excluded):
    generator = torch.Generator().manual_seed(2)
    counts = torch.zeros(10)
    for _ in range(2000):
        counts[_random_excluding(10, torch.arange(num_excluded), 1, generator)] += 1
    free = counts[num_excluded:]
    expected = 2000 / free.numel()
    assert free.sum() == 2000 and (free - expected).abs().max() < 0.2 * expected


@pytest.mark.parametrize("num_excluded", [100, 500])  # by rejection, and by permuting the free positions
def test_random_growth_is_drawn_from_the_controller_s_generator_alone(num_excluded):
    """A seeded run grows the same entries whatever else used torch's global random state: past half the
    tensor (density above 1/2) the permutation of the free positions must come from the generator too."""
    excluded = torch.arange(0, 2 * num_excluded, 2)
    draws = []
    for global_seed in (0, 1):
        with torch.random.fork_rng():
            torch.manual_seed(global_seed)
            draws.append(_random_excluding(1000, excluded, 300, torch.Generator().manual_seed(5)))
    assert torch.equal(*draws)


def test_random_growth_of_more_positions_than_are_free_fails_clearly():
    """It looped for ever, drawing from positions that could never be enough."""
    with pytest.raises(ValueError, match="cannot draw 3 distinct positions out of the 2 of 10 not excluded"):
        _random_excluding(10, torch.arange(8), 3, torch.Generator().manual_seed(0))


def _reference_largest(score: torch.Tensor, excluded: torch.Tensor, n: int) -> torch.Tensor:
    """The ``n`` positions of largest score outside ``excluded`` in one dense sort: score descending,
    then position ascending (a stable sort of positions already in order), as a sorted tensor."""
    score = score.clone()
    score[excluded] = -math.inf
    return score.sort(descending=True, stable=True).indices[:n].sort().values


def _chunked(score: torch.Tensor, size: int) -> list[tuple[int, torch.Tensor]]:
    return [(start, score[start : start + size]) for start in range(0, score.numel(), size)]


@pytest.mark.parametrize("n", [150, 300])  # the whole tensor's one chunk: cut before or after gathering
@pytest.mark.parametrize("size", [1, 7, 64, 600])
@pytest.mark.parametrize("scores", ["distinct", "tied"])
def test_largest_takes_the_n_best_whatever_the_chunks(n, size, scores):
    """Blocks smaller than n, scores equal across blocks: the choice is a dense sort's, the lowest
    positions first among equal scores, however the scores come in chunks."""
    generator = torch.Generator().manual_seed(0)
    if scores == "distinct":
        score = torch.randperm(600, generator=generator).float()
    else:  # a few values, each in every block; n ends inside a run of equal scores
        score = torch.randint(4, (600,), generator=generator).float()
    excluded = torch.randperm(600, generator=generator)[:100].sort().values
    positions, best = _largest(_chunked(score, size), excluded, n)
    expected = _reference_largest(score, excluded, n)
    assert torch.equal(positions, expected)
    assert torch.equal(best, score[expected])
    if scores == "distinct":  # topk's own choice where it has no ties to break
        free = score.clone()
        free[excluded] = -math.inf
        assert torch.equal(positions, free.topk(n).indices.sort().values)


def test_largest_cuts_its_candidates_about_once_per_n_of_them(monkeypatch):
    """The running top-n ended every block in a topk of the best so far plus the block: 70 topk calls
    over 36 blocks at Amazon-book's size. Candidates are now cut once they pass 2n, and a cut's threshold
    keeps most of the later blocks out: a few cuts, never more than the blocks' free entries over n."""
    cuts = []
    best = dsl_module._best

    def counted(score, n):
        cuts.append(score.numel())
        return best(score, n)

    monkeypatch.setattr(dsl_module, "_best", counted)
    generator = torch.Generator().manual_seed(1)
    score = torch.rand(20_000, generator=generator)
    excluded = torch.randperm(20_000, generator=generator)[:4_000].sort().values
    positions, _ = _largest(_chunked(score, 64), excluded, 1_000)  # 313 blocks of 64, n > a block
    assert torch.equal(positions, _reference_largest(score, excluded, 1_000))
    assert 1 <= len(cuts) <= 16_000 // 1_000
    assert max(cuts) <= 2 * 1_000 + 64  # at most 2n candidates and one block


@pytest.mark.parametrize(
    "backend,chunk_rows", [("sparse", 3), ("sparse", 4096), ("compact", 3), ("masked", 3)]
)
def test_gradient_growth_takes_the_largest_gradients_lowest_position_first(backend, chunk_rows, device):
    """Every backend and chunking grows the entries a dense sort of the gradient picks: distinct
    gradients of the rows the loss reads, then, among the rows it leaves at zero, the lowest positions.
    Growth never picks a kept entry and the count stays."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(40, 8))
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=1, update_interval=1, schedule="constant", rho0=0.75,
        backend=backend, chunk_rows=chunk_rows,
    )  # fmt: skip
    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # values stay as they are
    dsl.attach(optimizer)
    target = dsl.targets[0]
    active = target.active_positions().cpu()
    magnitude = target.active_magnitudes().cpu()
    n = 120  # of 160 active; blocks of 3 rows hold 24 entries
    kept = active[magnitude.argsort()[n:]]
    coefficient = (torch.randperm(80) + 1.0).view(10, 8) * torch.tensor([1.0, -1.0]).repeat(4)
    (model[0](torch.arange(10, device=device)) * coefficient.to(device)).sum().backward()  # rows 10-39: 0
    optimizer.step()
    dsl.step()
    gradient = torch.zeros(40, 8)
    gradient[:10] = coefficient.abs()
    grown = _reference_largest(gradient.view(-1), kept.sort().values, n)
    assert (gradient.view(-1)[grown] == 0).sum() > 0  # the choice reaches into the zeros
    after = target.active_positions().cpu()
    assert after.numel() == 160
    assert torch.equal(after.sort().values, torch.cat([kept, grown]).sort().values)


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_each_update_grows_by_its_own_iteration_gradient_only(backend):
    """Two updates in a row: the second grows by the gradient of its own mini-batch (rows 10-19), not
    by that gradient summed with the one recorded for the first update (rows 0-9)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(40, 8))
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=2, update_interval=1, schedule="constant", rho0=0.5, backend=backend
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # values stay as they are
    dsl.attach(optimizer)
    target = dsl.targets[0]
    for rows in (torch.arange(10), torch.arange(10, 20)):
        kept = target.active_positions()[target.active_magnitudes().argsort()[80:]]  # n = 80 of 160
        coefficient = (torch.randperm(80) + 1.0).view(10, 8)
        optimizer.zero_grad()
        (model[0](rows) * coefficient).sum().backward()
        optimizer.step()
        dsl.step()
    gradient = torch.zeros(40, 8)
    gradient[10:20] = coefficient
    grown = _reference_largest(gradient.view(-1), kept.sort().values, 80)
    assert torch.equal(target.active_positions().sort().values, torch.cat([kept, grown]).sort().values)


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_growth_sums_the_gradients_of_every_backward_pass_of_the_iteration(backend):
    """Gradient accumulation (two micro-batches, one optimizer step): growth ranks the summed gradient,
    as .grad holds it, not the last backward pass's alone."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(40, 8))
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=1, update_interval=1, schedule="constant", rho0=0.5, backend=backend
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    dsl.attach(optimizer)
    target = dsl.targets[0]
    kept = target.active_positions()[target.active_magnitudes().argsort()[80:]]
    gradient = torch.zeros(40, 8)
    for rows in (torch.arange(10), torch.arange(10, 20)):
        coefficient = (torch.randperm(80) + 1.0).view(10, 8)
        (model[0](rows) * coefficient).sum().backward()
        gradient[rows] = coefficient
    optimizer.step()
    dsl.step()
    grown = _reference_largest(gradient.view(-1), kept.sort().values, 80)
    assert torch.equal(target.active_positions().sort().values, torch.cat([kept, grown]).sort().values)


@pytest.mark.parametrize("backend", ["sparse", "masked"])
@pytest.mark.parametrize("poison", ["gradient", "weight"])
def test_an_update_refuses_non_finite_weights_or_gradients(backend, poison):
    """topk puts NaN first: NaN gradients were grown before every other entry, NaN weights never pruned."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 20))
    dsl = DynamicSparseLearning(model, 0.5, total_steps=4, update_interval=1, backend=backend)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    dsl.attach(optimizer)
    scale = torch.ones(10, 20)
    inactive = torch.ones(200, dtype=torch.bool)
    inactive[dsl.targets[0].active_positions()] = False
    scale.view(-1)[inactive.nonzero()[0]] = math.nan  # on an inactive entry, which the step leaves at 0
    loss = (
        (model[0](torch.arange(10)) * scale).sum()
        if poison == "gradient"
        else model[0](torch.arange(10)).sum()
    )
    loss.backward()
    optimizer.step()
    if poison == "weight":
        with torch.no_grad():
            next(model.parameters()).view(-1).add_(math.nan)  # every stored value, active ones included
    with pytest.raises(FloatingPointError, match=f"iteration 1: '0' has non-finite {poison}s"):
        dsl.step()


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_an_update_failing_on_a_later_target_leaves_the_earlier_ones_as_they_were(backend):
    """The targets were updated one by one: a non-finite gradient in the second failed the update after
    the first had moved its entries, unrecorded, for a caller who catches the error and goes on."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 20), torch.nn.Embedding(10, 20))
    dsl = DynamicSparseLearning(model, 0.5, total_steps=4, update_interval=1, backend=backend)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    dsl.attach(optimizer)
    rows = torch.arange(10)
    (model[0](rows).sum() + (model[1](rows) * math.nan).sum()).backward()
    optimizer.step()
    before = _target_storage(dsl, "0")
    with pytest.raises(FloatingPointError, match="'1' has non-finite"):
        dsl.step()
    assert all(torch.equal(a, b) for a, b in zip(_target_storage(dsl, "0"), before, strict=True))
    assert not dsl.updates


def _target_storage(dsl, name: str) -> list[torch.Tensor]:
    """Copies of the values and the mask (positions) of the controller's target ``name``."""
    target = next(t for t in dsl.targets if t.name == name)
    params, buffers = target.storage()
    return [t.detach().clone() for t in params + buffers]


@pytest.mark.parametrize("growth", ["gradient", "random"])
@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_a_target_frozen_after_the_controller_is_left_as_it_is(backend, growth):
    """A table frozen mid-run failed 'received no gradient' (gradient growth), had entries zeroed that
    never trained again (random growth), or failed registering a hook (masked backend)."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=10, targets=["tables", r"mlp\.0\.weight"], update_interval=2,
        backend=backend, growth=growth,
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    model.emb.requires_grad_(False)
    frozen = _target_storage(dsl, "emb")
    for _ in _custom_steps(model, dsl, optimizer, 4):
        pass
    assert all(torch.equal(a, b) for a, b in zip(frozen, _target_storage(dsl, "emb")))
    assert [list(update["changed"]) for update in dsl.updates] == [["mlp.0.weight"]] * 2
    model.emb.requires_grad_(True)  # unfrozen, it takes part in the next update again
    for _ in _custom_steps(model, dsl, optimizer, 2):
        pass
    assert set(dsl.updates[-1]["changed"]) == {"emb", "mlp.0.weight"}


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_a_target_unfrozen_just_before_an_update_waits_for_the_next_one(backend):
    """Unfrozen between the step before an update and the update's iteration, a table had taken no gradient
    hook: gradient growth failed 'received no gradient' instead of leaving it to the next update."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=10, targets=["tables", r"mlp\.0\.weight"], update_interval=2,
        backend=backend, growth="gradient",
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    model.emb.requires_grad_(False)
    for _ in _custom_steps(model, dsl, optimizer, 1):
        pass
    model.emb.requires_grad_(True)  # at the end of an epoch, say: the next iteration updates
    frozen = _target_storage(dsl, "emb")
    for _ in _custom_steps(model, dsl, optimizer, 1):
        pass
    assert [list(update["changed"]) for update in dsl.updates] == [["mlp.0.weight"]]
    assert torch.equal(frozen[-1], _target_storage(dsl, "emb")[-1])  # its positions (mask) unchanged
    for _ in _custom_steps(model, dsl, optimizer, 2):
        pass
    assert set(dsl.updates[-1]["changed"]) == {"emb", "mlp.0.weight"}


def _masked_custom(sparsity: float, seed: int) -> tuple[nn.Module, DynamicSparseLearning]:
    torch.manual_seed(seed)
    model = _Custom()
    dsl = DynamicSparseLearning(
        model, sparsity, total_steps=10, targets=["tables", r"mlp\.0\.weight"], backend="masked", seed=seed
    )
    return model, dsl


@pytest.mark.parametrize("strict", [True, False])
def test_a_masked_checkpoint_of_another_sparsity_is_refused(strict):
    """It loaded silently: the controller then kept the checkpoint's budget, not its own (a sparse
    table of another sparsity fails on the size of its values)."""
    saved, _ = _masked_custom(0.5, seed=0)
    model, _ = _masked_custom(0.8, seed=1)
    with pytest.raises(RuntimeError, match="emb.weight_mask holds 200 active entries, where this model's"):
        model.load_state_dict(saved.state_dict(), strict=strict)
    same, _ = _masked_custom(0.5, seed=1)  # the same sparsity from other masks loads
    same.load_state_dict(saved.state_dict())
    index = torch.arange(50)
    torch.testing.assert_close(same(index), saved(index), rtol=0, atol=0)


def test_a_dense_state_loaded_loosely_into_a_masked_model_is_masked():
    """strict=False loaded the dense weights whole: inactive entries ran non-zero until the next step."""
    torch.manual_seed(0)
    dense = _Custom()
    model, dsl = _masked_custom(0.5, seed=1)
    missing = model.load_state_dict(dense.state_dict(), strict=False).missing_keys
    assert missing == ["emb.weight_mask", "mlp.0.weight_mask"]
    for module in (model.emb, model.mlp[0]):
        assert not module.weight[~module.weight_mask].any()
    torch.testing.assert_close(model.emb.weight, dense.emb.weight * model.emb.weight_mask)
    assert dsl.active_counts() == {"emb": 200, "mlp.0.weight": 64}


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_a_state_dict_loads_into_a_model_and_controller_built_afresh(small_data, backend):
    """model.state_dict() -> torch.save -> a model and controller built again (other random masks and
    values) -> load_state_dict: the same scores."""

    def build(seed: int):
        torch.manual_seed(seed)
        model = LightGCN(30, 40, embedding_dim=8)
        dsl = DynamicSparseLearning(model, 0.6, total_steps=10, update_interval=2, backend=backend, seed=seed)
        return model, dsl

    model, dsl = build(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    adj = propagation_graph(small_data)
    for _ in _train_steps(model, dsl, optimizer, adj, 4):
        pass
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh, _ = build(1)
    fresh.load_state_dict(torch.load(buffer))
    pairs = small_data[EDGE].edge_label_index
    assert not torch.equal(build(1)[0](adj, pairs), model(adj, pairs))  # the masks and values differed
    torch.testing.assert_close(fresh(adj, pairs), model(adj, pairs), rtol=0, atol=0)


@pytest.mark.parametrize("optimizer_first", [True, False])
@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_a_model_moved_to_double_trains_through_an_update(small_data, backend, optimizer_first):
    """model.double() after the controller (and the optimizer, or before it): tables, optimizer
    state and gradients follow, and prune-and-grow runs in float64."""
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=8)
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=2, backend=backend)
    pairs = small_data[EDGE].edge_label_index
    single = model(propagation_graph(small_data), pairs).detach()
    if optimizer_first:
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.double()
    if not optimizer_first:
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    adj = model.input_graph(small_data)
    torch.testing.assert_close(model(adj, pairs).float(), single)
    counts = dsl.active_counts()
    for _ in _train_steps(model, dsl, optimizer, adj, 4):
        pass
    assert len(dsl.updates) == 2 and dsl.active_counts() == counts
    state = [v for s in optimizer.state.values() for v in s.values() if v.is_floating_point() and v.dim()]
    assert {t.dtype for t in [*model.parameters(), *state]} == {torch.float64}


def test_every_backend_draws_the_same_masks_for_a_bias_between_weights():
    """The masked backend drew masks in the model's parameter order (weight, bias, weight), the
    others with the replaced layers first: every mask after the first weight's differed, from one seed."""
    masks = {}
    for backend in ("sparse", "compact", "masked"):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 4))
        dsl = DynamicSparseLearning(model, 0.5, 10, targets=[r".*"], backend=backend, growth="random")
        masks[backend] = {t.name: t.active_positions().sort().values for t in dsl.targets}
    assert masks["sparse"].keys() == masks["masked"].keys() == {"0.weight", "0.bias", "2.weight", "2.bias"}
    for name, mask in masks["sparse"].items():
        assert torch.equal(mask, masks["compact"][name]) and torch.equal(mask, masks["masked"][name]), name


@pytest.mark.parametrize("cls", [CDAE, MultVAE])
def test_every_backend_resets_a_linear_target_to_the_same_values(cls):
    """reset_parameters() after the controller drew a SparseLinear's own init, Xavier weights and a zero bias,
    where the masked backend's nn.Linear drew Kaiming-uniform ones and a uniform bias (CDAE's encoder); the
    same draws from one seed now, MultVAE's own Xavier init included."""
    reset = {}
    for backend in ("sparse", "compact", "masked"):
        torch.manual_seed(0)
        model = cls(6, 12, hidden_channels=8)
        DynamicSparseLearning(model, 0.5, 10, targets=[r".*\.weight"], update_interval=5, backend=backend)
        torch.manual_seed(1)
        model.reset_parameters()
        reset[backend] = {name: value.detach().clone() for name, value in _linear_parameters(model).items()}
    assert reset["sparse"].keys() == reset["masked"].keys() and reset["sparse"]
    for name, value in reset["masked"].items():
        torch.testing.assert_close(reset["sparse"][name], value, rtol=0, atol=0, msg=name)
        torch.testing.assert_close(reset["compact"][name], value, rtol=0, atol=0, msg=name)


def _linear_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every linear layer's dense weight and bias, whatever module DSL made of it."""
    layers = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, SparseLinear))}
    return {
        f"{name}.{part}": getattr(layer, part)
        for name, layer in layers.items()
        for part in ("weight", "bias")
    }


def test_building_the_controller_leaves_the_global_random_stream_as_it_was():
    """The sparse and compact backends drew a value for every entry of each replaced table and linear
    layer, and then replaced them: dropout and everything drawn after the controller differed from the
    masked backend's, from one seed."""
    drawn = []
    for backend in ("sparse", "compact", "masked"):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Embedding(20, 8), nn.Linear(8, 6))
        state = torch.get_rng_state()
        DynamicSparseLearning(model, 0.5, 10, targets=["tables", r"1\.weight"], backend=backend)
        assert torch.equal(torch.get_rng_state(), state), backend
        drawn.append(torch.rand(3))
    assert torch.equal(drawn[0], drawn[2])


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_random_growth_follows_the_seed_and_leaves_the_global_random_stream(backend):
    """``seed`` decides random growth, as it decides the masks: updates drawing from the global stream
    would change with whatever the training loop draws (dropout, negatives) and shift its draws in turn.
    Only construction was checked, and the resume tests seed the global stream alike in both runs."""
    masks = []
    for global_seed, seed in [(0, 3), (1, 3), (0, 4)]:
        torch.manual_seed(0)  # the same initial weights
        model = nn.Sequential(nn.Embedding(10, 8))
        dsl = DynamicSparseLearning(
            model, 0.5, 4, update_interval=2, schedule="constant", rho0=0.5, growth="random",
            backend=backend, seed=seed,
        )  # fmt: skip
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        dsl.attach(optimizer)
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        for _ in range(4):
            optimizer.step()
            dsl.step()
        assert len(dsl.updates) == 2 and torch.equal(torch.get_rng_state(), state)
        masks.append(dsl.targets[0].active_positions().sort().values)
    assert torch.equal(masks[0], masks[1]) and not torch.equal(masks[0], masks[2])


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_equal_weights_are_pruned_lowest_position_first(backend):
    """Among equal magnitudes (a zero-initialised table, grown entries the loss never reached), `topk`
    pruned the ones its own implementation picks in slot order (sparse) or position order (masked):
    the backends' masks parted from the first update on."""
    torch.manual_seed(0)
    model = nn.Embedding(10, 4)
    nn.init.zeros_(model.weight)
    model = nn.Sequential(model)
    dsl = DynamicSparseLearning(
        model, 0.5, 12, update_interval=3, schedule="constant", rho0=0.25, backend=backend, seed=3
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # every weight stays 0
    dsl.attach(optimizer)
    scale = torch.arange(1.0, 5.0)
    for step in range(12):
        before = dsl.targets[0].active_positions().sort().values
        optimizer.zero_grad()
        (model(torch.tensor([step % 10, 9 - step % 10])) * scale).sum().backward()
        optimizer.step()
        dsl.step()
        if dsl.is_update_step(step + 1):
            after = dsl.targets[0].active_positions()
            assert torch.isin(before[5:], after).all()  # the five lowest are the ones pruned
    assert len(dsl.updates) == 4


@pytest.mark.parametrize(
    "make,batch_size",
    [
        (lambda: NeuMF(30, 40, embedding_dim=8, mlp_layers=(16, 8), dropout=0.5), 32),
        (lambda: MultVAE(30, 40, hidden_channels=16, latent_dim=6, dropout=0.5), 8),  # batches of users
    ],
    ids=["neumf", "multvae"],
)
def test_every_backend_trains_an_adapter_alike_from_one_seed(small_data, make, batch_size):
    """The DSL authors' targets (NeuMF's MLP-branch tables, every weight and bias of Mult-VAE) gave
    other losses under the sparse backend than under the masked one: their masks were drawn in another
    order, the sparse tables' construction drew from the global stream, and a sparse linear layer's
    transposed output made Mult-VAE's z draw its noise in another order."""
    runs = {}
    for backend in ("sparse", "compact", "masked"):
        torch.manual_seed(0)
        model = make()
        config = TrainConfig(epochs=2, batch_size=batch_size, lr=0.01, eval_every=1, progress=False, seed=1)
        targets = list(model.dsl_targets)
        dsl = DynamicSparseLearning(model, 0.7, 100, targets=targets, update_interval=3, backend=backend)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        dsl.attach(optimizer)
        history = Trainer(model, small_data, config, hooks=[dsl], optimizer=optimizer).fit()["history"]
        masks = {t.name: t.active_positions().sort().values for t in dsl.targets}
        runs[backend] = [entry["loss"] for entry in history], masks, len(dsl.updates)
    losses, masks, updates = runs["sparse"]
    assert updates >= 2
    for backend in ("compact", "masked"):
        torch.testing.assert_close(runs[backend][0], losses, rtol=1e-5, atol=0)
        assert all(torch.equal(runs[backend][1][name], mask) for name, mask in masks.items()), backend


@pytest.mark.parametrize("t_end", [None, 4])
def test_stepping_past_total_steps_warns_once_without_t_end(t_end):
    """total_steps given as a number of epochs stopped every update after that many iterations, silently."""
    model = nn.Sequential(nn.Embedding(10, 4))
    dsl = DynamicSparseLearning(model, 0.5, total_steps=6, update_interval=2, t_end=t_end, growth="random")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    dsl.attach(optimizer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(10):
            optimizer.zero_grad()
            model(torch.tensor([step])).sum().backward()
            optimizer.step()
            dsl.step()
            past = [str(w.message) for w in caught if "stepped past" in str(w.message)]
            assert len(past) == (step >= 6 and t_end is None)
    assert past == [] or "total_steps=6" in past[0]
    assert [update["iteration"] for update in dsl.updates] == [2, 4, 6][: 3 if t_end is None else 2]


def test_an_update_interval_past_the_horizon_is_named_in_a_warning():
    """Built in one's own loop, a ΔT past the run (the default 3000 of a short one) or past t_end never
    updated: the masks stayed the initial ones, a static mask, while only the CLI said so."""

    def warned(**options):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            DynamicSparseLearning(nn.Sequential(nn.Embedding(10, 4)), 0.5, **options)
        return [str(w.message) for w in caught if "update_interval" in str(w.message)]

    message = "update_interval=3000 exceeds the 20 iterations DSL updates within (total_steps)"
    assert warned(total_steps=20)[0].startswith(message)
    assert "the initial masks never change" in warned(total_steps=20)[0]
    assert warned(total_steps=20, update_interval=8, t_end=6)[0].startswith(
        "update_interval=8 exceeds the 6 iterations DSL updates within (t_end)"
    )
    assert warned(total_steps=20, update_interval=20) == []  # one update, at the last iteration
    assert warned(total_steps=20, update_interval=6, t_end=6) == []


def test_skip_zero_gradient_under_random_growth_is_refused():
    """Random growth has no score to skip zeros of: the option was taken and did nothing."""
    with pytest.raises(ValueError, match=r"skip_zero_gradient=True .* growth='random' scores none"):
        DynamicSparseLearning(
            LightGCN(3, 4, embedding_dim=8), 0.5, 10, growth="random", skip_zero_gradient=True
        )


@pytest.mark.parametrize("copy_with", ["deepcopy", "torch.save"])
def test_a_copy_of_the_model_taken_before_an_update_does_not_probe(small_data, copy_with):
    """A copy of a model (not of its controller) taken at the iteration before an update, as a best model
    kept by copy.deepcopy or saved whole, went on probing: every later backward pass appended its output
    gradients to the copy's tables, kept without end, since no controller of the copy turns probing off."""
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=8)
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    adj = propagation_graph(small_data)
    next(_train_steps(model, dsl, optimizer, adj, 1))
    assert model.embedding.probing  # the next iteration updates
    if copy_with == "deepcopy":
        copied = copy.deepcopy(model)
    else:
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        copied = torch.load(buffer, weights_only=False)
    for _ in range(3):
        copied.loss(adj, torch.arange(5), torch.arange(5), torch.arange(5)).backward()
    assert not copied.embedding.probing and not copied.embedding.recorded_gradient
    assert model.embedding.probing  # the original's controller still grows by its gradient
    next(_train_steps(model, dsl, optimizer, adj, 1))
    assert dsl.updates[-1]["changed"]["embedding"] > 0


def test_a_dense_state_loaded_loosely_into_a_sparse_model_keeps_its_positions():
    """model.load_state_dict(dense_state, strict=False), a warm start from a model trained dense, loaded the
    tables and linear weights masked under backend='masked', but left the sparse and compact backends' as
    they were, without a word (the dense 'weight' keys were only unexpected): every backend now loads them
    at its active entries, and strict=True fails on the missing positions as on the missing masks."""
    torch.manual_seed(0)
    dense = CDAE(30, 40, hidden_channels=8)
    loaded = {}
    for backend in ("sparse", "compact", "masked"):
        model = CDAE(30, 40, hidden_channels=8)
        dsl = DynamicSparseLearning(
            model, 0.5, 10, targets=model.dsl_targets, update_interval=5, backend=backend
        )
        keys = model.load_state_dict(dense.state_dict(), strict=False)
        kind = "weight_mask" if backend == "masked" else "positions"
        prefix = "encoder." if backend == "masked" else "encoder.sparse_weight."
        assert keys.missing_keys == [f"user_embedding.{kind}", f"{prefix}{kind}"] and not keys.unexpected_keys
        loaded[backend] = dsl.dense_state_dict()
        with pytest.raises(RuntimeError, match=rf'Missing key\(s\) in state_dict: "user_embedding\.{kind}"'):
            model.load_state_dict(dense.state_dict())
    for name, value in dense.state_dict().items():
        mask = loaded["masked"][name] != 0
        assert mask.any() and mask.all() == (name not in ("user_embedding.weight", "encoder.weight")), name
        torch.testing.assert_close(loaded["masked"][name], value * mask, rtol=0, atol=0)
        for backend in ("sparse", "compact"):
            torch.testing.assert_close(loaded[backend][name], loaded["masked"][name], rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["sparse", "compact"])
def test_a_masked_model_s_state_loads_into_a_sparse_one_at_its_active_entries(backend):
    # the mask was only reported unexpected (strict=False) and the weights loaded at the sparse model's own
    # positions, dropping the entries the masked run trained; strict=True failed on the mask and positions
    torch.manual_seed(0)
    masked = CDAE(30, 40, hidden_channels=8)
    dsl = DynamicSparseLearning(masked, 0.5, 10, targets=masked.dsl_targets, backend="masked")
    expected = dsl.dense_state_dict()
    model = CDAE(30, 40, hidden_channels=8)
    sparse = DynamicSparseLearning(model, 0.5, 10, targets=model.dsl_targets, backend=backend, seed=7)
    model.load_state_dict(masked.state_dict())
    loaded = sparse.dense_state_dict()
    assert loaded.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(loaded[name], value, rtol=0, atol=0)
    assert sparse.active_counts() == dsl.active_counts()
    other = CDAE(30, 40, hidden_channels=8)
    DynamicSparseLearning(other, 0.8, 10, targets=other.dsl_targets, backend=backend)
    with pytest.raises(RuntimeError, match="user_embedding.weight_mask holds 120 active entries, where "):
        other.load_state_dict(masked.state_dict(), strict=False)


@pytest.mark.parametrize("backend", ["sparse", "compact"])
def test_a_sparse_model_s_state_loads_into_a_masked_one_at_its_positions(backend):
    # the values and positions were missing and unexpected keys (strict=False loaded nothing), and one of
    # our models refused them as a dense module's
    torch.manual_seed(0)
    model = CDAE(30, 40, hidden_channels=8)
    dsl = DynamicSparseLearning(model, 0.5, 10, targets=model.dsl_targets, backend=backend)
    masked = CDAE(30, 40, hidden_channels=8)
    target = DynamicSparseLearning(masked, 0.5, 10, targets=masked.dsl_targets, backend="masked", seed=7)
    masked.load_state_dict(model.state_dict())
    expected, loaded = dsl.dense_state_dict(), target.dense_state_dict()
    assert loaded.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(loaded[name], value, rtol=0, atol=0)
    active = masked.user_embedding.weight_mask.view(-1).nonzero().squeeze(1)
    assert torch.equal(active, model.user_embedding.positions.sort().values)
    other = CDAE(30, 40, hidden_channels=8)
    DynamicSparseLearning(other, 0.8, 10, targets=other.dsl_targets, backend="masked")
    with pytest.raises(RuntimeError, match=r"user_embedding\.weight_mask holds 120 active entries, where "):
        other.load_state_dict(model.state_dict(), strict=False)
    state = model.state_dict()
    state["user_embedding.positions"] = state["user_embedding.positions"] + 240  # past the 30 x 8 table
    with pytest.raises(RuntimeError, match=r"user_embedding\.positions hold entries outside this 30 x 8 "):
        masked.load_state_dict(state)


def test_a_sparse_state_of_another_shape_is_refused_by_a_masked_model():
    """A 6 x 3 sparse table's state loaded into a 3 x 6 masked weight without a word (its positions are all
    entries of it), each value read as another entry; the sparse backend refuses it by the saved shape."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(6, 3))
    DynamicSparseLearning(model, 0.5, 10, backend="sparse")
    masked = nn.Sequential(nn.Embedding(3, 6))
    DynamicSparseLearning(masked, 0.5, 10, backend="masked")
    before = {name: value.clone() for name, value in masked.state_dict().items()}
    with pytest.raises(
        RuntimeError, match=r"0\.values and positions are of a 6 x 3 table, not this 3 x 6 one"
    ):
        masked.load_state_dict(model.state_dict())
    for name, value in masked.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_a_sparse_state_loads_into_a_masked_model_only_whole():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(6, 4), nn.Linear(4, 2))
    DynamicSparseLearning(model, 0.5, 10, backend="sparse")
    masked = nn.Sequential(nn.Embedding(6, 4), nn.Linear(4, 2))
    DynamicSparseLearning(masked, 0.5, 10, backend="masked")
    state = model.state_dict()
    state["0.positions"] = state["0.positions"][:-1]
    with pytest.raises(RuntimeError, match=r"0\.positions must hold one entry per value, got 11 for 12"):
        masked.load_state_dict(state)
    # the linear layer's state alone: the masked table keeps its weight and mask
    weight, mask = masked[0].weight.detach().clone(), masked[0].weight_mask.clone()
    result = masked.load_state_dict(
        {k: v for k, v in model.state_dict().items() if k.startswith("1.")}, strict=False
    )
    assert sorted(result.missing_keys) == ["0.weight", "0.weight_mask"] and not result.unexpected_keys
    assert torch.equal(masked[0].weight, weight) and torch.equal(masked[0].weight_mask, mask)
    assert torch.equal(masked[1].weight, model[1].weight)


def test_a_dense_weight_of_another_shape_is_refused_by_a_sparse_table():
    table = SparseEmbedding(6, 4, 0.5)
    with pytest.raises(
        RuntimeError, match=r"a dense weight of shape \(4, 6\), where this sparse table is 6 x 4"
    ):
        table.load_state_dict({"weight": torch.ones(4, 6)}, strict=False)
    layer = SparseLinear(4, 6, 0.5)
    with pytest.raises(RuntimeError, match=r"sparse_weight\.weight: a dense weight of shape \(4, 6\)"):
        layer.load_state_dict(nn.Linear(6, 4).state_dict(), strict=False)


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_remove_stops_probing_when_training_stopped_before_an_update(small_data, backend):
    """A run stopped on the iteration before an update (early stopping) left its tables probing (or the
    masked weight's gradient hook in place): every later backward pass of the model, fine-tuned or
    differentiated without the controller, was recorded, the sparse tables' records kept without end.
    dsl.remove() lets go of the model, and the removed controller refuses to train on."""
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=8)
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=2, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    adj = propagation_graph(small_data)
    next(_train_steps(model, dsl, optimizer, adj, 1))
    weight = model.embedding.values if backend == "sparse" else model.embedding.weight
    assert model.embedding.probing if backend == "sparse" else weight._backward_hooks
    dsl.remove()
    for _ in range(2):
        model.loss(adj, torch.arange(5), torch.arange(5), torch.arange(5)).backward()
    if backend == "sparse":
        assert not model.embedding.probing and not model.embedding.recorded_gradient
    else:
        assert not weight._backward_hooks and dsl.targets[0].grad is None
    assert len(optimizer._optimizer_step_post_hooks) == 0
    for refused in (dsl.step, lambda: dsl.attach(optimizer)):
        with pytest.raises(RuntimeError, match=r"was removed \(dsl.remove\(\)\)"):
            refused()


def test_a_controller_removed_before_any_optimizer_was_attached_refuses_one():
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, backend="masked")
    dsl.remove()
    assert dsl.optimizer is None and not model.emb.weight._backward_hooks
    with pytest.raises(RuntimeError, match=r"was removed \(dsl.remove\(\)\)"):
        dsl.attach(torch.optim.Adam(model.parameters()))


def test_a_copy_of_a_removed_controller_leaves_the_copied_optimizer_alone():
    """copy.deepcopy (or torch.save and load) of a removed controller with its optimizer hooked the copied
    optimizer again: the copy went on re-masking the weights the original let train dense."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=2, backend="masked")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    dsl.attach(optimizer)
    dsl.remove()
    copied, copied_optimizer, copied_dsl = copy.deepcopy((model, optimizer, dsl))
    for net, opt in ((model, optimizer), (copied, copied_optimizer)):
        opt.zero_grad()
        net(torch.arange(50)).sum().backward()
        opt.step()
        assert int(net.emb.weight.count_nonzero()) > 200  # trained past the 200 entries of the mask
    with pytest.raises(RuntimeError, match=r"was removed \(dsl.remove\(\)\)"):
        copied_dsl.step()


def test_a_controller_pickled_before_remove_existed_still_trains(monkeypatch):
    # its state holds no _removed flag
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    state = {key: value for key, value in dsl.__getstate__().items() if key != "_removed"}
    monkeypatch.setattr(DynamicSparseLearning, "__getstate__", lambda self: state)
    model, optimizer, dsl = copy.deepcopy((model, optimizer, dsl))
    monkeypatch.undo()
    for _ in _custom_steps(model, dsl, optimizer, 2):
        pass
    assert len(dsl.updates) == 1


def test_an_unattached_controller_pickled_before_the_step_pre_hook_existed_attaches_and_trains(monkeypatch):
    # its state holds neither the pre-hook's handle nor its flag, and no optimizer to hook at unpickling
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=2)
    state = {k: v for k, v in dsl.__getstate__().items() if k not in ("_start_hook", "_step_started")}
    monkeypatch.setattr(DynamicSparseLearning, "__getstate__", lambda self: state)
    model, dsl = copy.deepcopy((model, dsl))
    monkeypatch.undo()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    for _ in _custom_steps(model, dsl, optimizer, 2):
        pass
    assert len(dsl.updates) == 1


def _sparse_and_masked(backend="sparse"):
    """A _Custom model of ``backend`` and a masked one of the same sparsity."""
    torch.manual_seed(0)
    sparse, masked = _Custom(), _Custom()
    DynamicSparseLearning(sparse, 0.5, total_steps=10, update_interval=2, backend=backend)
    DynamicSparseLearning(masked, 0.5, total_steps=10, update_interval=2, backend="masked", seed=7)
    return sparse, masked


def test_a_sparse_state_of_other_values_than_positions_is_refused_by_a_masked_model():
    """One value for 200 positions was broadcast to all of them, without a word; an empty pair failed in
    torch's min()."""
    sparse, masked = _sparse_and_masked()
    state = sparse.state_dict()
    with pytest.raises(RuntimeError, match=r"emb\.positions must hold one entry per value, got 200 for 1"):
        masked.load_state_dict({**state, "emb.values": state["emb.values"][:1]})
    empty = {**state, "emb.values": state["emb.values"][:0], "emb.positions": state["emb.positions"][:0]}
    with pytest.raises(RuntimeError, match=r"emb\.weight_mask holds 0 active entries, where this model's"):
        masked.load_state_dict(empty)


def test_a_float64_sparse_state_loads_into_a_float32_masked_model():
    # as a float32 sparse model loads it, cast: index_put refused the float64 values
    sparse, masked = _sparse_and_masked()
    sparse.double()
    masked.load_state_dict(sparse.state_dict())
    assert masked.emb.weight.dtype == torch.float32
    torch.testing.assert_close(masked.emb.weight.detach(), sparse.emb.to_dense().float().detach())


def test_a_state_holding_a_dense_weight_and_sparse_values_loads_the_dense_weight():
    """A state with both for one table (a dense state updated with a sparse one's) is not taken as the
    sparse state: its values and positions are unexpected, as torch names them."""
    sparse, masked = _sparse_and_masked()
    state = {**sparse.state_dict(), "emb.weight": torch.ones(50, 8)}
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "emb\.values", "emb\.pos'):
        masked.load_state_dict(state)


def test_erk_budgets_are_rows_plus_columns_over_entries_with_full_tensors_capped():
    """ERK gives each tensor a density proportional to (rows + cols) / (rows * cols), at the same total;
    one that would pass density 1 is kept whole and the others share the rest of the budget."""
    model = nn.Module()
    model.a, model.b, model.c = (nn.Parameter(torch.randn(*s)) for s in ((10, 40), (20, 20), (2, 3)))
    dsl = DynamicSparseLearning(model, 0.8, total_steps=10, targets=["a", "b", "c"], distribution="erk")
    # raw weights 50/400, 40/400, 5/6; the budget 0.2 * 806 = 161.2 first scales them by 161.2 / 95, which
    # takes c past density 1: c is kept whole, and a and b share the rest, scaled by (161.2 - 6) / 90
    assert dsl.active_counts() == {"a": 86, "b": 69, "c": 6}


def test_erk_logs_its_densities_and_names_the_tensors_it_keeps_whole(caplog):
    model = nn.Module()
    model.weight, model.bias = nn.Parameter(torch.randn(10, 40)), nn.Parameter(torch.randn(10))
    with caplog.at_level("INFO", logger="dslgraph.sparse.dsl"):
        DynamicSparseLearning(model, 0.8, total_steps=10, targets=["weight", "bias"], distribution="erk")
    # raw weights 50/400 and 10/10, the budget 0.2 * 410 = 82: scaled by 82 / 60 the bias passes 1 and is
    # kept whole, and the weight gets the rest, 72 / 400
    assert "ERK densities: weight 0.180, bias 1.000; kept whole, so never pruned nor saving memory: bias" in (
        caplog.text
    )


def _entries_by_magnitude(model, dsl, magnitudes):
    """Writes ``magnitudes`` into the active entries of the one target, in increasing position order."""
    target = dsl.targets[0]
    dense = torch.zeros(target.numel)
    dense[target.active_positions().sort().values] = torch.tensor(magnitudes)
    with torch.no_grad():
        if isinstance(model["emb"], SparseEmbedding):
            model["emb"].values.copy_(dense[model["emb"].positions])
        else:
            model["emb"].weight.copy_(dense.view_as(model["emb"].weight))
    return target.active_positions().sort().values.tolist()


@pytest.mark.parametrize("backend", ["sparse", "masked"])
@pytest.mark.parametrize(
    "magnitudes, kept",
    [
        ([4.0, 3.0, 2.0, 1.0], slice(0, 3)),  # the smallest, not the lowest position among the n smallest
        ([1.0, 1.0, 2.0, 2.0], slice(1, 4)),  # of two equal smallest, the lowest position
    ],
)
def test_skip_zero_gradient_prunes_the_smallest_weight_lowest_position_first(backend, magnitudes, kept):
    """With one entry to grow (the one inactive entry with a gradient), the one pruned is the smallest weight,
    among equal ones the lowest position, as under the masked backend, whatever the order of a sparse table's
    slots (out of position order after any update; here the highest position in the first slot)."""
    model = nn.ModuleDict({"emb": nn.Embedding(2, 4)})
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=1, update_interval=1, schedule="constant", rho0=1.0,
        backend=backend, skip_zero_gradient=True,
    )  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    dsl.attach(optimizer)
    if backend == "sparse":
        positions = model["emb"].positions
        positions.copy_(positions.sort(descending=True).values)
    active = _entries_by_magnitude(model, dsl, magnitudes)
    grown = min(set(range(8)) - set(active))
    weight = torch.zeros(8)
    weight[grown] = 1.0
    (model["emb"](torch.arange(2)) * weight.view(2, 4)).sum().backward()
    optimizer.step()
    dsl.step()
    assert dsl.updates[-1]["changed"] == {"emb": 1}
    assert sorted(dsl.targets[0].active_positions().tolist()) == sorted([*active[kept], grown])


def test_an_optimizer_attached_between_updates_and_never_stepped_is_named_at_the_next_update():
    """The steps of the optimizer attached before counted for the one attached since: a new optimizer
    (a new learning-rate phase) attached between updates, with the loop still stepping the old one, went
    without the warning, while DSL reset the state of grown entries in the optimizer that does not train."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=20, update_interval=3, backend="masked")
    first = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(first)
    for _ in _custom_steps(model, dsl, first, 2):
        pass
    dsl.attach(torch.optim.Adam(model.parameters(), lr=0.01))
    messages = _warned_in_custom_steps(model, dsl, first, 1)
    assert "has not stepped since the last update (iteration 3)" in messages
    assert "skipped its update at iteration 3" in messages  # nor did it update by the old one's step


def test_masked_grown_entries_start_at_zero_whatever_the_dense_weight_held():
    """A grown entry starts at 0 even where the dense weight was written outside the optimizer (noise
    added in place between steps), not at what that write left there."""
    model = nn.ModuleDict({"emb": nn.Embedding(4, 4)})
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=1, update_interval=1, schedule="constant", rho0=0.5, growth="random",
        backend="masked",
    )  # fmt: skip
    dsl.attach(torch.optim.SGD(model.parameters(), lr=0.0))
    before = set(dsl.targets[0].active_positions().tolist())
    with torch.no_grad():
        model["emb"].weight.add_(1.0)
    dsl.update()  # random growth may update at any iteration
    after = dsl.targets[0].active_positions()
    grown = [p for p in after.tolist() if p not in before]
    assert grown
    assert not model["emb"].weight.view(-1)[grown].any()


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_reset_restarts_rprop_step_sizes_at_the_learning_rate_of_the_target_s_group(backend):
    """The initial state of a grown entry is its own parameter group's (Rprop's lr), not the first
    group's."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=3, backend=backend)
    (table,), _ = dsl.targets[0].storage()
    others = [p for p in model.parameters() if p is not table]
    optimizer = torch.optim.Rprop([{"params": others}, {"params": [table], "lr": 0.02}], lr=0.01)
    dsl.attach(optimizer)
    param, grown = _grown_after_first_update(model, dsl, optimizer, backend)
    assert param is table
    step_size = optimizer.state[param]["step_size"].view(-1)[grown]
    assert torch.equal(step_size, torch.full((grown.numel(),), 0.02))


@pytest.mark.parametrize(
    ("sparsity", "expected"),
    [
        # raw weights 200/10000 and 50/600; the budget 3100 scales them by 12.4, which takes b just past
        # density 1 (1.033): b is kept whole and a takes the rest of the budget, 3100 - 600
        (1 - 3100 / 10600, {"a": 2500, "b": 600}),
        (0.0, {"a": 10000, "b": 600}),  # density 1: every entry of each
    ],
)
def test_erk_budgets_add_up_to_the_total_budget(sparsity, expected):
    """ERK's budgets keep the requested total, a tensor just past density 1 being capped at its entries."""
    model = nn.Module()
    model.a, model.b = (nn.Parameter(torch.randn(*s)) for s in ((100, 100), (20, 30)))
    dsl = DynamicSparseLearning(
        model, sparsity, total_steps=10, targets=["a", "b"], distribution="erk", backend="masked"
    )
    assert dsl.active_counts() == expected


def test_an_optimizer_that_stopped_stepping_after_an_update_is_named_at_the_next_one():
    """The count of the attached optimizer's steps restarts at each update: steps made before the first
    update went on counting for the second, and a loop that had switched to an optimizer it did not attach
    went without the warning."""
    torch.manual_seed(0)
    model = _Custom()
    dsl = DynamicSparseLearning(model, 0.5, total_steps=20, update_interval=3, backend="masked")
    attached = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(attached)
    for _ in _custom_steps(model, dsl, attached, 3):  # the first update, at iteration 3
        pass
    other = torch.optim.Adam(model.parameters(), lr=0.01)  # not attached
    messages = _warned_in_custom_steps(model, dsl, other, 3)
    assert "has not stepped since the last update (iteration 6)" in messages


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_growth_among_one_more_candidate_than_it_grows_keeps_the_count(backend):
    """Three of four entries active and one to move: two candidates for one growth (the pruned entry and
    the inactive one). Growth takes one, and the count stays 3."""
    model = nn.ModuleDict({"emb": nn.Embedding(1, 4)})
    dsl = DynamicSparseLearning(
        model, 0.25, total_steps=1, update_interval=1, schedule="constant", rho0=1 / 3, backend=backend
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    dsl.attach(optimizer)
    active = _entries_by_magnitude(model, dsl, [3.0, 2.0, 1.0])  # the highest position is pruned
    (free,) = set(range(4)) - set(active)
    weight = torch.ones(4)
    weight[free] = 2.0  # the inactive entry has the larger gradient
    (model["emb"](torch.zeros(1, dtype=torch.long)) * weight).sum().backward()
    optimizer.step()
    dsl.step()
    assert dsl.updates[-1]["changed"] == {"emb": 1}
    assert sorted(dsl.targets[0].active_positions().tolist()) == sorted([*active[:2], free])
    # the same one level down: of three candidates for two, the two best
    best, _ = _largest([(0, torch.tensor([1.0, 3.0, 2.0]))], torch.tensor([], dtype=torch.long), 2)
    assert best.tolist() == [1, 2]


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_random_growth_reaches_every_position_the_last_included(backend):
    """Random growth draws among all positions not kept, the tensor's last one included."""
    model = nn.ModuleDict({"emb": nn.Embedding(4, 4)})
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=10, update_interval=1, schedule="constant", rho0=1.0, growth="random",
        backend=backend,
    )  # fmt: skip
    dsl.attach(torch.optim.SGD(model.parameters(), lr=0.0))
    seen = set(dsl.targets[0].active_positions().tolist())
    for _ in range(10):
        dsl.update()  # random growth may update at any iteration
        seen |= set(dsl.targets[0].active_positions().tolist())
    assert seen == set(range(16))


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_masks_of_pyg_linear_layers_are_in_the_state_dict(backend):
    """PyG's Linear writes its weight and bias only, so its DSL mask never reached state_dict(): a strict load
    failed on a missing key, and one with strict=False kept the fresh controller's mask, a different model."""
    from torch_geometric.nn import MLP

    def build():
        torch.manual_seed(0)
        model = MLP([16, 32, 1], norm=None)
        options = {"update_interval": 2, "targets": [r"lins\.0\.weight"], "backend": backend}
        return model, DynamicSparseLearning(model, 0.8, 20, **options)

    model, dsl = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    dsl.attach(optimizer)
    x = torch.randn(64, 16)
    for _ in range(6):
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
        dsl.step()
    assert any(update["moved"]["lins.0.weight"] for update in dsl.updates)
    fresh, _ = build()
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.lins[0].weight_mask, model.lins[0].weight_mask)
    torch.testing.assert_close(fresh(x), model(x))


@pytest.mark.parametrize("backend", ["sparse", "compact"])
def test_a_compiled_loss_over_row_lookups_is_not_compiled_anew_after_each_update(backend):
    """torch.compile guarded the row lookup on positions' version, which every update moves on: the function
    was compiled anew after each update until dynamo's recompile limit (8), with a warning mid-run."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = nn.ModuleDict({"user": nn.Embedding(20, 4), "item": nn.Embedding(30, 4)})
    dsl = DynamicSparseLearning(model, 0.8, total_steps=100, update_interval=2, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    dsl.attach(optimizer)

    def loss(users, items):
        return (model["user"](users) * model["item"](items)).sum().square()

    compiled = torch.compile(loss, backend="eager")
    generator = torch.Generator().manual_seed(0)
    graphs = []
    # a limit above the updates: a recompile after each would add graphs in every round
    with torch._dynamo.config.patch(recompile_limit=64):
        for _ in range(3):
            for _ in range(8):  # four updates
                optimizer.zero_grad()
                users, items = (
                    torch.randint(20, (8,), generator=generator),
                    torch.randint(30, (8,), generator=generator),
                )
                compiled(users, items).backward()
                optimizer.step()
                dsl.step()
            graphs.append(counters["stats"]["unique_graphs"])
    assert len(dsl.updates) == 12 and graphs[1] == graphs[2]


class _TableAndLayer(nn.Module):
    """A module of one's own: an embedding table and a linear layer."""

    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(12, 6)
        self.layer = nn.Linear(6, 4)


def test_the_default_targets_of_a_plain_module_are_its_tables_and_a_module_may_name_its_own():
    """targets=None is the model's dsl_targets where it has them (dslgraph.nn's models do), else the
    tables: a plain module's linear layer stays dense, one naming its own targets gets them."""
    plain = _TableAndLayer()
    dsl = DynamicSparseLearning(plain, 0.5, total_steps=10, update_interval=2)
    assert [t.name for t in dsl.targets] == ["table"] and type(plain.layer) is nn.Linear
    assert "targets=['table']" in repr(dsl)
    named = _TableAndLayer()
    named.dsl_targets = [r"layer\.weight"]
    dsl = DynamicSparseLearning(named, 0.5, total_steps=10, update_interval=2)
    assert [t.name for t in dsl.targets] == ["layer.weight"] and type(named.table) is nn.Embedding
    explicit = _TableAndLayer()
    explicit.dsl_targets = [r"layer\.weight"]
    dsl = DynamicSparseLearning(explicit, 0.5, total_steps=10, targets="tables", update_interval=2)
    assert [t.name for t in dsl.targets] == ["table"]  # targets given win over the model's
    neumf = NeuMF(12, 9, embedding_dim=4, mlp_layers=(8, 4))
    dsl = DynamicSparseLearning(neumf, 0.5, total_steps=10, update_interval=2)
    assert sorted(t.name for t in dsl.targets) == ["mlp_item", "mlp_user"]  # dslgraph train's, not 4 tables


@pytest.mark.parametrize(("own", "said"), [(None, None), ((), r"\(\)"), ([], r"\[\]"), (5, "5")])
def test_default_targets_that_a_module_leaves_empty_or_unset_are_refused_naming_its_dsl_targets(own, said):
    """A module whose dsl_targets is None has no choice of its own (its tables, as without one); an empty
    or malformed one was refused naming targets, which the caller never gave ("targets must be ..., got
    None")."""
    module = _TableAndLayer()
    module.dsl_targets = own
    if said is None:
        dsl = DynamicSparseLearning(module, 0.5, total_steps=10, update_interval=2)
        assert [t.name for t in dsl.targets] == ["table"]
        return
    with pytest.raises(
        ValueError, match=rf"^_TableAndLayer\.dsl_targets, the default targets, is {said}: pass"
    ):
        DynamicSparseLearning(module, 0.5, total_steps=10, update_interval=2)


def test_repr_is_one_line_saying_where_the_run_stands():
    # it gave no iteration, and its strings unquoted (schedule=cosine), unlike Trainer's repr
    dsl = DynamicSparseLearning(_TableAndLayer(), 0.5, total_steps=10, update_interval=2, backend="masked")
    assert repr(dsl) == (
        "DynamicSparseLearning(sparsity=0.5, targets=['table'], iteration=0/10, update_interval=2, "
        "schedule='cosine', growth='gradient', backend='masked')"
    )
