"""Recommender models: message-passing modules and adapters over swappable embedding tables, and their
losses."""

from dslgraph.nn.base import Recommender
from dslgraph.nn.cdae import CDAE
from dslgraph.nn.convncf import ConvNCF
from dslgraph.nn.lightgcn import LightGCN
from dslgraph.nn.losses import bpr_loss, l2_penalty
from dslgraph.nn.multvae import MultVAE
from dslgraph.nn.neumf import NeuMF
from dslgraph.nn.ultragcn import UltraGCN, item_neighbors
from dslgraph.sparse.table import DenseEmbedding, EmbeddingTable

#: The models by their CLI name.
MODELS: dict[str, type[Recommender]] = {
    "lightgcn": LightGCN,
    "ultragcn": UltraGCN,
    "neumf": NeuMF,
    "convncf": ConvNCF,
    "cdae": CDAE,
    "multvae": MultVAE,
}

__all__ = [
    "Recommender",
    "DenseEmbedding",
    "EmbeddingTable",
    "LightGCN",
    "UltraGCN",
    "item_neighbors",
    "NeuMF",
    "ConvNCF",
    "CDAE",
    "MultVAE",
    "MODELS",
    "bpr_loss",
    "l2_penalty",
]
