"""Training objectives shared by the models."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def bpr_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    r"""Bayesian personalised ranking loss, :math:`-\mathrm{mean}\,\log\sigma(s^+ - s^-)`.

    `BPR (Rendle et al., UAI 2009) <https://arxiv.org/abs/1205.2618>`_; ``softplus`` keeps it stable.
    """
    return F.softplus(neg_scores - pos_scores).mean()


def l2_penalty(embeddings: Tensor, batch_size: int) -> Tensor:
    r"""LightGCN's regulariser: :math:`\frac{1}{2B}\sum \lVert e \rVert^2` over the batch's embeddings."""
    return embeddings.pow(2).sum() / (2 * batch_size)
