"""Datasets, bipartite interaction graphs and splits."""

from .datasets import (
    DATASETS,
    READ_OPTIONS,
    AmazonBook,
    CiteULike,
    DatasetUnavailableError,
    Foursquare,
    Gowalla,
    HoldoutDataset,
    LastFM,
    LightGCNDataset,
    MovieLens,
    MovieLens1M,
    MovieLens1MLCF,
    MovieLens100K,
    RawSplit,
    RecommendationDataset,
    Yelp2018,
    dataset_statistics,
    default_root,
    load_dataset,
    load_file,
)
from .graph import (
    EDGE,
    data_fingerprint,
    interaction_csr,
    make_interaction_data,
    num_users_items,
    propagation_graph,
    to_sparse_tensor,
)
from .interactions import InteractionDataset, holdout_mask, leave_one_out_mask
from .io import DatasetFormatError, read_adjacency_lists, read_pairs
from .protocols import (
    PROTOCOLS,
    apply_protocol,
    check_protocol,
    held_out_users,
    leave_one_out,
    merge_interactions,
    sample_negatives,
    training_users,
)
from .sampling import BPRBatches, NegativeSampler

__all__ = [
    # graph layout
    "EDGE",
    "data_fingerprint",
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
    "READ_OPTIONS",
    "load_file",
    # evaluation protocols
    "PROTOCOLS",
    "apply_protocol",
    "check_protocol",
    "leave_one_out",
    "held_out_users",
    "merge_interactions",
    "sample_negatives",
    "training_users",
    # training batches
    "BPRBatches",
    "NegativeSampler",
    # benchmark datasets
    "RecommendationDataset",
    "RawSplit",
    "DatasetUnavailableError",
    "LightGCNDataset",
    "HoldoutDataset",
    "Gowalla",
    "Yelp2018",
    "AmazonBook",
    "MovieLens1MLCF",
    "LastFM",
    "MovieLens",
    "MovieLens100K",
    "MovieLens1M",
    "CiteULike",
    "Foursquare",
    "DATASETS",
    "load_dataset",
    "dataset_statistics",
    "default_root",
]
