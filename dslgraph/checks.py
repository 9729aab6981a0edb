"""The kinds of number every layer checks user input against, and the optional package some need.

Here, importing nothing of dslgraph, so that each layer takes them from one place: ``dslgraph.sparse`` (DSL
on a plain torch model) must not load ``dslgraph.data``, which loads PyG and pandas.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Iterable


def is_count(value) -> bool:
    """Whether ``value`` is an integer (a Python or NumPy one, not a bool or a float such as 1.5)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def as_count(value, name: str, minimum: int = 0) -> int:
    """``value`` as a Python int >= ``minimum``, else a :class:`ValueError` naming ``name``: a Python or NumPy
    integer, or a 0-dim integer tensor or array (a count computed as ``index.max() + 1``); not a bool, nor a
    float such as 3.0 (a count read from JSON), which failed deep inside torch."""
    boolean = isinstance(value, bool) or "bool" in str(getattr(value, "dtype", ""))
    try:
        count = None if boolean or getattr(value, "ndim", 0) else operator.index(value)
    except TypeError:  # 3.0, or a float tensor
        count = None
    if count is None or count < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return count


def is_sequence(value) -> bool:
    """Whether ``value`` is a tuple, a list, an array (``np.arange(5, 25, 5)``) or another iterable of values:
    not text, bytes (an iterable of their codes) or a dict (of its keys)."""
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict))


def is_real(value) -> bool:
    """Whether ``value`` is a real number (NumPy's too) and not a bool: ``True`` as a weight, a probability
    or a density is a mistake, not 1, and text failed range checks with a TypeError."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require_torch_sparse(what: str) -> None:
    """Raises an :class:`ImportError` naming ``what`` and the install that works where torch-sparse is not
    installed (an isolated build, ``pip install dslgraph[sparse]``, downloads a CUDA torch)."""
    from torch_geometric import typing

    if not typing.WITH_TORCH_SPARSE:
        raise ImportError(
            f"{what} needs torch-sparse, built against the installed torch: pip install "
            "--no-build-isolation torch-scatter torch-sparse (README, Installing)"
        )
