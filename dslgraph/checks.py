"""The kinds of number every layer checks user input against.

Here, importing nothing of dslgraph, so that each layer takes them from one place: ``dslgraph.sparse`` (DSL
on a plain torch model) must not load ``dslgraph.data``, which loads PyG and pandas.
"""

from __future__ import annotations

import numbers


def is_count(value) -> bool:
    """Whether ``value`` is an integer (a Python or NumPy one, not a bool or a float such as 1.5)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """Whether ``value`` is a real number (NumPy's too) and not a bool: ``True`` as a weight, a probability
    or a density is a mistake, not 1, and text failed range checks with a TypeError."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
