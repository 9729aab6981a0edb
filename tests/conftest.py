import contextlib

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


@pytest.fixture
def full_disk():
    """A context in which a file written past its first 1,000 bytes fails as on a full disk: the write
    raises an OSError naming no file (EFBIG of a file size limit, where a full disk's is ENOSPC), torch
    saving to a file name its RuntimeError. POSIX only."""
    resource = pytest.importorskip("resource")
    import signal

    @contextlib.contextmanager
    def limited():
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails, the process goes on
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, limits[1]))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
            signal.signal(signal.SIGXFSZ, handler)

    return limited
