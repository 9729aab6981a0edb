"""dslgraph: Dynamic Sparse Learning for graph recommenders on PyTorch Geometric."""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import TYPE_CHECKING, Any

#: The package's version, the one that pyproject.toml and ``dslgraph --version`` read.
__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
# torch says once per process that sparse CSR support is in beta; dslgraph's sparse layers are built and
# tested on it, so the notice is silenced where dslgraph's own code triggers it
warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning, r"dslgraph\.")

# loaded at first use; cli and config are not in __all__, but were attributes once `import dslgraph` had run
_SUBMODULES = ("cli", "config", "data", "metrics", "nn", "sparse", "train")

if TYPE_CHECKING:
    from dslgraph import data, metrics, nn, sparse, train
    from dslgraph.cli import LoadedRun, load_run


def __getattr__(name: str) -> Any:
    # The subpackages load at first use, not here: `import dslgraph.nn` runs this module first, and would
    # otherwise load every layer above nn (the trainer, the CLI). A plain `import dslgraph` is still enough
    # for `dslgraph.data.LastFM(...)`, as with PyG.
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in ("LoadedRun", "load_run"):  # LoadedRun: what load_run returns, for isinstance and help()
        from dslgraph import cli

        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = ["LoadedRun", "__version__", "data", "load_run", "metrics", "nn", "sparse", "train"]
