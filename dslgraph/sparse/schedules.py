r"""Schedules of the prune/regrow fraction :math:`\rho_t` used by the DSL controller."""

from __future__ import annotations

import math

from dslgraph.checks import as_count, is_real

SCHEDULES = ("cosine", "linear", "constant")
"""The schedules :func:`update_fraction` understands, the ``schedule`` of the DSL controller."""


def check_fractions(rho0: float, rho_min: float) -> None:
    r"""A :class:`ValueError` naming both unless :math:`0 \le \rho_{\min} \le \rho_0 \le 1` (NaN, text and
    bools too): the DSL controller's check, and :func:`update_fraction`'s."""
    if not (is_real(rho0) and is_real(rho_min) and 0.0 <= rho_min <= rho0 <= 1.0):
        raise ValueError(f"need 0 <= rho_min <= rho0 <= 1, got rho0={rho0!r}, rho_min={rho_min!r}")


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
    check_fractions(rho0, rho_min)  # rho0=2 gave 2.0, a fraction over 1, silently
    progress = min(step, total) / total
    if schedule == "cosine":
        return rho_min + 0.5 * (rho0 - rho_min) * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return rho0 + (rho_min - rho0) * progress
    if schedule == "constant":
        return rho0
    raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {schedule!r}")
