import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dslgraph.data import propagation_graph
from dslgraph.metrics import memory_report
from dslgraph.metrics.cost import cost_report
from dslgraph.nn import LightGCN
from dslgraph.sparse import DynamicSparseLearning


def _report(small_data, sparsity, backend="sparse"):
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=16)
    adj = propagation_graph(small_data)
    dsl = DynamicSparseLearning(model, sparsity, 100, backend=backend) if sparsity else None
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.loss(adj, torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])).backward()
    optimizer.step()  # Adam's moments exist from the first step
    return cost_report(model, adj, optimizer, 64, dsl)


def test_dense_model_is_its_own_reference(small_data):
    report = _report(small_data, 0.0)
    assert report["bytes_ratio"] == pytest.approx(1.0)
    assert report["training_savings"] == report["ideal_training_savings"] == 0.0
    assert report["macs"] == report["dense_macs"] == report["ideal_macs"]


def test_sparse_table_saves_bytes_and_first_layer_macs(small_data):
    report = _report(small_data, 0.8)
    # values (4 B) + int64 positions (8 B) + Adam (8 B) per active entry vs 12 B per dense entry
    active, entries = 224, 70 * 16  # 20% of the table
    assert report["active_entries"] == {"embedding": active}
    assert (report["parameter_bytes"], report["optimizer_state_bytes"]) == (12 * active, 8 * active)
    assert report["dense_parameter_bytes"] == 4 * entries
    assert report["dense_optimizer_state_bytes"] == 8 * entries
    assert report["bytes_ratio"] == pytest.approx(0.2 * 20 / 12)
    assert 0 < report["training_savings"] < 0.8 and report["naive_savings"] == pytest.approx(0.8)
    assert report["macs"]["inference_scoring"] == report["dense_macs"]["inference_scoring"]


def test_masked_table_saves_nothing_executed(small_data):
    report = _report(small_data, 0.8, backend="masked")
    assert report["bytes_ratio"] > 1  # the dense weight, its Adam moments and a byte of mask per entry
    assert report["training_savings"] == 0.0


def test_planned_propagation_holds_a_plan_and_the_compact_table_does_not(small_data):
    sparse, compact = _report(small_data, 0.8), _report(small_data, 0.8, backend="compact")
    assert sparse["workspace_bytes"] > 0 and compact["workspace_bytes"] == 0
    assert compact["bytes_ratio"] == sparse["bytes_ratio"]
    # the compact table's first layer runs as many multiply-adds as the dense one; the ideal count
    # is the same for both backends
    assert compact["macs"]["train_iteration"] > sparse["macs"]["train_iteration"]
    assert compact["ideal_macs"] == sparse["ideal_macs"]
    assert _report(small_data, 0.0)["workspace_bytes"] == 0


def test_masked_table_ideal_macs_count_its_active_entries(small_data):
    model = LightGCN(30, 40, embedding_dim=16)  # 3 layers over 70 nodes
    adj = propagation_graph(small_data)
    dsl = DynamicSparseLearning(model, 0.8, 100, backend="masked", update_interval=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    report = cost_report(model, adj, optimizer, 64, dsl)
    mask = model.embedding.weight_mask
    # the first layer multiplies each active entry of row j once per stored entry of row j (A is
    # symmetric); the layer mean adds the active entries of layer 0
    first = int((adj.crow_indices().diff() * mask.sum(1)).sum())
    nnz, stored, n, d, batch = int(mask.sum()), adj._nnz(), 70, 16, 64
    forward = first + 2 * stored * d + 3 * n * d + nnz + 5 * batch * d
    growth = (stored * d + n * d) / 10  # the dense gradient of a growth step, every 10 iterations
    assert report["ideal_macs"]["train_iteration"] == pytest.approx(2 * forward + growth)
    assert report["ideal_training_savings"] > 0 and report["training_savings"] == 0.0


class _SparseProductMacs(TorchDispatchMode):
    """Multiply-adds of the sparse CSR products actually executed (nnz x dense columns)."""

    def __init__(self):
        super().__init__()
        self.macs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        sparse = [t for t in tensors if t.layout == torch.sparse_csr]
        if sparse and func.overloadpacket.__name__ in ("mm", "addmm", "_sparse_addmm", "mv", "addmv"):
            dense = [t for t in tensors if t.layout == torch.strided and t.dim() > 0][-1]
            self.macs += sparse[0]._nnz() * (dense.size(1) if dense.dim() == 2 else 1)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("backend", ["sparse", "compact"])
def test_update_step_macs_are_the_products_an_update_runs(small_data, backend):
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=16)
    adj = propagation_graph(small_data)
    dsl = DynamicSparseLearning(model, 0.8, 100, backend=backend, update_interval=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    batch = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])
    counter = _SparseProductMacs()
    for step in range(2):
        optimizer.zero_grad()
        model.loss(adj, *batch).backward()
        optimizer.step()
        if step == 1:
            with counter:  # the prune-and-grow round: it rebuilds the dense gradient
                dsl.step()
        else:
            dsl.step()
    assert len(dsl.updates) == 1
    n, d = 70, 16
    # the update's products, plus the N d adds of the layer-0 gradient the count charges too
    assert model.macs(adj, 64)["update_step"] == counter.macs + n * d


def test_a_lightgcn_without_layers_costs_its_head_and_scoring_only(small_data):
    """With num_layers=0 the table is the final embedding: no layer mean (charged N d), and the dense
    gradient of a growth step is the table's own (charged an adjoint of a layer it never ran)."""
    adj = propagation_graph(small_data)
    model = LightGCN(30, 40, embedding_dim=16, num_layers=0)
    macs = model.macs(adj, 64, "dense")
    assert macs["train_forward"] == 5 * 64 * 16
    assert macs["inference"] == 30 * 40 * 16
    DynamicSparseLearning(model, 0.8, 100)
    assert model.macs(adj, 64)["train_forward"] == 5 * 64 * 16
    assert model.macs(adj, 64)["update_step"] == 70 * 16


@pytest.mark.parametrize(
    ("batch_size", "steps_per_epoch", "match"),
    [
        (-64, 10, "batch_size must be an integer >= 1, got -64"),  # negative MACs and savings from them
        (2.5, 10, r"batch_size must be an integer >= 1, got 2\.5"),
        (64, -1, "steps_per_epoch must be an integer >= 0, got -1"),  # written to metrics.json as given
        (64, 2.5, r"steps_per_epoch must be an integer >= 0, got 2\.5"),
    ],
)
def test_cost_report_refuses_a_batch_or_epoch_that_is_no_count(
    small_data, batch_size, steps_per_epoch, match
):
    model = LightGCN(30, 40, embedding_dim=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match=match):
        cost_report(
            model, propagation_graph(small_data), optimizer, batch_size, steps_per_epoch=steps_per_epoch
        )
    with pytest.raises(TypeError, match=r"model.input_graph\(data\) builds, .*not a HeteroData"):
        cost_report(model, small_data, optimizer, 64)  # 'HeteroData' has no attribute 'nnz'


def test_a_model_of_ones_own_gets_its_bytes_and_a_clear_error_for_macs():
    """cost_report on a model without ``macs`` failed with an AttributeError; the bytes it reports
    need no MAC count."""
    model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 4))
    dsl = DynamicSparseLearning(model, 0.8, 100, targets=["tables", r"1\.weight"])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    model(torch.arange(10)).sum().backward()
    optimizer.step()
    report = memory_report(model, optimizer, dsl)
    assert report["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert report["dense_parameter_bytes"] == 4 * (50 * 8 + 8 * 4 + 4)
    assert report["bytes_ratio"] < 0.5
    with pytest.raises(TypeError, match=r"Sequential has not: .*memory_report"):
        cost_report(model, None, optimizer, 64, dsl)


def test_a_dense_lightgcns_macs_and_bytes_by_hand(small_data):
    """LightGCN(30, 40, d=16, K=3) over A with nnz(A) stored entries, batch 64, as the table of
    dslgraph.metrics.cost counts it: each layer nnz(A) d, the layer mean 4 N d, the BPR head 5 B d; the
    backward pass as much again; scoring U I d."""
    report = _report(small_data, 0.0)
    nnz, n, d, batch = propagation_graph(small_data)._nnz(), 70, 16, 64
    propagation = 3 * nnz * d + 4 * n * d
    forward = propagation + 5 * batch * d
    macs = report["dense_macs"]
    assert macs["train_forward"] == macs["train_backward"] == forward
    assert macs["train_iteration"] == 2 * forward
    assert macs["inference"] == propagation + 30 * 40 * d
    # 4-byte weights, and Adam's two 4-byte moments per weight (its step counter is no per-weight state)
    assert report["parameter_bytes"] == 4 * n * d
    assert report["optimizer_state_bytes"] == 2 * 4 * n * d


def test_inference_savings_are_one_minus_the_executed_over_the_dense_count(small_data):
    """A masked table executes every inference product dense: it saves nothing, while the ideal count
    (only the first layer's products of active entries, and the layer mean's active entries) saves some."""
    model = LightGCN(30, 40, embedding_dim=16)
    adj = propagation_graph(small_data)
    dsl = DynamicSparseLearning(model, 0.8, 100, backend="masked")
    report = cost_report(model, adj, torch.optim.Adam(model.parameters(), lr=0.01), 64, dsl)
    mask = model.embedding.weight_mask
    first, active = int((adj.crow_indices().diff() * mask.sum(1)).sum()), int(mask.sum())
    nnz, n, d, scoring = adj._nnz(), 70, 16, 30 * 40 * 16
    dense = 3 * nnz * d + 4 * n * d + scoring
    ideal = first + 2 * nnz * d + 3 * n * d + active + scoring
    assert report["inference_savings"] == 0.0
    assert report["ideal_inference_savings"] == pytest.approx(1 - ideal / dense)
    assert 0 < report["ideal_inference_savings"] < report["naive_savings"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_the_dense_reference_holds_weights_and_moments_in_the_models_dtype(dtype):
    """The dense reference took 4-byte weights and 8 bytes of Adam state per sparsified entry: a float64
    model's masked table, which saves nothing, reported 2x dense; a bfloat16 one reported a saving."""
    dense_bytes = (50 * 8 + 8 * 4 + 4) * torch.empty((), dtype=dtype).element_size()
    for backend in ("sparse", "masked"):
        model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 4)).to(dtype)
        dsl = DynamicSparseLearning(model, 0.5, 100, targets=["tables"], backend=backend)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        dsl.attach(optimizer)
        model(torch.arange(10)).sum().backward()
        optimizer.step()
        report = memory_report(model, optimizer, dsl)
        assert report["dense_parameter_bytes"] == dense_bytes
        assert (
            report["dense_optimizer_state_bytes"] == 2 * dense_bytes
        )  # Adam's moments in the weights' dtype
        mask = 50 * 8  # a byte per weight
        if backend == "masked":
            assert report["bytes_ratio"] == pytest.approx((3 * dense_bytes + mask) / (3 * dense_bytes))


@pytest.mark.parametrize("case", ["adam before its first step", "sgd", "frozen table"])
def test_the_dense_reference_holds_the_optimizer_state_the_optimizer_keeps(case):
    """Adam's two moments were charged to the dense reference whatever the optimizer kept: a masked
    table under SGD, before Adam's first step, or frozen, reported a saving it does not have."""
    model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 4))
    dsl = DynamicSparseLearning(model, 0.8, 100, targets=["tables"], backend="masked")
    optimizer = (
        torch.optim.SGD(model.parameters(), lr=0.01)
        if case == "sgd"
        else torch.optim.Adam(model.parameters())
    )
    dsl.attach(optimizer)
    if case != "adam before its first step":
        model[0].requires_grad_(case != "frozen table")
        model(torch.arange(10)).sum().backward()
        optimizer.step()
    report = memory_report(model, optimizer, dsl)
    state = 2 * 4 * (8 * 4 + 4) if case == "frozen table" else 0  # the linear layer's moments
    assert report["optimizer_state_bytes"] == report["dense_optimizer_state_bytes"] == state
    dense = 4 * (50 * 8 + 8 * 4 + 4) + state
    assert report["bytes_ratio"] == pytest.approx((dense + 400) / dense)  # the mask's byte a weight


@pytest.mark.parametrize("optimizer", [None, "parameters"])
def test_memory_report_refuses_what_is_no_optimizer(optimizer):
    """memory_report(model, None) or (model, model.parameters()) failed with "'NoneType' object has no
    attribute 'state'"."""
    model = torch.nn.Linear(3, 2)
    optimizer = model.parameters() if optimizer else None
    with pytest.raises(
        TypeError, match=r"optimizer must be the torch.optim.Optimizer .*, got (NoneType|generator)"
    ):
        memory_report(model, optimizer)


@pytest.mark.parametrize(
    ("update_interval", "t_end", "updates"),
    [(10, None, 10), (30, None, 3), (10, 50, 5), (101, None, 0)],  # 101: a static mask's, after the last
)
def test_growth_steps_are_counted_as_the_run_makes_them(small_data, update_interval, t_end, updates):
    # spread over update_interval, a run with t_end or a static mask was charged updates it never ran
    model = LightGCN(30, 40, embedding_dim=16)
    adj = propagation_graph(small_data)
    dsl = DynamicSparseLearning(model, 0.8, 100, update_interval=update_interval, t_end=t_end)
    report = cost_report(model, adj, torch.optim.Adam(model.parameters(), lr=0.01), 64, dsl)
    # a sparse table's growth step costs something in both counts (the masked backend's executed count,
    # which this test read with the dense one, charges none: any number of updates passed)
    for count, macs in (("executed", report["macs"]), ("ideal", report["ideal_macs"])):
        step = model.macs(adj, 64, count)
        assert step["update_step"] > 0
        assert macs["train_iteration"] == pytest.approx(
            step["train_iteration"] + step["update_step"] * updates / 100
        )
    assert report["dense_macs"] == model.macs(adj, 64, "dense")  # a dense model grows nothing


@pytest.mark.parametrize("growth", ["random", "momentum", "gradient"])
def test_growth_without_a_gradient_is_charged_no_update_step(small_data, growth):
    """Random and momentum growth rebuild no dense gradient (the update runs no product), so the run's
    iterations carry no update step; gradient growth carries one per ΔT."""
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=16)
    adj = propagation_graph(small_data)
    backend = "masked" if growth == "momentum" else "sparse"  # momentum growth reads dense moments
    dsl = DynamicSparseLearning(model, 0.8, 100, update_interval=1, growth=growth, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    model.loss(adj, torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])).backward()
    optimizer.step()
    counter = _SparseProductMacs()
    with counter:
        dsl.step()  # the update
    assert len(dsl.updates) == 1
    step = model.macs(adj, 64)
    report = cost_report(model, adj, optimizer, 64, dsl)
    if backend == "sparse":
        assert counter.macs == (step["update_step"] - 70 * 16 if growth == "gradient" else 0)
    # the masked backend's executed count charges its growth step nothing: the ideal one tells
    for count, macs in (("executed", report["macs"]), ("ideal", report["ideal_macs"])):
        step = model.macs(adj, 64, count)
        charged = step["update_step"] if growth == "gradient" else 0
        assert macs["train_iteration"] == pytest.approx(step["train_iteration"] + charged)


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
def test_training_macs_are_the_sparse_products_an_iteration_runs(small_data, backend):
    """A training iteration's executed count is the sparse products torch runs (forward and backward)
    plus the layer mean and the BPR head, which run none. A sparse table's first layer costs its plan's
    entries (each edge times the active entries of its source row), not the density times nnz(A) d,
    which no other test told apart from it; a compact or masked table's first layer costs nnz(A) d."""
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=16)  # 3 layers over 70 nodes
    adj = propagation_graph(small_data)
    DynamicSparseLearning(model, 0.8, 100, backend=backend, seed=1)
    counter = _SparseProductMacs()
    with counter:
        model.loss(adj, torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])).backward()
    row_active = (model.embedding.weight != 0).sum(1)
    nnz, n, d, batch = adj._nnz(), 70, 16, 2
    first = int((adj.crow_indices().diff() * row_active).sum()) if backend == "sparse" else nnz * d
    assert first != round(0.2 * nnz * d)
    assert counter.macs == 2 * (first + 2 * nnz * d)
    # the mean of the 4 layers: 3 dense sums and a division (a stored table is summed as its dense
    # layer 0); ideally a stored or masked table's sum adds only its active entries
    mean = 4 * n * d
    assert model.macs(adj, batch)["train_iteration"] == counter.macs + 2 * (mean + 5 * batch * d)
    ideal = model.macs(adj, batch, count="ideal")["train_iteration"]
    ideal_first = int((adj.crow_indices().diff() * row_active).sum())
    ideal_mean = 3 * n * d + int(row_active.sum())
    assert ideal == 2 * (ideal_first + 2 * nnz * d + ideal_mean + 5 * batch * d)


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_another_models_controller_is_refused(backend):
    model, other = LightGCN(30, 40, embedding_dim=16), LightGCN(30, 40, embedding_dim=16)
    dsl = DynamicSparseLearning(other, 0.8, 100, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    # reported sparsity 0.8 and a dense reference larger than the dense model, without a word
    with pytest.raises(ValueError, match="dsl's target 'embedding' is not among the model's parameters"):
        memory_report(model, optimizer, dsl)
    with pytest.raises(TypeError, match="dsl must be the DynamicSparseLearning .*, got str"):
        memory_report(model, optimizer, "dsl")  # an AttributeError of its targets


def test_reported_sparsity_is_the_achieved_one_not_the_requested_one():
    """A table too small for the requested sparsity to come out exactly: 3 x 3 at 0.5 keeps round(4.5) = 4
    entries, so 5 of 9 are zero, which the report says (and cost_report's naive savings, which are its
    sparsity)."""
    model = torch.nn.Sequential(torch.nn.Embedding(3, 3))
    dsl = DynamicSparseLearning(model, 0.5, 10)
    report = memory_report(model, torch.optim.Adam(model.parameters()), dsl)
    assert dsl.active_counts() == {"0": 4}
    assert report["sparsity"] == pytest.approx(5 / 9)


def test_steps_per_epoch_is_an_optional_keyword_echoed_only_where_given(small_data):
    """steps_per_epoch counts in no cost: it was a required argument, echoed into the report; it is a keyword
    the report echoes where given (dslgraph train's metrics.json keeps it). The positional call of before,
    whose steps_per_epoch now lands on dsl, is refused naming the keyword."""
    model = LightGCN(30, 40, embedding_dim=16)
    dsl = DynamicSparseLearning(model, 0.5, 100, update_interval=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    adj = propagation_graph(small_data)
    report = cost_report(model, adj, optimizer, 64, dsl)
    assert "steps_per_epoch" not in report
    given = cost_report(model, adj, optimizer, 64, dsl, steps_per_epoch=np.int64(10))
    assert given == report | {"steps_per_epoch": 10} and type(given["steps_per_epoch"]) is int
    assert "steps_per_epoch" not in cost_report(model, adj, optimizer, 64)
    assert cost_report(model, adj, optimizer, 64, steps_per_epoch=0)["steps_per_epoch"] == 0  # a count
    with pytest.raises(
        TypeError, match=r"got 10: steps_per_epoch is a keyword argument, .*steps_per_epoch=10\)"
    ):
        cost_report(model, adj, optimizer, 64, 10)
    with pytest.raises(TypeError, match="positional arguments"):
        cost_report(model, adj, optimizer, 64, 10, dsl)
