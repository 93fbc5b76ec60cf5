"""Draw responses from a fitted or specified model: y* = X beta + Z u* + e*.

Every replicate has its own random stream, the ``i``-th child of the seed's
``SeedSequence``, so replicate ``i`` is the same whatever the chunking, number of workers
or backend.

Example:
    >>> import lmmcore
    >>> res = lmmcore.fit("Yield ~ 1 + (1 | Batch)", lmmcore.load_dataset("Dyestuff"))
    >>> lmmcore.simulate(res, nsim=3, seed=1).shape
    (30, 3)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lmmcore.structure import ModelStructure

if TYPE_CHECKING:
    from lmmcore.crn import SharedDraws
    from lmmcore.result import LMMResult

SeedLike = int | np.random.Generator | np.random.SeedSequence | None


def seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """A SeedSequence from an int, a Generator, a SeedSequence or None."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        # derive from the generator's own stream, so repeated calls give new draws
        return np.random.SeedSequence(seed.integers(0, 2**63, size=4).tolist())
    if seed is not None and (not isinstance(seed, int | np.integer) or seed < 0):
        raise ValueError(
            f"seed must be a non-negative int, a numpy Generator or None, got {seed!r}."
        )
    return np.random.SeedSequence(seed)


def child_seeds(ss: np.random.SeedSequence, start: int, stop: int) -> list[np.random.SeedSequence]:
    """Children ``start..stop-1`` of ``ss``, exactly as ``ss.spawn`` would number them."""
    return [
        np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, i), pool_size=ss.pool_size)
        for i in range(start, stop)
    ]


def draw_responses(
    structure: ModelStructure,
    beta: np.ndarray,
    theta: np.ndarray,
    sigma: float,
    seeds: list[np.random.SeedSequence],
    u: np.ndarray | None = None,
    shared: SharedDraws | None = None,
) -> np.ndarray:
    """Responses (n, len(seeds)); per replicate z_u (q) then e (n) from its own stream.

    With ``u`` given (lme4's ``use.u=TRUE``) the random effects are held at ``u``. With
    ``shared`` (`lmmcore.crn`) each stream draws a larger design's z_u and e, and this
    structure's levels and rows read theirs from them (common random numbers).
    """
    n, q = structure.n, structure.q
    n_draw, q_draw = (n, q) if shared is None else (shared.n, shared.q)
    mean = structure.X @ beta
    lams = structure.lambdas(theta)
    Z = structure.Z
    Y = np.empty((n, len(seeds)))
    U = np.empty((q, len(seeds)))
    for j, s in enumerate(seeds):
        rng = np.random.default_rng(s)
        zu = rng.standard_normal(q_draw)
        e = rng.standard_normal(n_draw)
        if u is None:
            parts, off = [], 0
            for i, (b, lam) in enumerate(zip(structure.blocks, lams, strict=True)):
                z = zu[off : off + b.q] if shared is None else zu[shared.index[i]]
                parts.append((z.reshape(b.nlevels, b.k) @ lam.T).ravel())
                off += b.q
            U[:, j] = sigma * np.concatenate(parts)
        else:
            U[:, j] = u
        Y[:, j] = (e if shared is None else e[shared.rows]) * sigma
    Y += mean[:, None]
    Y += Z @ U
    return Y


def simulate(
    result: LMMResult, nsim: int = 1, seed: SeedLike = None, use_u: bool = False
) -> np.ndarray:
    """Simulate ``nsim`` responses from a fitted model (lme4's ``simulate.merMod``).

    Args:
        result: a fitted model.
        nsim: number of response vectors.
        seed: int, numpy Generator, SeedSequence or None.
        use_u: keep the fitted random effects (BLUPs) instead of drawing new ones.

    Returns:
        array of shape (n, nsim).
    """
    if not isinstance(nsim, int | np.integer) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, got {nsim!r}.")
    ss = seed_sequence(seed)
    return draw_responses(
        result.structure,
        result.solution.beta,
        result.solution.theta,
        result.sigma,
        child_seeds(ss, 0, int(nsim)),
        u=result.solution.u if use_u else None,
    )
