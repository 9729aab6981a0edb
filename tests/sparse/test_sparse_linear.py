import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from dslgraph.sparse import SparseEmbedding, SparseLinear


def _twins(density: float, device, bias: bool = True):
    """A SparseLinear and an nn.Linear holding the same weights."""
    torch.manual_seed(0)
    dense = nn.Linear(12, 7, bias=bias)
    sparse = SparseLinear.from_linear(dense, density)
    with torch.no_grad():
        dense.weight.copy_(sparse.weight)
    if bias:
        dense.bias = nn.Parameter(sparse.bias.detach().clone())
    return sparse.to(device), dense.to(device)


@pytest.mark.parametrize("density", [0.1, 0.5, 1.0])
def test_matches_dense_outputs_and_gradients(device, density):
    sparse, dense = _twins(density, device)
    x = torch.randn(5, 3, 12, device=device)
    x_sparse, x_dense = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = sparse(x_sparse)
    torch.testing.assert_close(out, dense(x_dense), atol=1e-6, rtol=1e-5)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    (dense(x_dense) * weights).sum().backward()
    torch.testing.assert_close(x_sparse.grad, x_dense.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(sparse.bias.grad, dense.bias.grad)
    table = sparse.sparse_weight
    expected = dense.weight.grad.reshape(-1)[table.positions]
    torch.testing.assert_close(table.values.grad, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
def test_dense_gradient_of_the_weight_is_rebuilt_in_chunks(device, chunk_rows):
    sparse, dense = _twins(0.3, device, bias=False)
    x = torch.randn(9, 12, device=device)
    sparse.sparse_weight.probing = True
    sparse(x).pow(2).sum().backward()
    dense(x).pow(2).sum().backward()
    rebuilt = torch.cat([block for _, block in sparse.sparse_weight.dense_grad_chunks(chunk_rows)])
    torch.testing.assert_close(rebuilt, dense.weight.grad, atol=1e-5, rtol=1e-5)


def test_positions_change_rebuilds_the_product():
    sparse, _ = _twins(0.5, "cpu", bias=False)
    x = torch.randn(4, 12)
    sparse(x)  # builds and caches the CSR structures
    table = sparse.sparse_weight
    with torch.no_grad():
        free = torch.ones(7 * 12, dtype=torch.bool)
        free[table.positions] = False
        table.positions[0] = free.nonzero()[0, 0]
        table.values[0] = 2.0
    table.positions_changed()
    torch.testing.assert_close(sparse(x), x @ sparse.weight.T)


def test_bad_inputs_fail_clearly():
    with pytest.raises(ValueError, match="density must be in"):
        SparseLinear(4, 3, density=0.0)
    layer = SparseLinear(4, 3, density=0.5)
    # the shape of x flattened to 2-D was named ("[B, 4], got (6, 5)"), a 0-dim x failed with an IndexError
    for x in (torch.randn(2, 5), torch.randn(2, 3, 5), torch.tensor(1.0)):
        with pytest.raises(ValueError, match=rf"shape \[\.\.\., 4\], got {re.escape(str(tuple(x.shape)))}"):
            layer(x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.long])
def test_inputs_of_another_dtype_are_refused_naming_both(dtype):
    """As nn.Linear refuses them: torch's CSR product said "expected scalar type Double but found Float",
    or for integer inputs "addmm_out_sparse_csr_impl_mkl" not implemented for 'Long'."""
    with pytest.raises(TypeError, match=f"the inputs are {dtype}, the weight torch.float32: convert one"):
        SparseLinear(4, 3, density=0.5)(torch.ones(2, 4, dtype=dtype))


def test_from_linear_keeps_a_double_weight_double():
    dense = nn.Linear(12, 7).double()
    sparse = SparseLinear.from_linear(dense, 1.0)
    assert sparse.sparse_weight.values.dtype == torch.float64
    x = torch.randn(4, 12, dtype=torch.float64)
    torch.testing.assert_close(sparse(x), dense(x), rtol=1e-12, atol=1e-12)


def test_autocast_runs_the_sparse_product_in_the_table_dtype():
    torch.manual_seed(0)
    dense = nn.Linear(12, 7)
    sparse = SparseLinear.from_linear(dense, 1.0)
    x = torch.randn(4, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sparse(x)  # the CSR product has no bfloat16 CPU kernel: it failed deep inside torch
        from_half = sparse(x.bfloat16())  # what an autocast layer before it returns
    assert out.dtype == from_half.dtype == torch.float32
    torch.testing.assert_close(out, dense(x))
    torch.testing.assert_close(from_half, dense(x.bfloat16().float()))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_the_cpu_fails_naming_the_way_out(dtype):
    sparse = SparseLinear.from_linear(nn.Linear(12, 7).to(dtype), 0.5)
    with pytest.raises(TypeError, match=f"in {dtype} cannot run on the CPU: .* backend='masked'"):
        sparse(torch.randn(4, 12, dtype=dtype))


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
def test_takes_sparse_inputs_as_nn_linear_does(layout):
    """Interaction rows given as a sparse tensor failed inside reshape ('not implemented for sparse')."""
    sparse, dense = _twins(0.5, "cpu")
    x = torch.randn(4, 12).relu()
    rows = x.to_sparse() if layout == torch.sparse_coo else x.to_sparse_csr()
    torch.testing.assert_close(sparse(rows), dense(rows), atol=1e-6, rtol=1e-5)


def test_gradcheck_of_weight_and_input():
    """The CSR forward and the SDDMM / transposed-CSR backward against finite differences in float64."""
    torch.manual_seed(0)
    layer = SparseLinear(6, 5, density=0.4).double()
    values = layer.sparse_weight.values.detach().clone().requires_grad_()
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)

    def output(values, x):
        return torch.func.functional_call(layer, {"sparse_weight.values": values}, (x,))

    assert torch.autograd.gradcheck(output, (values, x))


def test_weight_gradient_without_an_input_gradient_and_slots_in_no_order(shuffle_slots):
    """The weight's gradient when the input needs none (a model's first layer), and both gradients of
    a weight whose slots are in no position order: each active value gets its own entry's."""
    layer = SparseLinear(12, 7, density=0.5, generator=torch.Generator().manual_seed(0))
    shuffle_slots(layer.sparse_weight)
    weight = layer.weight.detach().requires_grad_()
    for needs_input_grad in (False, True):
        layer.sparse_weight.values.grad, weight.grad = None, None
        x = torch.randn(9, 12, requires_grad=needs_input_grad)
        x_dense = x.detach().clone().requires_grad_(needs_input_grad)
        out_weights = torch.randn(9, 7)
        (layer(x) * out_weights).sum().backward()
        ((x_dense @ weight.T + layer.bias) * out_weights).sum().backward()
        expected = weight.grad.reshape(-1)[layer.sparse_weight.positions]
        torch.testing.assert_close(layer.sparse_weight.values.grad, expected, atol=1e-6, rtol=1e-5)
        if needs_input_grad:
            torch.testing.assert_close(x.grad, x_dense.grad, atol=1e-6, rtol=1e-5)


def test_input_gradient_of_a_frozen_layer():
    """A frozen layer (fine-tuning the layers around it) passes the input its gradient, and takes none."""
    layer = SparseLinear(12, 7, density=0.5, generator=torch.Generator().manual_seed(0)).requires_grad_(False)
    x = torch.randn(9, 12, requires_grad=True)
    x_dense = x.detach().clone().requires_grad_()
    out_weights = torch.randn(9, 7)
    (layer(x) * out_weights).sum().backward()
    ((x_dense @ layer.weight.T + layer.bias) * out_weights).sum().backward()
    torch.testing.assert_close(x.grad, x_dense.grad, atol=1e-6, rtol=1e-5)
    assert layer.sparse_weight.values.grad is None


def test_input_gradient_follows_a_change_of_positions(shuffle_slots):
    """The transposed CSR (cached for the input's gradient) is rebuilt when the positions change."""
    layer = SparseLinear(12, 7, density=0.5, bias=False, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 12, requires_grad=True)
    layer(x).sum().backward()  # builds the transposed CSR
    shuffle_slots(layer.sparse_weight)
    with torch.no_grad():
        free = torch.ones(7 * 12, dtype=torch.bool)
        free[layer.sparse_weight.positions] = False
        layer.sparse_weight.positions[0] = free.nonzero()[0, 0]
    x.grad = None
    layer(x).sum().backward()
    torch.testing.assert_close(x.grad, layer.weight.detach().sum(0).expand(4, 12))


def test_a_dense_weight_in_the_last_columns_and_rows_only():
    """Columns and rows with no active entry at the end of the weight: the CSR and its transpose
    still have one row pointer per row (per column)."""
    weight = torch.zeros(7, 12)
    weight[:4, :6] = torch.randn(4, 6)
    linear = nn.Linear(12, 7, bias=False)
    with torch.no_grad():
        linear.weight.copy_(weight)
    layer = SparseLinear(12, 7, 1.0, bias=False)
    layer.sparse_weight = SparseEmbedding.from_dense(weight)
    x, x_dense = torch.randn(3, 12, requires_grad=True), None
    x_dense = x.detach().clone().requires_grad_()
    torch.testing.assert_close(layer(x), linear(x_dense))
    layer(x).pow(2).sum().backward()
    linear(x_dense).pow(2).sum().backward()
    torch.testing.assert_close(x.grad, x_dense.grad)


def test_reset_parameters_redraws_the_mask_and_the_bias():
    layer = SparseLinear(12, 7, density=0.3)
    positions = layer.sparse_weight.positions.clone()
    with torch.no_grad():
        layer.bias.fill_(1.0)
    layer.reset_parameters()
    assert layer.nnz == round(0.3 * 84) and not torch.equal(layer.sparse_weight.positions, positions)
    assert 0 < float(layer.bias.abs().max()) <= 1 / math.sqrt(12)


@pytest.mark.parametrize("density", [1.0, 0.4])
def test_initial_values_are_nn_linear_s_draws(density):
    """A drop-in for nn.Linear initialised as one (its mask from a generator of its own, the same numbers):
    it drew Xavier weights and a zero bias, so a model whose reset_parameters() reset a layer that DSL
    replaced (CDAE's encoder) started from weights about twice as large and no bias under the sparse
    backend, and from nn.Linear's under the masked one."""
    torch.manual_seed(0)
    dense = nn.Linear(12, 7)
    torch.manual_seed(0)
    layer = SparseLinear(12, 7, density, generator=torch.Generator().manual_seed(1))
    kept = layer.weight != 0
    assert int(kept.sum()) == layer.nnz
    torch.testing.assert_close(layer.weight, dense.weight.detach() * kept, rtol=0, atol=0)
    torch.testing.assert_close(layer.bias, dense.bias, rtol=0, atol=0)
    assert float(layer.weight.abs().max()) <= 1 / math.sqrt(12)


def test_from_linear_refuses_a_lazy_meta_complex_or_other_layer_naming_it():
    """A LazyLinear failed inside torch ("Attempted to use an uninitialized parameter in numel"), a meta
    layer in a copy out of it, a complex one lost its imaginary parts, an nn.Embedding on out_features."""
    with pytest.raises(
        ValueError, match=r"linear.weight is not initialised yet .* run the model on one batch"
    ):
        SparseLinear.from_linear(nn.LazyLinear(3), 0.5)
    with pytest.raises(ValueError, match="linear.weight is on the meta device"):
        SparseLinear.from_linear(nn.Linear(4, 3, device="meta"), 0.5)
    with pytest.raises(ValueError, match="linear.weight is torch.complex64"):
        SparseLinear.from_linear(nn.Linear(4, 3, dtype=torch.complex64), 0.5)
    with pytest.raises(TypeError, match="linear must be a torch.nn.Linear, got Embedding"):
        SparseLinear.from_linear(nn.Embedding(4, 3), 0.5)


def test_from_linear_shares_the_bias_parameter():
    dense = nn.Linear(12, 7)
    assert SparseLinear.from_linear(dense, 0.5).bias is dense.bias
    assert SparseLinear.from_linear(nn.Linear(12, 7, bias=False), 0.5).bias is None


def test_workspace_counts_the_transposed_layout():
    """The input's gradient caches the transposed CSR: a row pointer per input feature, and a row and
    a slot per active entry (int64), held until the positions change."""
    layer = SparseLinear(12, 7, density=0.5)
    x = torch.randn(3, 12, requires_grad=True)
    layer(x)
    before = layer.sparse_weight.workspace_bytes()
    layer(x).sum().backward()
    assert layer.sparse_weight.workspace_bytes() - before == (12 + 1 + 2 * layer.nnz) * 8


@pytest.mark.parametrize("bias", [True, False])
def test_output_is_laid_out_as_nn_linear_s(bias):
    """The output was the transpose of the CSR product's: `.view()` of it failed, and dropout or
    `randn_like` of it drew their numbers in another order than after an nn.Linear."""
    sparse, dense = _twins(0.5, "cpu", bias=bias)
    x = torch.randn(5, 12)
    out = sparse(x)
    assert out.is_contiguous() and out.stride() == dense(x).stride()
    torch.testing.assert_close(out.view(-1), dense(x).view(-1), atol=1e-6, rtol=1e-5)
    torch.manual_seed(0)
    noise = torch.randn_like(out)
    torch.manual_seed(0)
    torch.testing.assert_close(noise, torch.randn_like(dense(x)))


@pytest.mark.parametrize("batch, out_features", [(4, 3), (1, 3), (4, 1)])
def test_output_can_be_changed_in_place_as_nn_linear_s(batch, out_features):
    """Of a layer without bias, a batch of one or one output was a view made inside a custom Function, which
    autograd refused to change in place (`layer(x).sigmoid_()`), as it lets nn.Linear's output be."""
    torch.manual_seed(0)
    dense = nn.Linear(5, out_features, bias=False)
    sparse = SparseLinear.from_linear(dense, 0.5)
    x = torch.randn(batch, 5, requires_grad=True)
    sparse(x).sigmoid_().sum().backward()
    expected = torch.autograd.grad(torch.sigmoid(x @ sparse.weight.detach().T).sum(), x)[0]
    torch.testing.assert_close(x.grad, expected)


def test_from_linear_draws_the_mask_alone_from_the_global_stream():
    """The layer's constructor drew Xavier values for every entry, then replaced them by the linear
    layer's: whatever ran after from_linear drew other numbers than after the masked backend's mask."""
    dense = nn.Linear(12, 7)
    torch.manual_seed(0)
    layer = SparseLinear.from_linear(dense, 0.5)
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(torch.randperm(84)[: layer.nnz].sort().values, layer.sparse_weight.positions)
    assert torch.equal(torch.rand(3), after)
    torch.testing.assert_close(layer.weight, dense.weight * (layer.weight != 0))


@pytest.mark.parametrize(
    ("in_features", "out_features", "message"),
    [
        (5, 0, "out_features must be an integer >= 1, got 0"),
        (0, 3, "in_features must be an integer >= 1, got 0"),
    ]
    + [
        (5.0, 3, r"in_features must be an integer >= 1, got 5\.0"),
        (-1, 3, "in_features must be an integer >= 1"),
    ],
)
def test_sparse_linear_refuses_a_bad_size_naming_it(in_features, out_features, message):
    # (5, 0) failed inside torch: "output with shape [1] doesn't match the broadcast shape [0]"
    with pytest.raises(ValueError, match=message):
        SparseLinear(in_features, out_features, 0.5)


def test_sparse_linear_takes_its_sizes_as_any_count_and_keeps_python_ints():
    """A 0-dim tensor was refused and a NumPy size kept as given, unlike every other count of the library."""
    layer = SparseLinear(torch.tensor(6), np.int64(4), 0.5)
    assert (type(layer.in_features), type(layer.out_features)) == (int, int)
    assert layer(torch.randn(2, 6)).shape == (2, 4) and "in_features=6, out_features=4" in repr(layer)


@pytest.mark.parametrize("value", [torch.zeros(3, 4), nn.Parameter(torch.zeros(3, 4))])
def test_assigning_the_dense_view_is_refused_naming_what_to_do(value):
    """A Parameter failed with a bare KeyError "attribute 'weight' already exists", a tensor with "property
    'weight' ... has no setter"; writing into the view changes nothing (documented), the values stay."""
    layer = SparseLinear(4, 3, 0.5)
    values = layer.sparse_weight.values.detach().clone()
    with pytest.raises(AttributeError, match=r"dense view of sparse_weight.*SparseLinear\.from_linear"):
        layer.weight = value
    with torch.no_grad():
        nn.init.zeros_(layer.weight)
    assert torch.equal(layer.sparse_weight.values, values) and layer.weight.count_nonzero() == layer.nnz


@pytest.mark.parametrize("density", [0.0, 1.5, float("nan")])
def test_from_linear_refuses_a_bad_density_naming_it(density):
    # a NaN density failed on rounding the entry count ("cannot convert float NaN to integer")
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\] .* got density=(0\.0|1\.5|nan)"):
        SparseLinear.from_linear(nn.Linear(4, 3), density)


def test_from_linear_builds_the_layer_on_the_linear_s_device(device):
    dense = nn.Linear(12, 7).to(device)
    layer = SparseLinear.from_linear(dense, 0.5)
    assert layer.sparse_weight.values.device == layer.sparse_weight.positions.device == dense.weight.device
    x = torch.randn(3, 12, device=device)
    torch.testing.assert_close(layer(x), x @ layer.weight.T + dense.bias)


@pytest.mark.parametrize("bias", [True, False])
def test_density_and_repr_count_the_active_entries_of_the_whole_weight(bias):
    layer = SparseLinear(10, 4, 0.3, bias=bias)
    assert layer.nnz == 12 and layer.density() == 12 / 40
    assert f"in_features=10, out_features=4, density=0.300, bias={bias}" in repr(layer)


def test_a_state_holding_a_dense_weight_and_sparse_values_names_the_dense_weight_unexpected():
    """As a sparse table does: the sparse values load, and the dense ``weight`` the state holds beside them is
    the unexpected key (not the ``sparse_weight.weight`` it would be renamed to)."""
    torch.manual_seed(0)
    saved, layer = SparseLinear(4, 3, 0.5), SparseLinear(4, 3, 0.5)
    state = {**saved.state_dict(), "weight": torch.ones(3, 4)}
    keys = layer.load_state_dict(state, strict=False)
    assert keys.unexpected_keys == ["weight"] and not keys.missing_keys
    assert torch.equal(layer.weight, saved.weight)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "weight"\.'):
        layer.load_state_dict(state)
