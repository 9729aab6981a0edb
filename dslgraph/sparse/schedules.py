r"""Schedules of the prune/regrow fraction :math:`\rho_t` used by the DSL controller."""

from __future__ import annotations

import math

from dslgraph.checks import as_count

SCHEDULES = ("cosine", "linear", "constant")


def update_fraction(schedule: str, step: int, total: int, rho0: float, rho_min: float) -> float:
    r"""The fraction :math:`\rho_t` of active weights pruned (and regrown) at iteration ``step``.

    .. math::
        \rho_t^{\mathrm{cosine}} = \rho_{\min} + \tfrac12(\rho_0 - \rho_{\min})(1 + \cos(\pi t / T)),
        \qquad
        \rho_t^{\mathrm{linear}} = \rho_0 + (\rho_{\min} - \rho_0)\, t / T,
        \qquad
        \rho_t^{\mathrm{constant}} = \rho_0,

    with :math:`t` clipped to :math:`T` = ``total`` (DSL's default: cosine, :math:`\rho_0 = 0.5`,
    :math:`\rho_{\min} = 0.005`).
    """
    # a step before the first or a run of no steps gave ρ_0 or more (linear: past ρ_0), silently
    step, total = as_count(step, "step"), as_count(total, "total", 1)
    progress = min(step, total) / total
    if schedule == "cosine":
        return rho_min + 0.5 * (rho0 - rho_min) * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return rho0 + (rho_min - rho0) * progress
    if schedule == "constant":
        return rho0
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
