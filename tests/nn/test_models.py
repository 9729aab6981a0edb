"""What every model of ``dslgraph.nn.MODELS`` shares."""

import inspect

import pytest

from dslgraph.nn import MODELS


@pytest.mark.parametrize("name", sorted(MODELS))
def test_only_the_numbers_of_users_and_items_are_positional(name):
    # PyG's LightGCN(num_nodes, embedding_dim, num_layers) written positionally, LightGCN(70, 64, 3), built
    # 70 users and 64 items of dimension 3 here without a word
    cls = MODELS[name]
    kinds = {p.name: p.kind for p in inspect.signature(cls).parameters.values()}
    positional = [name for name, kind in kinds.items() if kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == ["num_users", "num_items"]
    assert set(kinds.values()) == {inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY}
    with pytest.raises(TypeError, match="takes 3 positional arguments but 4 were given"):
        cls(70, 64, 3)
