import pytest
import torch

from dslgraph.data import make_interaction_data

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_interactions(num_users: int, num_items: int, num_edges: int, seed: int = 0) -> torch.Tensor:
    """Distinct random user-item pairs, every user with at least one."""
    g = torch.Generator().manual_seed(seed)
    users = torch.cat([torch.arange(num_users), torch.randint(num_users, (num_edges,), generator=g)])
    items = torch.randint(num_items, (users.numel(),), generator=g)
    keys = torch.unique(users * num_items + items)
    return torch.stack([keys // num_items, keys % num_items])


@pytest.fixture
def small_data():
    """A 30-user, 40-item interaction graph with a test split disjoint from training."""
    index = random_interactions(30, 40, 300)
    perm = torch.randperm(index.size(1), generator=torch.Generator().manual_seed(1))
    test = index[:, perm[:60]]
    train = index[:, perm[60:]]
    return make_interaction_data(30, 40, train, test)


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)
