"""Datasets, bipartite interaction graphs and splits."""

from .datasets import (
    DATASETS,
    AmazonBook,
    Gowalla,
    LastFM,
    LightGCNDataset,
    MovieLens,
    MovieLens1M,
    MovieLens1MLCF,
    MovieLens100K,
    RecommendationDataset,
    Yelp2018,
    dataset_statistics,
    default_root,
    load_dataset,
)
from .graph import (
    EDGE,
    interaction_csr,
    make_interaction_data,
    num_users_items,
    propagation_graph,
    to_sparse_tensor,
)
from .interactions import InteractionDataset, holdout_mask, leave_one_out_mask
from .io import DatasetFormatError, read_adjacency_lists, read_pairs
from .sampling import BPRBatches, NegativeSampler

__all__ = [
    # graph layout
    "EDGE",
    "make_interaction_data",
    "num_users_items",
    "propagation_graph",
    "to_sparse_tensor",
    "interaction_csr",
    # raw files
    "DatasetFormatError",
    "read_adjacency_lists",
    "read_pairs",
    # splits and user tables
    "holdout_mask",
    "leave_one_out_mask",
    "InteractionDataset",
    # training batches
    "BPRBatches",
    "NegativeSampler",
    # benchmark datasets
    "RecommendationDataset",
    "LightGCNDataset",
    "Gowalla",
    "Yelp2018",
    "AmazonBook",
    "MovieLens1MLCF",
    "LastFM",
    "MovieLens",
    "MovieLens100K",
    "MovieLens1M",
    "DATASETS",
    "load_dataset",
    "dataset_statistics",
    "default_root",
]
