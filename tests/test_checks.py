import numpy as np
import pytest

from dslgraph.checks import is_count, is_real


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
