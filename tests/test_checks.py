import numpy as np
import pytest
import torch

from dslgraph.checks import as_count, is_count, is_real, is_sequence


@pytest.mark.parametrize(
    ("value", "count", "real"),
    [
        (3, True, True),
        (np.int64(3), True, True),
        (np.uint8(3), True, True),
        (3.0, False, True),
        (np.float32(0.5), False, True),
        (float("nan"), False, True),  # a number: range checks refuse it
        (True, False, False),  # a bool is no 1
        (np.bool_(True), False, False),
        ("3", False, False),  # text, as a JSON or CLI value may arrive
        (None, False, False),
        (1 + 0j, False, False),
    ],
)
def test_counts_and_real_numbers(value, count, real):
    assert (is_count(value), is_real(value)) == (count, real)


@pytest.mark.parametrize(
    ("value", "sequence"),
    [
        ([10, 20], True),
        ((10,), True),
        (np.arange(5, 25, 5), True),
        (range(3), True),
        ("20", False),  # text: its characters are no values
        (b"\x14", False),  # bytes: an iterable of codes, 20 here
        ({10: "a"}, False),  # a dict: its keys
        (20, False),
    ],
)
def test_sequences_of_values(value, sequence):
    assert is_sequence(value) == sequence


@pytest.mark.parametrize("value", [3, np.int32(3), np.array(3), torch.tensor(3)])
def test_a_count_may_come_as_a_0_dim_integer_tensor(value):
    # index.max() + 1 is a tensor; RankingEvaluator took it and NegativeSampler refused it
    assert as_count(value, "num_items", minimum=1) == 3
    assert type(as_count(value, "num_items")) is int


@pytest.mark.parametrize(
    "value", [3.0, torch.tensor(3.0), torch.tensor([3]), torch.tensor(True), True, np.bool_(True), "3", 0]
)
def test_what_is_no_count_is_named(value):
    with pytest.raises(ValueError, match="num_items must be an integer >= 1, got "):
        as_count(value, "num_items", minimum=1)
