import pytest
import torch

from dslgraph.sparse import SparseEmbedding


def _shuffle_slots(table: SparseEmbedding) -> SparseEmbedding:
    """Puts ``table``'s slots in no position order, as after DSL updates (grown entries take pruned
    entries' slots), so that slot order and sorted position differ; returns ``table``."""
    with torch.no_grad():
        table.positions.copy_(
            table.positions[torch.randperm(table.nnz, generator=torch.Generator().manual_seed(1))]
        )
    assert not torch.equal(table.slot_order(), torch.arange(table.nnz))
    return table


@pytest.fixture
def shuffle_slots():
    return _shuffle_slots
