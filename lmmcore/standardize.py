"""Standardized effects and variance shares (PANGEA's inputs), to and from a `ModelSpec`.

PANGEA (Westfall 2016) and Westfall, Kenny & Judd (2014) state a design's truth without
units: each effect as Cohen's d relative to the *total* SD, and each random effect as its
share of the total variance (a variance partitioning coefficient, VPC). Here, on the rows
of a `Design`:

- **total variance**: the average, over the design's rows, of the variance of one
  observation around its expected value: sigma^2 + mean_i z_i' Sigma z_i, i.e. for each
  random term its variance times the mean of its column squared, plus twice each
  covariance times the mean product of the two columns, plus the residual variance. A
  random intercept enters with its variance; a random slope on a +-1/2 (deviation) column
  with SD^2 / 4, on a +-1 (sum) column with SD^2, on a 0/1 (treatment) column with
  SD^2 / 2 when the levels are balanced. With centred codes in a balanced design the
  covariances cancel and this is WKJ's "sum of all variance components" (their
  participant x condition component is the slope's SD^2 / 4 under +-1/2 codes).
- **VPCs**: each random term's part of that total (``"subj: (Intercept)"``,
  ``"subj: x"``), ``"residual"``, and ``"covariances"`` (the correlations' part; 0 with
  centred balanced codes, and it can be negative). They sum to 1.
- **d** of a coefficient: beta x step / total SD. The step of a column of a two-level
  factor is the difference of its two codes (deviation 1, sum 2, treatment 1), so d is
  the standardized difference of the two condition means (second level minus first,
  WKJ's d); for an interaction of two-level factors the product of their steps (d of the
  difference of differences); any other column (covariates, factors with more levels)
  has step 1: d per unit of the column. The intercept has no d.

`standardize` gives these for a spec; `unstandardize` turns them (and a total SD) back
into SDs and fixed effects, keeping the spec's correlations.

Example:
    >>> from lmmcore import PRESETS
    >>> p1 = PRESETS["P1"]
    >>> st = standardize(p1.spec, p1.design)
    >>> round(st.total_sd**2, 6), round(st.d["X_i"], 4)   # 100^2 + 40^2/4 + 80^2 + 200^2
    (56800.0, 0.2098)
    >>> spec = unstandardize(p1.spec, p1.design, d={"X_i": 0.5})
    >>> round(spec.fixed["X_i"], 2)                       # 0.5 x sqrt(56800)
    119.16
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lmmcore.design import Design
from lmmcore.errors import SpecError
from lmmcore.simulate import SeedLike
from lmmcore.spec import ModelSpec, _number
from lmmcore.structure import ModelStructure

__all__ = ["Standardized", "standardize", "unstandardize"]

RESIDUAL = "residual"
COVARIANCES = "covariances"
_SUM_TOL = 1e-9


@dataclass(frozen=True)
class Standardized:
    """A spec's effects and variances without units (see the module docstring).

    Attributes:
        total_sd: the square root of the total variance.
        d: coefficient -> Cohen's d (every fixed effect but the intercept).
        vpc: ``"group: term"`` -> share of the total variance, plus ``"residual"`` and
            ``"covariances"``; they sum to 1.
        steps: coefficient -> the step of its column that d refers to.
    """

    total_sd: float
    d: dict[str, float]
    vpc: dict[str, float]
    steps: dict[str, float]


def _structure(spec: ModelSpec, design: Design, seed: SeedLike) -> ModelStructure:
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"spec must be a ModelSpec, got {type(spec).__name__}.")
    if not isinstance(design, Design):
        raise SpecError(
            f"design must be a Design (its factors give the steps of d), got "
            f"{type(design).__name__}."
        )
    return spec.structure(design.conditions(np.random.default_rng(seed)))


def _steps(s: ModelStructure, design: Design) -> dict[str, float]:
    two_level = {
        f.name: float(np.ptp(f.contrasts()[:, 0]))
        for f in design.factors
        if f.n_levels == 2 and f.coding != "categorical"
    }
    return {
        name: math.prod(two_level.get(part, 1.0) for part in name.split(":"))
        for name in s.fe_names
        if name != "(Intercept)"
    }


def _moments(s: ModelStructure) -> list[np.ndarray]:
    """Per block, the mean over rows of T_i T_i' (k x k)."""
    return [b.T.T @ b.T / s.n for b in s.blocks]


def _corr(spec: ModelSpec, group: str, terms: tuple[str, ...]) -> np.ndarray:
    entry = spec.random[group]
    if entry["corr"] is None:
        return np.eye(len(terms))
    keys = list(entry["sd"])
    idx = [keys.index(t) for t in terms]
    return entry["corr"][np.ix_(idx, idx)]


def _shares(spec: ModelSpec, s: ModelStructure) -> tuple[float, dict[str, float]]:
    """Total variance and the variance parts (not yet divided by it)."""
    parts: dict[str, float] = {}
    cov = 0.0
    for b, m in zip(s.blocks, _moments(s), strict=True):
        sd = np.array([spec.random[b.group]["sd"][t] for t in b.terms])
        C = sd[:, None] * _corr(spec, b.group, b.terms) * sd[None, :] * m
        for i, t in enumerate(b.terms):
            parts[f"{b.group}: {t}"] = float(C[i, i])
        cov += float(C.sum() - np.trace(C))
    parts[RESIDUAL] = spec.sigma**2
    parts[COVARIANCES] = cov
    return sum(parts.values()), parts


def standardize(spec: ModelSpec, design: Design, *, seed: SeedLike = 0) -> Standardized:
    """Cohen's d of every effect, the VPCs and the total SD of ``spec`` on ``design``.

    ``seed`` fixes the design's random parts (covariates, missing rows), which enter the
    column means; designs without them do not depend on it.

    Example:
        >>> from lmmcore import PRESETS
        >>> st = standardize(PRESETS["P1"].spec, PRESETS["P1"].design)
        >>> {k: round(v, 4) for k, v in st.vpc.items()}
        ... # doctest: +NORMALIZE_WHITESPACE
        {'subj_id: (Intercept)': 0.1761, 'subj_id: X_i': 0.007, 'item_id: (Intercept)': 0.1127,
         'residual': 0.7042, 'covariances': 0.0}
    """
    s = _structure(spec, design, seed)
    total, parts = _shares(spec, s)
    sd = math.sqrt(total)
    steps = _steps(s, design)
    d = {name: spec.fixed[name] * step / sd for name, step in steps.items()}
    vpc = {k: v / total for k, v in parts.items()}
    return Standardized(sd, d, vpc, steps)


def unstandardize(
    spec: ModelSpec,
    design: Design,
    *,
    d: Mapping[str, float] | None = None,
    vpc: Mapping[str, float] | None = None,
    total_sd: float | None = None,
    seed: SeedLike = 0,
) -> ModelSpec:
    """A copy of ``spec`` whose effects have the given d and whose variances have the
    given shares of a total SD (the inverse of `standardize`).

    Args:
        spec: the model; its formula, correlations, contrasts, intercept and any effect
            not in ``d`` are kept.
        design: the design the d and VPCs refer to.
        d: coefficient -> Cohen's d.
        vpc: a share for every random term (``"group: term"``, as `standardize` names
            them); ``"residual"`` may be left out (it is then what remains) or given
            (then all must sum to 1 with the ``"covariances"`` the correlations imply).
            None keeps the spec's SDs and sigma (scaled to ``total_sd`` if given).
        total_sd: the total SD (default: the spec's own).
        seed: as in `standardize`.

    Raises:
        SpecError: unknown names, shares that are negative or do not add up, or a
            residual share that would not be positive.

    Example:
        >>> from lmmcore import PRESETS
        >>> p1 = PRESETS["P1"]
        >>> vpc = {"subj_id: (Intercept)": 0.2, "subj_id: X_i": 0.05,
        ...        "item_id: (Intercept)": 0.15}
        >>> s = unstandardize(p1.spec, p1.design, vpc=vpc, total_sd=100.0, d={"X_i": 0.3})
        >>> s.sigma, s.random["subj_id"]["sd"]["X_i"], s.fixed["X_i"]  # sqrt(.6), sqrt(.05 * 4)
        (77.45966692414834, 44.721359549995796, 30.0)
    """
    s = _structure(spec, design, seed)
    total0, parts0 = _shares(spec, s)
    total = total0 if total_sd is None else _number(total_sd, "total_sd") ** 2
    if total <= 0:
        raise SpecError(f"total_sd must be > 0, got {total_sd!r}.")
    random = {g: {"sd": dict(e["sd"]), "corr": e["corr"]} for g, e in spec.random.items()}
    if vpc is None:
        scale = math.sqrt(total / total0)
        for e in random.values():
            e["sd"] = {t: v * scale for t, v in e["sd"].items()}
        sigma = spec.sigma * scale
    else:
        sigma = _sds_from_shares(spec, s, vpc, total, random, parts0)
    fixed = dict(spec.fixed)
    if d is not None:
        steps = _steps(s, design)
        for name, value in d.items():
            if name not in steps:
                raise SpecError(
                    f"d has unknown coefficient {name!r}; the coefficients with a d are: "
                    f"{', '.join(steps)} (the intercept has none)."
                )
            fixed[name] = _number(value, f"d[{name!r}]") * math.sqrt(total) / steps[name]
    for e in random.values():
        if e["corr"] is not None:
            e["corr"] = np.asarray(e["corr"]).tolist()
    return dataclasses.replace(spec, fixed=fixed, random=random, sigma=sigma)


def _sds_from_shares(spec, s, vpc, total, random, parts0) -> float:
    """Set the SDs in ``random`` from the shares; return sigma."""
    if not isinstance(vpc, Mapping):
        raise SpecError(f"vpc must be a dict of 'group: term' -> share, got {vpc!r}.")
    terms = [k for k in parts0 if k not in (RESIDUAL, COVARIANCES)]
    unknown = [k for k in vpc if k not in parts0]
    missing = [k for k in terms if k not in vpc]
    if unknown or missing:
        what = []
        if unknown:
            what.append(f"unknown name(s) {', '.join(map(repr, unknown))}")
        if missing:
            what.append(f"no share for {', '.join(map(repr, missing))}")
        raise SpecError(
            f"vpc has {' and '.join(what)}; give a share for each of: {', '.join(terms)} "
            "(and optionally 'residual')."
        )
    shares = {k: _number(v, f"vpc[{k!r}]") for k, v in vpc.items()}
    neg = [k for k, v in shares.items() if v < 0 and k != COVARIANCES]
    if neg:
        raise SpecError(f"vpc[{neg[0]!r}] = {shares[neg[0]]:g} is negative; a share is >= 0.")
    cov = 0.0
    for b, m in zip(s.blocks, _moments(s), strict=True):
        v = np.array([shares[f"{b.group}: {t}"] for t in b.terms])
        diag = np.diag(m)
        sd = np.sqrt(np.divide(v * total, diag, out=np.zeros_like(v), where=diag > 0))
        for t, x in zip(b.terms, sd, strict=True):
            random[b.group]["sd"][t] = float(x)
        C = sd[:, None] * _corr(spec, b.group, b.terms) * sd[None, :] * m
        cov += float(C.sum() - np.trace(C)) / total
    if COVARIANCES in shares and abs(shares[COVARIANCES] - cov) > _SUM_TOL:
        raise SpecError(
            f"vpc['covariances'] = {shares[COVARIANCES]:g}, but the spec's correlations with "
            f"these shares give {cov:g}; leave it out (it follows from the correlations)."
        )
    residual = 1.0 - sum(shares[k] for k in terms) - cov
    if RESIDUAL in shares:
        if abs(shares[RESIDUAL] - residual) > _SUM_TOL:
            raise SpecError(
                f"The shares sum to {sum(shares[k] for k in terms) + cov + shares[RESIDUAL]:.6g}"
                f" (covariances {cov:.6g} included), not 1; leave 'residual' out to take "
                "what remains, or change the shares."
            )
    if residual <= 0:
        raise SpecError(
            f"The random terms' shares (with covariances {cov:.3g}) leave {residual:.3g} for "
            "the residual; it must be > 0. Lower the shares."
        )
    return math.sqrt(residual * total)
