import numpy as np
import pytest
import torch
import torch_geometric.transforms as T
from torch_geometric.data import HeteroData
from torch_geometric.loader import NeighborLoader

from dslgraph.data import (
    EDGE,
    data_fingerprint,
    dataset_statistics,
    interaction_csr,
    leave_one_out,
    make_interaction_data,
    propagation_graph,
)
from dslgraph.metrics import RankingEvaluator, SampledRankingEvaluator
from dslgraph.sparse.ops import csr_segments, exclude_entries


def test_propagation_graph_is_the_normalised_bipartite_graph_with_int32_indices(small_data):
    adj = propagation_graph(small_data)
    # int32 indices: sparse kernels would otherwise convert int64 ones on every product
    assert adj.crow_indices().dtype == adj.col_indices().dtype == torch.int32
    user, item = small_data[EDGE].edge_index
    a = torch.zeros(70, 70)
    a[user, item + 30] = 1.0
    a = a + a.T
    deg = a.sum(1)
    inv_sqrt = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    torch.testing.assert_close(adj.to_dense(), inv_sqrt[:, None] * a * inv_sqrt[None, :])
    x = torch.randn(70, 4)
    torch.testing.assert_close(torch.sparse.mm(adj, x), adj.to_dense() @ x)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (torch.tensor([[0, 1], [5, 1]]), r"items in \[0, num_items=3\), got users 0\.\.1, items 1\.\.5"),
        (torch.tensor([[0, 2], [1, 1]]), r"users in \[0, num_users=2\)"),
        (
            torch.tensor([[0.0, 1.0], [1.0, 1.0]]),
            r"index must be a \[2, E\] tensor of integer .* torch\.float32",
        ),
        (torch.tensor([[0, 1], [1, 2], [1, 0]]), r"index must be a \[2, E\] tensor .* got \(3, 2\)"),
    ],
)
def test_interaction_csr_refuses_ids_out_of_range(index, message):
    # an item past num_items made a CSR whose rows were wrong (user 1's item on user 0's row), without a word
    with pytest.raises(ValueError, match=message):
        interaction_csr(index, 2, 3)
    assert interaction_csr(torch.tensor([[0, 1], [2, 1]]), 2, 3).to_dense().tolist() == [[0, 0, 1], [0, 1, 0]]
    # the last users and items without interactions keep their rows and columns (seen items of each)
    assert interaction_csr(torch.tensor([[0], [1]]), 3, 4).to_dense().tolist() == [
        [0, 1, 0, 0],
        [0] * 4,
        [0] * 4,
    ]


def pyg_amazon_book_like() -> HeteroData:
    """The layout of PyG's own AmazonBook: other node and edge type names, the same attribute names."""
    data = HeteroData()
    data["user"].num_nodes, data["book"].num_nodes = 3, 4
    data["user", "rates", "book"].edge_index = torch.tensor([[0, 1], [1, 2]])
    data["user", "rates", "book"].edge_label_index = torch.tensor([[0, 2], [3, 0]])
    return data


@pytest.mark.parametrize(
    "use",
    [
        propagation_graph,
        dataset_statistics,
        leave_one_out,
        RankingEvaluator.from_data,
        SampledRankingEvaluator.from_data,
    ],
)
def test_data_of_another_layout_is_named_as_such(use):
    # failed with "int() argument must be ... not 'NoneType'", or an AttributeError of edge_label_index
    data = pyg_amazon_book_like()
    layout = (
        r"data must have the layout of dslgraph.data.graph .* lacks item, \('user', 'to', 'item'\).edge_index"
    )
    with pytest.raises(ValueError, match=rf"{layout}; it has node types \['user', 'book'\]"):
        use(data)
    assert data.edge_types == [("user", "rates", "book")]  # no empty ('user', 'to', 'item') added to it


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (
            lambda data: T.RandomLinkSplit(edge_types=EDGE)(data),
            r"got a tuple \(PyG's RandomLinkSplit returns",
        ),
        (lambda data: data.to_homogeneous(), r"got a Data \(HeteroData.to_homogeneous\(\) merges users"),
    ],
)
@pytest.mark.parametrize("use", [propagation_graph, RankingEvaluator.from_data])
def test_data_that_is_no_heterodata_is_named(small_data, make, hint, use):
    # failed as a HeteroData lacking user, item and the edges: "it has node types [] and edge types []"
    with pytest.raises(ValueError, match=rf"layout of dslgraph.data.graph .* a HeteroData; {hint}"):
        use(make(small_data))


def test_data_without_edge_index_names_what_its_edges_hold(small_data):
    # T.ToSparseTensor() replaces edge_index by adj_t
    with pytest.raises(ValueError, match=r"lacks \('user', 'to', 'item'\).edge_index; .* holds \['adj_t',"):
        propagation_graph(T.ToSparseTensor()(small_data))


@pytest.mark.parametrize("negatives", [True, False])
@pytest.mark.parametrize("evaluator", [RankingEvaluator, SampledRankingEvaluator])
def test_a_link_prediction_split_is_not_taken_for_the_test_split(small_data, negatives, evaluator):
    # RandomLinkSplit's edge_label_index (training edges, with or without negatives) was ranked as the
    # test interactions without a word
    train, _, _ = T.RandomLinkSplit(edge_types=EDGE, add_negative_train_samples=negatives)(small_data)
    with pytest.raises(ValueError, match=r"holds edge_label: its edge_label_index is a labelled link-predic"):
        evaluator.from_data(train)
    propagation_graph(train)  # its training edges are still a graph to propagate over


def test_a_subgraph_a_pyg_loader_sampled_is_not_taken_for_the_data(small_data):
    # its nodes renumbered but not edge_label_index: test ids in range named other users and items
    try:
        loader = NeighborLoader(T.ToUndirected()(small_data), [-1], input_nodes=("user", torch.arange(3)))
        subgraph = next(iter(loader))
    except ImportError:  # PyG's sampler needs pyg-lib or torch-sparse: its subgraph and n_id by hand
        subgraph = small_data.subgraph({"user": torch.arange(3)})
        subgraph["user"].n_id = torch.arange(3)
        subgraph["item"].n_id = torch.arange(subgraph["item"].num_nodes)
    with pytest.raises(ValueError, match=r"a subgraph sampled by a PyG loader \(n_id on its user and item"):
        RankingEvaluator.from_data(subgraph)


def test_make_interaction_data_refuses_float_ids():
    # .long() would silently cut 1.5 to 1
    train = torch.tensor([[0.0, 1.5], [0.0, 1.0]])
    with pytest.raises(
        ValueError, match=r"train interactions must be a \[2, E\] tensor of integer .* torch.float32"
    ):
        make_interaction_data(2, 2, train, torch.tensor([[0], [1]]))


def test_make_interaction_data_refuses_repeated_pairs():
    train = torch.tensor([[0, 1, 0], [1, 0, 1]])
    repeated = r"train interactions hold the pair \(user 0, item 1\) more than once"
    with pytest.raises(ValueError, match=repeated):
        make_interaction_data(2, 2, train, torch.tensor([[1], [1]]))
    test = torch.tensor([[1, 1], [1, 1]])
    with pytest.raises(ValueError, match="test interactions hold the pair"):
        make_interaction_data(2, 2, train[:, :2], test)
    # the pair named is the one repeated, read back from its key
    with pytest.raises(ValueError, match=r"train interactions hold the pair \(user 2, item 1\)"):
        make_interaction_data(3, 2, torch.tensor([[2, 0, 2], [1, 0, 1]]), torch.tensor([[1], [1]]))


def test_make_interaction_data_refuses_counts_no_graph_could_hold():
    # with 2**62 items the key 4 * 2**62 + 0 wrapped to 0: (user 4, item 0) was refused as a repeated (0, 0);
    # 10**14 users failed in propagation_graph, in torch's allocation of 10**14 degrees
    train, test = torch.tensor([[0, 4], [0, 0]]), torch.tensor([[1], [1]])
    too_many = r"num_users \+ num_items must be at most 2\*\*32 \(4,294,967,296\), got "
    with pytest.raises(ValueError, match=too_many + r"5 \+ 4,611,686,"):
        make_interaction_data(5, 2**62, train, test)
    with pytest.raises(ValueError, match=too_many + r"100,000,000,000,000 \+ 5: each id is a node"):
        make_interaction_data(10**14, 5, train, test)
    # far more ids than those present are taken as asked: users without interactions yet
    assert make_interaction_data(2**32 - 5, 5, train, test)["user"].num_nodes == 2**32 - 5
    with pytest.raises(ValueError, match=too_many + r"4,294,967,292 \+ 5"):  # one past the bound
        make_interaction_data(2**32 - 4, 5, train, test)


def test_make_interaction_data_refuses_evaluation_pairs_seen_in_training():
    train = torch.tensor([[0, 1], [1, 0]])
    seen = r"1 test interaction\(s\) are training interactions too, e\.g\. \(user 1"
    with pytest.raises(ValueError, match=seen):
        make_interaction_data(2, 2, train, torch.tensor([[1, 1], [0, 1]]))
    with pytest.raises(ValueError, match="1 val interaction"):
        make_interaction_data(2, 2, train, torch.tensor([[1], [1]]), val=torch.tensor([[0], [1]]))
    data = make_interaction_data(2, 2, train, torch.tensor([[1], [1]]), val=torch.tensor([[0], [0]]))
    assert data[EDGE].val_edge_label_index.tolist() == [[0], [0]]


@pytest.mark.parametrize(
    ("times", "message"),
    [
        # the validation split's times were dropped, and with them every protocol's use of the times
        ((torch.tensor([5]), torch.tensor([6])), r"got a tuple of Tensor, Tensor$"),
        (([5], None, None), r"got a tuple of list, NoneType, NoneType$"),  # failed reading the list's shape
        (torch.tensor([5, 6, 7]), r"got a Tensor$"),  # "Boolean value of Tensor ... is ambiguous"
    ],
)
def test_make_interaction_data_refuses_times_it_would_drop_or_misread(times, message):
    train, test, val = torch.tensor([[0], [0]]), torch.tensor([[1], [1]]), torch.tensor([[0], [2]])
    with pytest.raises(
        ValueError, match=r"^times must be the \(train, test, val\) splits' timestamp .*" + message
    ):
        make_interaction_data(2, 3, train, test, val, times)
    with pytest.raises(ValueError, match=r"^val timestamps are given without val interactions$"):
        make_interaction_data(2, 3, train, test, None, (None, None, torch.tensor([5])))
    with pytest.raises(
        ValueError, match=r"^test timestamps must have shape \[1\], got \(2,\)$"
    ):  # one per pair
        make_interaction_data(2, 3, train, test, val, (None, torch.tensor([5, 6]), None))
    data = make_interaction_data(2, 3, train, test, val, [torch.tensor([5]), None, torch.tensor([7])])
    assert data[EDGE].time.tolist() == [5] and data[EDGE].val_edge_label_time.tolist() == [7]


def test_propagation_graph_refuses_a_dtype_its_weights_cannot_take(small_data):
    # torch.long failed as "Sparse CSR tensors do not have strides"
    for dtype in (torch.long, torch.bool, "float32"):
        with pytest.raises(
            ValueError, match=rf"^dtype must be a floating-point torch.dtype .*, got {dtype!r}$"
        ):
            propagation_graph(small_data, dtype)
    assert propagation_graph(small_data, torch.float64).dtype == torch.float64


@pytest.mark.parametrize("items", [[-1, 1], [2, 1]])
def test_propagation_graph_refuses_ids_outside_the_layout(items):
    # item -1 of data built by hand, offset by num_users, was an edge between users 1 and 1, without a word
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = 2, 2
    data[EDGE].edge_index = torch.tensor([[0, 1], items])
    with pytest.raises(ValueError, match=r"edge_index must hold users in \[0, num_users=2\) and items in"):
        propagation_graph(data)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_propagation_graph_weighs_a_popular_node_by_its_whole_degree_in_any_dtype(dtype):
    # counted in float16 a degree stopped at 2048, in bfloat16 at 256: user 0's 3000 edges weighed
    # 1/sqrt(256), 3.4 times 1/sqrt(3000), without a word
    train = torch.stack([torch.zeros(3000, dtype=torch.long), torch.arange(3000)])
    adj = propagation_graph(make_interaction_data(2, 3001, train, torch.tensor([[1], [3000]])), dtype)
    assert adj.dtype == dtype
    expected = torch.tensor(3000**-0.5, dtype=dtype)  # items of degree 1 next to user 0
    assert (adj.values() == expected).all()


def test_propagation_graph_by_hand():
    # users u0 (items 0, 1), u1 (item 0), u2 (none); nodes u0, u1, u2, i0, i1 with degrees 2, 1, 0, 2, 1:
    # D^-1/2 A D^-1/2 weighs (u0, i0) 1/sqrt(2 * 2), (u0, i1) and (u1, i0) 1/sqrt(2 * 1), in both
    # directions; no self-loop, and the isolated u2 has a zero row
    train = torch.tensor([[0, 0, 1], [0, 1, 0]])
    adj = propagation_graph(make_interaction_data(3, 2, train, train[:, :0]))
    r = 2**-0.5
    expected = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.5, r],
            [0.0, 0.0, 0.0, r, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.5, r, 0.0, 0.0, 0.0],
            [r, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    torch.testing.assert_close(adj.to_dense(), expected)


@pytest.mark.parametrize(
    ("split", "pair"),
    [
        ("train", [[2], [0]]),
        ("test", [[0], [3]]),
        ("train", [[-1], [0]]),
        ("train", [[0], [-1]]),
        ("test", [[1], [-1]]),
    ],
)
def test_make_interaction_data_refuses_ids_outside_the_tables(split, pair):
    # 2 users and 3 items: user id 2 and item id 3 are the first ids outside the tables; a negative id
    # indexes an embedding table from its end (user -1 would be the last user, without a word)
    train, test = torch.tensor([[0, 1], [0, 1]]), torch.tensor([[1], [2]])
    given = {"train": train, "test": test, split: torch.tensor(pair)}
    with pytest.raises(
        ValueError,
        match=rf"{split} interactions must hold users in \[0, num_users=2\) and items in \[0, num_items=3\)",
    ):
        make_interaction_data(2, 3, given["train"], given["test"])


def test_make_interaction_data_refuses_a_boolean_mask_for_ids():
    # a [2, E] mask read as ids 0 and 1 would pass as other interactions
    with pytest.raises(ValueError, match=r"train interactions must be a \[2, E\] tensor .* torch\.bool"):
        make_interaction_data(2, 2, torch.tensor([[True, False], [False, True]]), torch.tensor([[1], [1]]))


def test_make_interaction_data_refuses_no_users_or_items():
    empty = torch.zeros(2, 0, dtype=torch.long)
    for counts, field in [((0, 3), "num_users"), ((3, 0), "num_items")]:
        with pytest.raises(ValueError, match=rf"{field} must be an integer >= 1, got 0"):
            make_interaction_data(*counts, empty, empty)


def test_make_interaction_data_checks_its_counts():
    train, test = torch.tensor([[0, 1], [0, 1]]), torch.tensor([[1], [2]])
    data = make_interaction_data(torch.tensor(2), np.int32(3), train, test)  # index.max() + 1 passes
    assert (data["user"].num_nodes, data["item"].num_nodes) == (2, 3)
    assert type(data["user"].num_nodes) is int
    with pytest.raises(ValueError, match="num_items must be an integer >= 1, got 3.0"):
        make_interaction_data(2, 3.0, train, test)  # stored as is, a float count of nodes


def _graph_inputs(data):
    return propagation_graph(data), interaction_csr(data[EDGE].edge_index, 30, 40)


def test_graph_inputs_are_made_on_the_device_of_the_interactions_not_the_default_one(small_data):
    # made without device=, the degrees and ones were the default device's (the CPU): data moved by
    # .to("cuda") failed in index_add_ and sparse_coo_tensor; another default device (meta) shows it here
    expected = _graph_inputs(small_data)
    with torch.device("meta"):
        made = _graph_inputs(small_data)
    for got, want in zip(made, expected):
        assert got.device.type == "cpu"
        torch.testing.assert_close(got.to_dense(), want.to_dense())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graph_inputs_of_interactions_on_cuda_are_made_on_cuda(small_data):
    for got, want in zip(_graph_inputs(small_data.to("cuda")), _graph_inputs(small_data)):
        assert got.is_cuda
        torch.testing.assert_close(got.to_dense().cpu(), want.to_dense())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_csr_rows_are_read_by_rows_on_another_device_cuda(small_data):
    # csr_segments indexed the row pointer by the rows where they were (GPU rows of a CPU matrix failed, CPU
    # rows of a GPU one failed in repeat_interleave), and exclude_entries took its CSR where it was given
    csr = interaction_csr(small_data[EDGE].edge_index, 30, 40)
    rows = torch.tensor([3, 0, 3, 29])
    entry, owner = csr_segments(csr.crow_indices(), rows)
    scores = exclude_entries(torch.zeros(4, 40), csr.crow_indices(), csr.col_indices(), rows)
    assert scores.isinf().any()
    gpu = csr.to("cuda")
    for matrix, ids in ((csr, rows.cuda()), (gpu, rows)):
        got = csr_segments(matrix.crow_indices(), ids)
        assert all(part.device == matrix.device for part in got)
        assert torch.equal(got[0].cpu(), entry) and torch.equal(got[1].cpu(), owner)
        excluded = exclude_entries(
            torch.zeros(4, 40).cuda(), matrix.crow_indices(), matrix.col_indices(), ids
        )
        assert excluded.is_cuda and torch.equal(excluded.cpu(), scores)


def test_fingerprint_tells_apart_what_a_checkpoint_was_trained_on():
    """A checkpoint's fingerprint tells apart data it was not trained on: more items (the embedding tables'
    rows), other raw ids (the same rows named other users), the same pairs in another split; and only
    that: the same data held in int32 is the same data."""
    train, test = torch.tensor([[0, 1, 1], [0, 1, 2]]), torch.tensor([[0, 1], [2, 0]])
    data = make_interaction_data(2, 3, train, test)
    fingerprint = data_fingerprint(data)
    assert data_fingerprint(make_interaction_data(2, 3, train, test)) == fingerprint
    assert data_fingerprint(make_interaction_data(2, 4, train, test)) != fingerprint
    narrow = data.clone()
    for key in ("edge_index", "edge_label_index"):
        narrow[EDGE][key] = narrow[EDGE][key].int()
    assert data_fingerprint(narrow) == fingerprint
    # the test pairs as the validation split, with an empty test split: the same bytes in another place
    empty = torch.zeros(2, 0, dtype=torch.long)
    assert data_fingerprint(make_interaction_data(2, 3, train, empty, val=test)) != fingerprint
    named = data.clone()
    named["user"].raw_ids, named["item"].raw_ids = np.array(["ann", "bob"]), np.array([10, 20, 30])
    renamed = named.clone()
    renamed["user"].raw_ids = np.array(["bob", "ann"])
    assert len({fingerprint, data_fingerprint(named), data_fingerprint(renamed)}) == 3


def test_to_sparse_tensor_without_torch_sparse_says_how_to_install_it(monkeypatch):
    """It said "install dslgraph[sparse]", whose isolated build downloads a CUDA torch (README)."""
    import torch_geometric.typing

    from dslgraph.data import to_sparse_tensor
    from dslgraph.sparse import SparseEmbedding

    monkeypatch.setattr(torch_geometric.typing, "WITH_TORCH_SPARSE", False)
    adj = torch.eye(3).to_sparse_csr()
    for convert in (lambda: to_sparse_tensor(adj), SparseEmbedding(3, 2, 0.5).to_sparse_tensor):
        with pytest.raises(ImportError, match="pip install --no-build-isolation torch-scatter torch-sparse"):
            convert()
