"""The kinds of number every layer checks user input against.

Here, importing nothing of dslgraph, so that each layer takes them from one place: ``dslgraph.sparse`` (DSL
on a plain torch model) must not load ``dslgraph.data``, which loads PyG and pandas.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable


def is_count(value) -> bool:
    """Whether ``value`` is an integer (a Python or NumPy one, not a bool or a float such as 1.5)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_sequence(value) -> bool:
    """Whether ``value`` is a tuple, a list, an array (``np.arange(5, 25, 5)``) or another iterable of values:
    not text, bytes (an iterable of their codes) or a dict (of its keys)."""
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict))


def is_real(value) -> bool:
    """Whether ``value`` is a real number (NumPy's too) and not a bool: ``True`` as a weight, a probability
    or a density is a mistake, not 1, and text failed range checks with a TypeError."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
