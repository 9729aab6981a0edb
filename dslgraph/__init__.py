"""dslgraph: Dynamic Sparse Learning for graph recommenders on PyTorch Geometric."""

import logging
import warnings

# Set before the subpackages are imported: the CLI's --version reads it while this module is still loading;
# pyproject.toml takes the package's version from here too.
__version__ = "0.1.0"

# Imported here, as PyG does, so that ``import dslgraph`` is enough for ``dslgraph.data.LastFM(...)``.
from dslgraph import data, metrics, nn, sparse, train
from dslgraph.cli import load_run

logging.getLogger(__name__).addHandler(logging.NullHandler())
# torch says once per process that sparse CSR support is in beta; dslgraph's sparse layers are built and
# tested on it, so the notice is silenced where dslgraph's own code triggers it
warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning, r"dslgraph\.")

__all__ = ["__version__", "data", "load_run", "metrics", "nn", "sparse", "train"]
