"""What every model of ``dslgraph.nn.MODELS`` shares."""

import copy
import dataclasses
import inspect
import itertools
import re
import warnings

import numpy as np
import pytest
import torch
from torch.nn.utils import prune

from dslgraph.data import make_interaction_data
from dslgraph.metrics import RankingEvaluator
from dslgraph.metrics.ranking import METRICS
from dslgraph.nn import MODELS, LightGCN
from dslgraph.nn.base import (
    Recommender,
    check_probability,
    check_sizes,
    check_weights,
    table_row_degrees,
    table_sides,
)
from dslgraph.sparse import DynamicSparseLearning
from dslgraph.train import TrainConfig
from dslgraph.train.trainer import make_batches


@pytest.mark.parametrize("name", sorted(MODELS))
def test_only_the_numbers_of_users_and_items_are_positional(name):
    # PyG's LightGCN(num_nodes, embedding_dim, num_layers) written positionally, LightGCN(70, 64, 3), built
    # 70 users and 64 items of dimension 3 here without a word
    cls = MODELS[name]
    kinds = {p.name: p.kind for p in inspect.signature(cls).parameters.values()}
    positional = [name for name, kind in kinds.items() if kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == ["num_users", "num_items"]
    assert set(kinds.values()) == {inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY}
    with pytest.raises(TypeError, match="takes 3 positional arguments but 4 were given"):
        cls(70, 64, 3)


def _numpy(value):
    """``value`` as the NumPy scalar a grid of settings gives (``np.int32`` overflows soonest)."""
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, int):
        return np.int32(value)
    return np.float32(value) if isinstance(value, float) else value


@pytest.mark.parametrize("name", sorted(MODELS))
def test_numpy_numbers_are_taken_and_kept_as_python_ones(name):
    # ConvNCF(embedding_dim=np.int64(8)) failed with an AttributeError; the others kept np.int32 sizes
    cls = MODELS[name]
    defaults = {p.name: p.default for p in inspect.signature(cls).parameters.values()}
    given = {
        arg: _numpy(default) for arg, default in defaults.items() if arg not in ("num_users", "num_items")
    }
    given.pop("std", None)  # the normal init's, which no constructor checks (left as given)
    model = cls(np.int32(30), np.int32(40), **given)
    kept = {
        f"{module_name}.{attr}": value
        for module_name, module in model.named_modules()
        for attr, value in vars(module).items()
        if isinstance(value, np.generic)
    }
    assert not kept and type(model.num_users) is int


@pytest.mark.parametrize("name", sorted(MODELS))
def test_sizes_counted_from_an_index_are_taken_as_python_ints(name):
    # num_users = index[0].max() + 1 is a 0-dim tensor: refused, where RankingEvaluator took it
    model = MODELS[name](torch.tensor(30), torch.tensor(40))
    assert (type(model.num_users), type(model.num_items)) == (int, int)
    assert (model.num_users, model.num_items) == (30, 40)


def test_numpy_int32_sizes_do_not_overflow_in_macs():
    # 60,000 x 50,000 x 8 scoring MACs in np.int32 came out as -1,766,236,256
    users, items = 60_000, 50_000
    index = torch.stack([torch.arange(100), torch.arange(100)])
    data = make_interaction_data(users, items, index[:, 10:], index[:, :10])
    macs = [
        model.macs(model.input_graph(data), 64)["inference"]
        for model in (
            LightGCN(np.int32(users), np.int32(items), embedding_dim=8),
            LightGCN(users, items, embedding_dim=8),
        )
    ]
    assert macs[0] == macs[1] > users * items * 8


def test_size_and_weight_checks_return_python_numbers_and_keep_their_messages():
    assert check_sizes(a=np.int32(2), b=3) == (2, 3) and type(check_sizes(a=np.int64(2))[0]) is int
    assert (
        check_weights(w=np.float32(0.5), v=1) == (0.5, 1.0) and type(check_weights(w=np.int8(1))[0]) is float
    )
    for bad in (np.float64(2.0), np.True_, np.int64(0)):
        with pytest.raises(ValueError, match=rf"^size must be an integer >= 1, got {re.escape(repr(bad))}$"):
            check_sizes(size=bad)
    nan = re.escape(repr(np.float64("nan")))  # np.float64(nan) from NumPy 2 on, nan before
    with pytest.raises(ValueError, match=rf"^w must be a finite number >= 0, got {nan}$"):
        check_weights(w=np.float64("nan"))
    assert check_probability("dropout", np.float32(0.25)) == 0.25


@pytest.mark.parametrize("bad", [True, False, "0.5", None])
def test_weights_and_probabilities_refuse_bools_and_text(bad):
    # a bool is an int to Python: True passed as a weight of 1 and False as a drop-out of 0; text failed the
    # probability's range check with a TypeError
    with pytest.raises(ValueError, match=rf"^w must be a finite number >= 0, got {re.escape(repr(bad))}$"):
        check_weights(w=bad)
    with pytest.raises(
        ValueError, match=rf"^dropout must be a number in \[0, 1\), got {re.escape(repr(bad))}$"
    ):
        check_probability("dropout", bad)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_macs_refuse_a_batch_size_that_is_no_positive_integer_and_take_numpy_ones(name):
    # a negative or fractional batch gave negative or fractional MACs; np.int32(8192) overflowed UltraGCN's
    users, items = 60_000, 50_000
    index = torch.stack([torch.arange(100), torch.arange(100)])
    data = make_interaction_data(users, items, index[:, 10:], index[:, :10])
    options = {"ultragcn": {"num_neighbors": 0}, "multvae": {"hidden_channels": 8, "latent_dim": 4}}.get(
        name, {}
    )
    model = MODELS[name](users, items, **options)
    graph = model.input_graph(data)
    for batch_size in (0, -64, 2.5, True):
        with pytest.raises(
            ValueError, match=f"batch_size must be an integer >= 1, got {re.escape(repr(batch_size))}"
        ):
            model.macs(graph, batch_size)
    assert model.macs(graph, np.int32(8192)) == model.macs(graph, 8192)
    for count in ("Ideal", "all"):  # counted as another count, silently
        with pytest.raises(
            ValueError, match=rf"count must be one of \('dense', 'executed', 'ideal'\), got '{count}'"
        ):
            model.macs(graph, 8, count)


SMALL = {
    "ultragcn": {"num_neighbors": 2, "num_negatives": 2},
    "convncf": {"embedding_dim": 4, "channels": 2},
    "multvae": {"hidden_channels": 8, "latent_dim": 4},
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_ids_in_uint8_are_refused_not_indexed_by_as_a_mask(name, small_data):
    # torch indexes by a uint8 tensor as by a boolean mask: recommend gave LightGCN's users [1, 1, 0, 3] three
    # rows, those of users 0, 1 and 3 (the ids that are not 0), without a word
    model = MODELS[name](30, 40, **SMALL.get(name, {})).eval()
    graph = model.input_graph(small_data)
    users = torch.tensor([1, 1, 0, 3], dtype=torch.uint8)
    message = r"^users must be int64 or int32 ids, got a torch.uint8 tensor of shape \[4\], .*users.long\(\)$"
    with pytest.raises(ValueError, match=message):
        model.recommend(graph, users, k=2)
    with pytest.raises(ValueError, match=r"^items must be int64 or int32 ids, got a torch.int16 tensor"):
        model.scorer(graph)(users.long(), torch.zeros(4, 3, dtype=torch.int16))
    assert model.recommend(graph, users.int(), k=2).shape == (4, 2)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_input_graph_refuses_training_interactions_outside_the_model(name):
    # items numbered after the users (PyG's one id space) failed deep in torch ("index out of range in
    # self"), or built CDAE's and Mult-VAE's rows with columns outside the matrix
    data = make_interaction_data(5, 6, torch.tensor([[0, 1, 2, 4], [0, 3, 1, 5]]), torch.tensor([[3], [2]]))
    data["user", "to", "item"].edge_index[1] += 5
    model = MODELS[name](5, 6, **SMALL.get(name, {}))
    message = (
        r"^data\[\('user', 'to', 'item'\)\].edge_index must hold users in \[0, num_users=5\) and items in "
        r"\[0, num_items=6\), got users 0..4, items 5..10$"
    )
    with pytest.raises(ValueError, match=message):
        model.input_graph(data)


def _graph_tensors(graph) -> list[torch.Tensor]:
    """The tensors of a model's graph input: a CSR matrix (as dense) or UltraGCN's fields."""
    if isinstance(graph, torch.Tensor):
        return [graph.to_dense()]
    return [getattr(graph, field.name) for field in dataclasses.fields(graph)]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_graph_input_is_made_on_the_device_of_the_data_not_the_default_one(name, small_data):
    # UltraGCN's neighbours were made on the default device, its betas on the data's: on a GPU its loss
    # indexed CPU neighbours by GPU items; another default device (meta) shows where each is made
    model = MODELS[name](30, 40)
    expected = _graph_tensors(model.input_graph(small_data))
    with torch.device("meta"):
        made = _graph_tensors(model.input_graph(small_data))
    for got, want in zip(made, expected, strict=True):
        assert got.device.type == "cpu"
        torch.testing.assert_close(got, want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_model_on_cuda_trains_on_data_moved_to_cuda_and_scores_cpu_ids(name, small_data):
    # input_graph(data.to("cuda")) failed for every model (CPU degrees, CPU neighbours), and CDAE's and
    # Mult-VAE's scorers failed on CPU user ids in repeat_interleave, where recommend moved them itself
    torch.manual_seed(0)
    model = MODELS[name](30, 40).eval()
    on_cpu = copy.deepcopy(model)
    model.to("cuda")
    data = small_data.to("cuda")
    graph = model.input_graph(data)
    assert all(t.is_cuda for t in _graph_tensors(graph))
    users = torch.tensor([0, 3, 7, 29])  # on the CPU, as a caller holds them
    scores = model.scorer(graph)(users)
    assert scores.is_cuda
    expected = on_cpu.scorer(on_cpu.input_graph(small_data))(users)
    torch.testing.assert_close(scores.cpu(), expected, rtol=1e-2, atol=1e-3)  # cuDNN convolves in TF32
    # an evaluator of the CPU data hands CPU ids to the score function (CDAE and Mult-VAE failed on them)
    metrics = RankingEvaluator.from_data(small_data, ks=(5,))(model.scorer(graph))
    assert set(metrics) == {f"{metric}@5" for metric in METRICS} and all(
        0 <= v <= 1 for v in metrics.values()
    )
    config = TrainConfig(batch_size=16, progress=False)
    batch = next(iter(make_batches(model, data, config, torch.Generator().manual_seed(0), "cuda")))
    assert all(part.is_cuda for part in batch)
    model.train()
    assert torch.isfinite(model.loss(graph, *batch, reg_weight=1e-3))


def _dsl_losses(name: str, backend: str, data, compiler: str | None) -> list[float]:
    """The losses of six steps of model ``name`` under DSL (``backend``, three updates), its loss compiled by
    ``torch.compile(backend=compiler)`` or not (``None``)."""
    torch.manual_seed(0)
    model = MODELS[name](30, 40)
    dsl = DynamicSparseLearning(model, 0.5, 6, targets=model.dsl_targets, update_interval=2, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    loss_fn = model.loss if compiler is None else torch.compile(model.loss, backend=compiler)
    graph = model.input_graph(data)
    config = TrainConfig(batch_size=16, progress=False)
    batches = make_batches(model, data, config, torch.Generator().manual_seed(1))
    losses = []
    while len(losses) < 6:  # CDAE's and Mult-VAE's epochs are two batches of users
        for batch in itertools.islice(batches, 6 - len(losses)):
            optimizer.zero_grad()
            loss = loss_fn(graph, *batch)
            loss.backward()
            optimizer.step()
            dsl.step()
            losses.append(loss.item())
    assert len(dsl.updates) == 3
    return losses


@pytest.mark.parametrize(
    "name, backend",
    [("lightgcn", "compact"), ("lightgcn", "masked"), *((name, "sparse") for name in sorted(MODELS))],
)
def test_a_model_under_dsl_trains_under_torch_compile_as_without(name, backend, small_data):
    # LightGCN's sparse propagation failed inside torch.compile's tracing (an IndexError in PyG's
    # index_select override): it runs outside the compiled graph. aot_eager traces forward and backward as
    # the default compiler does, without its code generation (a C++ compiler, minutes of a test run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.compile's notes on graph breaks and recompilations
        compiled = _dsl_losses(name, backend, small_data, "aot_eager")
    assert compiled == pytest.approx(_dsl_losses(name, backend, small_data, None), rel=1e-5)


@pytest.mark.parametrize("backend", ["sparse", "compact", "masked"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_repr_of_a_model_under_dsl_gives_its_sparsity(name, backend):
    """A model a DSL controller sparsified printed as the same model dense (LightGCN's showed a sparse table's
    density, and nothing of a masked one's)."""
    model = MODELS[name](30, 40)
    assert "sparsity" not in repr(model)
    dsl = DynamicSparseLearning(model, 0.8, 10, targets=model.dsl_targets, update_interval=5, backend=backend)
    text = repr(model)
    assert text.startswith(f"{type(model).__name__}(30, 40, ") and "\n" not in text
    assert text.endswith(f", sparsity={dsl.achieved_sparsity():.3f})")


@pytest.mark.parametrize("backend", [None, "masked"])
def test_a_sparse_state_is_refused_by_a_model_dense_here(backend):
    """With strict=False torch skipped a sparse table's values and positions as unexpected keys: the
    model stayed untrained, without a word. Its dense_state_dict() loads; a DSL-masked model loads them."""
    torch.manual_seed(0)
    trained = LightGCN(9, 8)
    dsl = DynamicSparseLearning(trained, 0.5, total_steps=10, update_interval=2)
    model = LightGCN(9, 8)
    if backend is not None:
        DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=2, backend=backend)
    if backend is None:
        message = r"holds 'embedding\.values' and 'embedding\.positions' .* where 'embedding' is a dense"
        with pytest.raises(ValueError, match=message + r".*DynamicSparseLearning\.dense_state_dict\(\)"):
            model.load_state_dict(trained.state_dict(), strict=False)
        model.load_state_dict(dsl.dense_state_dict())
    else:  # a DSL-masked table takes them as its weight and mask
        model.load_state_dict(trained.state_dict())
    assert torch.equal(model.embedding.weight, trained.embedding.to_dense())
    sparse = LightGCN(9, 8)
    DynamicSparseLearning(sparse, 0.5, total_steps=10, update_interval=2)
    sparse.load_state_dict(trained.state_dict())
    assert torch.equal(sparse.embedding.to_dense(), trained.embedding.to_dense())


@pytest.mark.parametrize("name", ["lightgcn", "neumf", "multvae"])
def test_a_masked_state_is_refused_by_a_model_dense_here_as_a_sparse_one_is(name):
    """A backend="masked" model's state dict into a dense model failed with torch's bare 'Unexpected
    key(s) in state_dict: "embedding.weight_mask"', where the sparse backends' named dense_state_dict();
    it names it too. Its dense_state_dict() loads, and so does the state with strict=False (the weights are
    zero where masked); a masked or sparse model of the same targets loads it."""
    torch.manual_seed(0)
    trained = MODELS[name](9, 8)
    dsl = DynamicSparseLearning(trained, 0.5, total_steps=10, update_interval=2, backend="masked")
    mask = next(key for key in trained.state_dict() if key.endswith("_mask"))
    model = MODELS[name](9, 8)
    message = rf"holds '{re.escape(mask)}' \(the mask of a DSL-masked weight, backend='masked'\), where"
    with pytest.raises(ValueError, match=message + r".*DynamicSparseLearning\.dense_state_dict\(\)"):
        model.load_state_dict(trained.state_dict())
    model.load_state_dict(dsl.dense_state_dict())
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in model.state_dict().items())
    loose = MODELS[name](9, 8)
    loose.load_state_dict(trained.state_dict(), strict=False)
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in loose.state_dict().items())
    for backend in ("masked", "sparse"):
        other = MODELS[name](9, 8)
        DynamicSparseLearning(other, 0.5, total_steps=10, update_interval=2, backend=backend, seed=3)
        other.load_state_dict(trained.state_dict())


def test_a_masked_weight_of_the_model_itself_is_refused_as_one_of_its_modules():
    class Own(Recommender):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(4, 3))

    trained = Own()
    DynamicSparseLearning(
        trained, 0.5, total_steps=10, update_interval=2, backend="masked", targets=["weight"]
    )
    with pytest.raises(
        ValueError, match=r"holds 'weight_mask' .* where 'weight' of 'the model' is dense here"
    ):
        Own().load_state_dict(trained.state_dict())


def test_masks_that_are_no_dsl_model_s_get_torch_s_error():
    """Only a mask beside the weight of a module dense here is DSL's: torch's pruning keeps ``weight_orig``
    beside it (and no weight), and a weight or module this model lacks is another model's."""
    pruned = LightGCN(9, 8)
    prune.random_unstructured(pruned.embedding, "weight", amount=0.5)
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) .*embedding\.weight_orig"):
        LightGCN(9, 8).load_state_dict(pruned.state_dict())
    model = LightGCN(9, 8)
    for name in ("embedding.extra", "other.weight"):
        state = model.state_dict() | {name: torch.ones(2), f"{name}_mask": torch.ones(2)}
        with pytest.raises(RuntimeError, match=rf"Unexpected key\(s\) in state_dict: \"{re.escape(name)}\""):
            model.load_state_dict(state)


def test_a_dense_parameter_named_values_is_loaded_as_any_other():
    """Only ``values`` beside ``positions`` (a sparse module's entries) is refused for a dense module."""

    class Own(Recommender):
        def __init__(self):
            super().__init__()
            self.values = torch.nn.Parameter(torch.zeros(3))

    model, state = Own(), {"values": torch.ones(3)}
    model.load_state_dict(state)
    assert torch.equal(model.values.detach(), torch.ones(3))


def test_table_sides_place_rows_only_where_the_table_size_tells_the_side():
    assert table_sides(70, 30, 40) == {"user": slice(0, 30), "item": slice(30, 70)}  # LightGCN's
    assert table_sides(30, 30, 40) == {"user": slice(0, 30)}
    assert table_sides(40, 30, 40) == {"item": slice(0, 40)}
    assert table_sides(60, 30, 30) == {"user": slice(0, 30), "item": slice(30, 60)}
    # a table of 30 rows with 30 users and 30 items: either side's, so neither's degrees
    assert table_sides(30, 30, 30) == {} and table_sides(8, 30, 40) == {}


def test_table_row_degrees_are_each_rows_users_or_items_training_degree():
    # users 0, 1, 2 have 2, 1, 0 training items; items 0..3 have 1, 2, 0, 0 users
    train = torch.tensor([[0, 0, 1], [0, 1, 1]])
    data = make_interaction_data(3, 4, train, torch.tensor([[2], [3]]))
    user, item = torch.tensor([2, 1, 0]), torch.tensor([1, 2, 0, 0])
    degrees = table_row_degrees(LightGCN(3, 4, embedding_dim=2), data)
    assert list(degrees) == ["embedding"] and degrees["embedding"].tolist() == [*user, *item]
    ultragcn = table_row_degrees(MODELS["ultragcn"](3, 4, embedding_dim=2, num_neighbors=1), data)
    assert ultragcn["user_embedding"].tolist() == user.tolist()
    assert ultragcn["item_embedding"].tolist() == item.tolist()
