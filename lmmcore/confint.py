"""Confidence intervals for every parameter of a fit, as lme4's ``confint()``.

The parameters are lme4's: the standard deviations and correlations of each random-effects
block, the residual SD sigma, then the fixed effects. Three methods:

- ``"Wald"``: fixed effects +- z SE; NA for the variance parameters, as lme4.
- ``"profile"``: for each parameter, the ML deviance profiled over all the others (the
  variance parameters on lme4's sd/cor/sigma scale with the fixed effects profiled out,
  a fixed effect by refitting with it held as an offset) and the values where the signed
  square root of the deviance increase, zeta, crosses the normal quantiles. lme4
  interpolates a spline through profile points; here each crossing is a root of the
  profile itself. As lme4's ``profile``, a REML fit is refitted by ML first. A profile
  that does not cross before a bound (an SD at 0, a correlation at +-1) gives the bound.
- ``"boot"``: the parametric bootstrap of :func:`lmmcore.bootMer`, with the intervals of
  the SDs, correlations, sigma and fixed effects on the data scale.

Example:
    >>> import lmmcore
    >>> res = lmmcore.fit("Yield ~ 1 + (1 | Batch)", lmmcore.load_dataset("Dyestuff"))
    >>> ci = res.confint(method="Wald")
    >>> ci.index.tolist(), ci.columns.tolist()
    (['.sig01', '.sigma', '(Intercept)'], ['2.5 %', '97.5 %'])
    >>> res.confint(oldNames=False).round(2)
                            2.5 %   97.5 %
    sd_(Intercept)|Batch    12.20    84.06
    sigma                   38.23    67.66
    (Intercept)           1486.45  1568.55
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from lmmcore.engine import Engine
from lmmcore.errors import ConvergenceWarning
from lmmcore.fit import fit_structure, refit_ml
from lmmcore.optimize import minimize_theta
from lmmcore.result import LMMResult
from lmmcore.simulate import SeedLike
from lmmcore.structure import ModelStructure

METHODS = ("Wald", "profile", "boot")
#: a profile that has not crossed after this many doublings of the step is unbounded
MAX_DOUBLINGS = 40


# --------------------------------------------------------------------------- lme4's scale


def parameter_names(structure: ModelStructure, old_names: bool = True) -> list[str]:
    """lme4's names of the variance parameters: ``.sig01``, ..., ``.sigma``, or with
    ``old_names=False`` ``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``,
    ``sigma``. The order is theta's (each block's lower triangle, column by column)."""
    if old_names:
        return [f".sig{i + 1:02d}" for i in range(structure.n_theta)] + [".sigma"]
    names = []
    for b in structure.blocks:
        for i, j in zip(*b.tril, strict=True):
            if i == j:
                names.append(f"sd_{b.terms[i]}|{b.group}")
            else:
                names.append(f"cor_{b.terms[i]}.{b.terms[j]}|{b.group}")
    return [*names, "sigma"]


def sdcor(structure: ModelStructure, theta: np.ndarray, sigma: float) -> np.ndarray:
    """theta and sigma on lme4's scale: per block the SDs and correlations of the random
    effects (theta's order), then sigma (lme4's ``Cv_to_Sv``)."""
    out = []
    for b, lam in zip(structure.blocks, structure.lambdas(theta), strict=True):
        cov = sigma**2 * lam @ lam.T
        sd = np.sqrt(np.diag(cov))
        for i, j in zip(*b.tril, strict=True):
            if i == j:
                out.append(sd[i])
            else:
                out.append(cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else 0.0)
    return np.array([*out, sigma])


def on_data_scale(boot: Any, result: LMMResult, old_names: bool = False) -> Any:
    """A bootstrap of the default statistic (fixed effects, sigma, theta) as lme4 reports
    it: the SDs and correlations of each random-effects block, sigma, then the fixed
    effects, with lme4's names (``sd_(Intercept)|Subject`` with ``old_names=False``).

    Example:
        >>> import lmmcore
        >>> res = lmmcore.fit("Yield ~ 1 + (1 | Batch)", lmmcore.load_dataset("Dyestuff"))
        >>> on_data_scale(lmmcore.bootMer(res, B=20, seed=1), res).names
        ['sd_(Intercept)|Batch', 'sigma', '(Intercept)']
    """
    from lmmcore.bootstrap import BootResult

    s = result.structure
    p = s.p
    expected = p + 1 + s.n_theta
    if boot.estimates.shape[1] != expected:
        raise ValueError(
            f"on_data_scale needs a bootstrap of the default statistic ({expected} values per "
            f"replicate); this one has {boot.estimates.shape[1]}."
        )
    est = np.array(
        [np.concatenate([sdcor(s, row[p + 1 :], row[p]), row[:p]]) for row in boot.estimates]
    ).reshape(len(boot.estimates), expected)
    t0 = np.concatenate([sdcor(s, result.theta, result.sigma), result.solution.beta])
    names = [*parameter_names(s, old_names), *s.fe_names]
    return BootResult(est, names, t0, boot.status, boot.interrupted)


def true_parameters(spec: Any, structure: ModelStructure) -> dict[str, float]:
    """A spec's true values under lme4's names (``sd_(Intercept)|subj``, ``sigma``, fixed
    effects), for putting the truth beside bootstrap or profile intervals."""
    values = sdcor(structure, spec.theta_for(structure), spec.sigma)
    names = parameter_names(structure, old_names=False)
    out = dict(zip(names, map(float, values), strict=True))
    out.update({n: float(spec.fixed[n]) for n in structure.fe_names})
    return out


def _cholesky_psd(C: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor of a positive semi-definite matrix (zero pivots allowed),
    or None when C is not positive semi-definite."""
    k = C.shape[0]
    L = np.zeros_like(C)
    tol = 1e-12 * max(1.0, float(np.max(np.abs(np.diag(C)))))
    for j in range(k):
        d = C[j, j] - L[j, :j] @ L[j, :j]
        if d < -tol:
            return None
        if d <= tol:
            rest = C[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]
            if np.any(np.abs(rest) > 1e-8 * max(1.0, np.sqrt(tol))):
                return None
            continue
        L[j, j] = np.sqrt(d)
        L[j + 1 :, j] = (C[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]
    return L


def theta_from_sdcor(structure: ModelStructure, v: np.ndarray) -> np.ndarray | None:
    """The inverse of :func:`sdcor` (lme4's ``Sv_to_Cv``): theta for SDs, correlations
    and sigma ``v``, or None where the correlations are not a valid correlation matrix."""
    sigma = v[-1]
    theta = np.empty(structure.n_theta)
    for b, sl in zip(structure.blocks, structure.theta_slices, strict=True):
        r, c = b.tril
        S = np.eye(b.k)
        S[r, c] = S[c, r] = v[sl]
        sd = np.diag(S).copy()
        R = S.copy()
        np.fill_diagonal(R, 1.0)
        L = _cholesky_psd(np.outer(sd, sd) * R / sigma**2)
        if L is None:
            return None
        theta[sl] = L[r, c]
    return theta


def _bounds(structure: ModelStructure) -> tuple[np.ndarray, np.ndarray]:
    """lme4's profile bounds on the sd/cor scale: SDs in [0, inf), correlations in
    [-1, 1], sigma in [0, inf)."""
    diag = structure.theta_lower == 0.0
    lower = np.append(np.where(diag, 0.0, -1.0), 0.0)
    upper = np.append(np.where(diag, np.inf, 1.0), np.inf)
    return lower, upper


# --------------------------------------------------------------------------- profile


@dataclasses.dataclass(frozen=True, eq=False)
class _Profile:
    """The ML deviance of one fit, profiled one parameter at a time."""

    ml: LMMResult  # the fit by maximum likelihood

    @cached_property
    def estimate(self) -> np.ndarray:
        """Variance parameters on lme4's scale, then the fixed effects."""
        s, sol = self.ml.structure, self.ml.solution
        return np.concatenate([sdcor(s, sol.theta, self.ml.sigma), sol.beta])

    @property
    def n_varpar(self) -> int:
        return self.ml.structure.n_theta + 1

    def deviance(self, v: np.ndarray) -> float:
        """ML deviance at variance parameters ``v`` (sd/cor/sigma), beta profiled."""
        theta = theta_from_sdcor(self.ml.structure, v)
        if theta is None or not v[-1] > 0:
            return np.inf
        ml = self.ml
        return ml.engine.deviance_varpar(theta, v[-1], ml.rep, ml.responses, reml=False)

    def _devdiff(self, value: float, what: str) -> float:
        diff = value - self.ml.objective
        if diff < -1e-6:
            warnings.warn(
                f"profiling {what} found a deviance {-diff:.3g} below the fit's: the fit "
                "had not converged; the interval is taken from the profile as it is.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return max(0.0, diff)

    def zeta_varpar(self, w: int, x: float) -> float:
        """Signed root deviance with variance parameter ``w`` held at ``x``."""
        est = self.estimate[: self.n_varpar]
        lower, upper = _bounds(self.ml.structure)
        free = np.arange(est.size) != w
        scale = np.where(lower[free] == -1.0, 1.0, np.maximum(np.abs(est[free]), 1e-3))

        def dev(z: np.ndarray) -> float:
            v = est.copy()
            v[w] = x
            v[free] = z * scale
            return self.deviance(v)

        opt = minimize_theta(dev, est[free] / scale, lower[free] / scale, upper=upper[free] / scale)
        return float(np.sign(x - est[w]) * np.sqrt(self._devdiff(opt.fun, f"parameter {w}")))

    @cached_property
    def _dropped(self) -> list[tuple[ModelStructure, Engine]]:
        s = self.ml.structure
        out = []
        for j in range(s.p):
            reduced = dataclasses.replace(
                s, X=np.delete(s.X, j, axis=1), fe_names=s.fe_names[:j] + s.fe_names[j + 1 :]
            )
            out.append((reduced, Engine(reduced)))
        return out

    def zeta_fixed(self, j: int, b: float) -> float:
        """Signed root deviance with fixed effect ``j`` held at ``b`` (an offset)."""
        reduced, engine = self._dropped[j]
        y = self.ml.y - self.ml.structure.X[:, j] * b
        refit = fit_structure(
            reduced,
            REML=False,
            engine=engine,
            responses=engine.responses(y[:, None]),
            start=self.ml.theta,
            warn=False,
        )
        est = self.ml.solution.beta[j]
        return float(np.sign(b - est) * np.sqrt(self._devdiff(refit.objective, f"beta {j}")))

    def interval(self, i: int, z: float) -> tuple[float, float]:
        """Where zeta crosses -z and +z for parameter ``i`` (variance parameters first)."""
        est = self.estimate[i]
        if i < self.n_varpar:
            lower, upper = _bounds(self.ml.structure)
            lo, hi = lower[i], upper[i]
            step = 0.2 if lo == -1.0 else (0.5 * est if est > 0 else 0.25 * self.ml.sigma)

            def zeta(x: float) -> float:
                return self.zeta_varpar(i, x)
        else:
            lo, hi = -np.inf, np.inf
            step = float(self.ml.bse.iloc[i - self.n_varpar])

            def zeta(x: float) -> float:
                return self.zeta_fixed(i - self.n_varpar, x)

        cached = _cache(zeta)
        return (
            _crossing(cached, est, lo, -1, z, step),
            _crossing(cached, est, hi, +1, z, step),
        )


def _cache(f: Callable[[float], float]) -> Callable[[float], float]:
    seen: dict[float, float] = {}

    def g(x: float) -> float:
        x = float(x)
        if x not in seen:
            seen[x] = f(x)
        return seen[x]

    return g


def _crossing(
    zeta: Callable[[float], float], est: float, bound: float, side: int, z: float, step: float
) -> float:
    """The x between ``est`` and ``bound`` where ``zeta(x) = side * z`` (zeta increases
    through 0 at ``est``); ``bound`` if the profile does not get there."""
    if est == bound:
        return bound
    inner = est
    for _ in range(MAX_DOUBLINGS):
        x = est + side * step
        if (x - bound) * side >= 0:
            x = bound
        if side * zeta(x) >= z:
            a, b = sorted((inner, x))
            return float(
                optimize.brentq(lambda t: zeta(t) - side * z, a, b, xtol=1e-10 * max(1, abs(est)))
            )
        if x == bound:
            return bound
        inner, step = x, 2 * step
    return bound if np.isfinite(bound) else np.nan


# --------------------------------------------------------------------------- confint


def _columns(level: float) -> list[str]:
    a = (1 - level) / 2
    return [f"{np.format_float_positional(round(100 * p, 10), trim='-')} %" for p in (a, 1 - a)]


def _select(names: list[str], n_varpar: int, parm: str | Sequence[str] | None) -> list[int]:
    if parm is None:
        return list(range(len(names)))
    if isinstance(parm, str) and parm in ("theta_", "beta_"):
        return list(range(n_varpar)) if parm == "theta_" else list(range(n_varpar, len(names)))
    wanted = [parm] if isinstance(parm, str) else list(parm)
    unknown = [p for p in wanted if p not in names]
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {unknown}; choose from {names}, 'theta_' (the variance "
            "parameters) or 'beta_' (the fixed effects)."
        )
    return [names.index(p) for p in wanted]


def confint(
    result: LMMResult,
    parm: str | Sequence[str] | None = None,
    level: float = 0.95,
    method: str = "profile",
    oldNames: bool = True,
    nsim: int = 500,
    boot_type: str = "perc",
    seed: SeedLike = None,
    **boot_kwargs: Any,
) -> pd.DataFrame:
    """Confidence intervals for the variance parameters and fixed effects (lme4's
    ``confint.merMod``); see :meth:`LMMResult.confint`."""
    if not isinstance(level, float | int) or isinstance(level, bool) or not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}.")
    by_lower = {m.lower(): m for m in METHODS}
    if not isinstance(method, str) or method.lower() not in by_lower:
        raise ValueError(f"Unknown method {method!r}; use one of {', '.join(METHODS)}.")
    method = by_lower[method.lower()]
    s = result.structure
    names = [*parameter_names(s, old_names=bool(oldNames)), *result.fe_names]
    n_varpar = s.n_theta + 1
    rows = _select(names, n_varpar, parm)
    a = (1 - level) / 2
    ci = np.full((len(names), 2), np.nan)
    if method == "Wald":
        q = stats.norm.ppf(1 - a)
        est, se = result.fe_params.to_numpy(), result.bse.to_numpy()
        ci[n_varpar:] = np.column_stack([est - q * se, est + q * se])
    elif method == "profile":
        prof = _Profile(refit_ml(result, warn=False))
        z = stats.norm.ppf(1 - a)
        for i in rows:
            ci[i] = prof.interval(i, z)
    else:
        from lmmcore.bootstrap import bootMer

        boot = bootMer(result, B=nsim, seed=seed, **boot_kwargs)
        ci = on_data_scale(boot, result, bool(oldNames)).ci(boot_type, level)
    return pd.DataFrame(ci[rows], index=[names[i] for i in rows], columns=_columns(level))
