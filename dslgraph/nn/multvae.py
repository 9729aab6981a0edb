"""Mult-VAE: a variational auto-encoder of each user's interaction row with a multinomial likelihood."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from dslgraph.checks import is_real
from dslgraph.nn.base import (
    Recommender,
    ScoreFn,
    check_graph,
    check_macs,
    check_probability,
    check_rows,
    check_sizes,
    decode,
    dense_rows,
    growth_macs,
    interaction_matrix,
    linear_macs,
    per_user_macs,
)
from dslgraph.sparse import SparseLinear


class MultVAE(Recommender):
    r"""The Mult-VAE model from `"Variational Autoencoders for Collaborative Filtering"
    <https://arxiv.org/abs/1802.05814>`_ (Liang et al., WWW 2018).

    A user's row :math:`x_u`, L2-normalised and dropped out, is encoded into a Gaussian
    :math:`q(z_u) = \mathcal{N}(\mu_u, \mathrm{diag}\,\sigma_u^2)` (tanh MLP); a sample (the mean
    at evaluation) is decoded into logits :math:`f(z_u)` over all items. The loss is the
    multinomial negative log-likelihood plus an annealed KL term, averaged over the batch:

    .. math::
        \mathcal{L}_u = -\sum_i x_{ui} \log \mathrm{softmax}(f(z_u))_i
        + \beta_t\, \mathrm{KL}\big(q(z_u) \,\|\, \mathcal{N}(0, I)\big), \qquad
        \beta_t = \min\!\big(\beta_{\max}, t / T_{\text{anneal}}\big),

    with :math:`t` the training steps so far, kept in the buffer :attr:`anneal_step` so that a
    checkpoint resumes the schedule exactly; each :meth:`loss` call in training mode counts one
    step. ``reg_weight`` is ignored (the model has no embedding table; use the optimizer's weight
    decay). Weights are Xavier-initialised and biases drawn from :math:`\mathcal{N}(0, 0.001^2)`
    as in the paper. :attr:`dsl_targets` are every weight and bias (the DSL authors' choice).

    Args:
        num_users (int): Number of users.
        num_items (int): Number of items.
        hidden_channels (int, optional): Width of the hidden layers. (default: :obj:`600`)
        latent_dim (int, optional): Size of :math:`z`. (default: :obj:`200`)
        dropout (float, optional): Input dropout. (default: :obj:`0.5`)
        anneal_cap (float, optional): :math:`\beta_{\max}`. (default: :obj:`0.2`)
        total_anneal_steps (int, optional): :math:`T_{\text{anneal}}`. (default: :obj:`200000`)
    """

    batch_kind = "users"
    dsl_targets = (r".*",)
    folds_in = True  # reads the user's row
    uses_reg_weight = False  # no embedding table to regularise

    def __init__(
        self,
        num_users: int,
        num_items: int,
        *,
        hidden_channels: int = 600,
        latent_dim: int = 200,
        dropout: float = 0.5,
        anneal_cap: float = 0.2,
        total_anneal_steps: int = 200000,
    ) -> None:
        super().__init__()
        num_users, num_items, hidden_channels, latent_dim, total_anneal_steps = check_sizes(
            num_users=num_users,
            num_items=num_items,
            hidden_channels=hidden_channels,
            latent_dim=latent_dim,
            total_anneal_steps=total_anneal_steps,
        )
        dropout = check_probability("dropout", dropout)
        # NaN would make every loss NaN; text failed the comparison with a TypeError; True is no cap of 1
        if not (is_real(anneal_cap) and anneal_cap >= 0):
            raise ValueError(f"anneal_cap must be a number >= 0, got {anneal_cap!r}")
        self.num_users = num_users
        self.num_items = num_items
        self.latent_dim = latent_dim
        self.anneal_cap = float(anneal_cap)
        self.total_anneal_steps = total_anneal_steps
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.Sequential(
            nn.Linear(num_items, hidden_channels), nn.Tanh(), nn.Linear(hidden_channels, 2 * latent_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_channels), nn.Tanh(), nn.Linear(hidden_channels, num_items)
        )
        self.register_buffer("anneal_step", torch.zeros((), dtype=torch.long))
        self.reset_parameters()

    def _linears(self) -> list[nn.Linear | SparseLinear]:
        return [m for m in (*self.encoder, *self.decoder) if isinstance(m, (nn.Linear, SparseLinear))]

    def reset_parameters(self) -> None:
        """Draws the layers anew (Xavier-uniform weights, biases ``normal(0, 0.001)``)
        and restarts the KL annealing."""
        for layer in self._linears():
            if isinstance(layer, SparseLinear):
                # Xavier values, the same draws as below (the layer's own reset draws torch.nn.Linear's, as
                # the masked backend's nn.Linear does); a DSL target keeps its mask. The table keeps its own
                # init for a reset of its own, even where this one fails
                table = layer.sparse_weight
                table.init, own = "xavier", table.init
                try:
                    table.reset_parameters()
                finally:
                    table.init = own
            else:
                nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=0.001)
        self.anneal_step.zero_()

    def input_graph(self, data: HeteroData) -> Tensor:
        """The binary ``[num_users, num_items]`` training matrix (CSR)."""
        self.check_data_sizes(data)  # the interactions' ids: interaction_matrix checks them, naming them
        return interaction_matrix(data, self.float_dtype())

    def beta(self) -> float:
        """The KL weight :math:`\\beta_t` of the next training step."""
        return min(self.anneal_cap, int(self.anneal_step) / self.total_anneal_steps)

    def encode(self, rows: Tensor, corrupt: bool = True) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of :math:`q(z_u)` for ``[B, num_items]`` rows (with ``corrupt``,
        input dropout in training mode)."""
        x = F.normalize(rows, dim=1)
        h = self.encoder(self.dropout(x) if corrupt else x)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def forward(self, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Logits ``[B, num_items]``, mean and log-variance; :math:`z` is sampled only in training."""
        check_rows(rows, self.num_items)
        mu, logvar = self.encode(rows)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.decoder(z), mu, logvar

    def loss(self, graph: Tensor, users: Tensor, reg_weight: float = 0.0) -> Tensor:
        """Multinomial NLL plus :math:`\\beta_t` KL; advances :attr:`anneal_step` in training mode."""
        rows = dense_rows(graph, users)
        logits, mu, logvar = self(rows)
        nll = -(F.log_softmax(logits, dim=1) * rows).sum(1).mean()
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
        loss = nll + self.beta() * kl
        if self.training:
            self.anneal_step += 1
        return loss

    @torch.no_grad()
    def scorer(self, graph: Tensor) -> ScoreFn:
        """``score(users, items=None)``: decoder logits from the mean code of the users' rows."""
        check_graph(graph, (self.num_users, self.num_items), "MultVAE")

        @torch.no_grad()
        def score(users: Tensor, items: Tensor | None = None) -> Tensor:
            self.check_pairs(users, items, candidates=True)
            mu, _ = self.encode(dense_rows(graph, users), corrupt=False)
            return decode(self.decoder[-1], self.decoder[:-1](mu), items)

        return score

    def macs(self, graph, batch_size: int, count: str = "executed") -> dict[str, float]:
        r"""MACs per user: the four linear layers, :math:`I \cdot 600 + 600 \cdot 400 + 200 \cdot 600
        + 600 \cdot I` at the defaults (``"ideal"`` charges the active weights only; normalisation,
        sampling and softmax are not counted). Training runs :math:`B` users, full ranking all
        :math:`U`; backward runs two products per layer but one for the first (see
        :func:`~dslgraph.nn.base.per_user_macs`). A DSL growth step rebuilds the dense gradient of each
        sparse layer, :math:`B` times its weights (:func:`~dslgraph.nn.base.growth_macs`).
        """
        batch_size = check_macs(count, batch_size)
        layers = [linear_macs(layer, 1, count) for layer in self._linears()]
        update = sum(growth_macs(layer, batch_size, count) for layer in self._linears())
        return per_user_macs(
            sum(layers), batch_size, self.num_users, input_layer=layers[0], update_step=update
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_users}, {self.num_items}, "
            f"hidden={self.encoder[0].out_features}, latent={self.latent_dim}, dropout={self.dropout.p}"
            f"{self._sparsity_repr()})"
        )
