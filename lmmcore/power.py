"""Simulation-based power analysis of linear mixed models.

One design, many simulated responses: the design's conditions (X, Z) are built once, each
chunk of replicates draws responses from the ground truth (`ModelSpec`), refits them all
in lockstep (`lmmcore.refit.refit_batch`) and tests every fixed effect from the same fit.
Replicate ``i`` uses its own random stream, so results do not depend on the chunking, the
number of workers or the backend, and :meth:`PowerResult.extend` adds replicates
``nsim..nsim+k-1`` exactly as one longer run would have drawn them.

Example:
    >>> from lmmcore import PRESETS
    >>> p1 = PRESETS["P1"]
    >>> res = power(p1.spec, p1.design.with_size(subjects=20), nsim=20, seed=1)
    >>> row = res.table.loc["X_i"]
    >>> float(row["true_value"]), int(row["n_valid"]), row["quantity"]
    (50.0, 20, 'power')
    >>> res.extend(nsim=10).nsim
    30
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from lmmcore.backends import Backend, get_backend
from lmmcore.crn import SharedDraws, shared_draws
from lmmcore.design import Design
from lmmcore.engine import Engine
from lmmcore.errors import DesignError, LmmError, LmmWarning, PowerError
from lmmcore.limits import MAX_NSIM
from lmmcore.refit import (
    SHARED_H_REPLICATES,
    STATUS_DTYPE,
    STATUSES,
    refit_batch,
    shared_hessian,
)
from lmmcore.simulate import SeedLike, child_seeds, draw_responses, seed_sequence
from lmmcore.spec import ModelSpec
from lmmcore.structure import ModelStructure, build_structure

__all__ = [
    "TESTS",
    "PowerResult",
    "SampleSizeResult",
    "find_sample_size",
    "power",
    "power_curve",
    "smooth_power_table",
]

TESTS = ("wald", "satterthwaite", "kr", "lrt")
DEFAULT_CHUNK = 250
#: Largest fraction of failed refits tolerated before `power` raises PowerError.
MAX_FAILED_FRACTION = 0.10
#: Share of singular refits above which `power` warns that the design does not support
#: the random-effect structure.
SINGULAR_WARN_SHARE = 0.2
#: Below this many levels of a grouping factor `power` warns that the Wald z test is
#: anticonservative.
WALD_MIN_LEVELS = 30
#: Per-replicate arrays of a run, in the order the chunks return them.
ARRAYS = ("est", "se", "stat", "df", "p", "p_null", "rej", "rej_null", "status")


# ----------------------------------------------------------------------------- problem


@dataclass(frozen=True, eq=False)
class _Problem:
    """Everything a chunk needs; pickled once per worker (scattered once on Dask)."""

    token: str
    sim: ModelStructure  # truth structure (responses are drawn on it)
    beta: np.ndarray
    theta: np.ndarray
    sigma: float
    fit: ModelStructure  # analysis structure
    start: np.ndarray
    test: str
    alpha: float
    cols: tuple[int, ...]  # analysis coefficients tested (indices into fit.fe_names)
    shared: SharedDraws | None = None  # common random numbers with a larger design
    # the type-I error of each tested effect: its true value, its column in sim.X, and
    # how its null p-value is had ("same": true value 0; "shift": from the fit itself;
    # "reduced": one reduced-model refit; "refit": a refit of the analysis model)
    null_beta: tuple[float, ...] = ()
    null_col: tuple[int, ...] = ()
    null_how: tuple[str, ...] = ()

    @property
    def null_refits(self) -> tuple[int, ...]:
        """Extra refits per replicate that each tested effect's type-I error takes."""
        extra = {"same": 0, "shift": 0, "reduced": 1, "refit": 2 if self.test == "lrt" else 1}
        return tuple(extra[h] for h in self.null_how)


_CACHE: dict[tuple[str, str], Any] = {}


def _cached(problem: _Problem, what: str, build: Callable[[], Any]) -> Any:
    key = (problem.token, what)
    if key not in _CACHE:
        if len(_CACHE) > 32:
            _CACHE.clear()
        _CACHE[key] = build()
    return _CACHE[key]


def _reduced(s: ModelStructure, j: int) -> ModelStructure:
    names = tuple(n for i, n in enumerate(s.fe_names) if i != j)
    return dataclasses.replace(s, X=np.delete(s.X, j, 1), fe_names=names)


def _shared_start(pr: _Problem, eng: Engine, root, reml: bool, key: str = "fit") -> Any:
    """The refits' quasi-Newton start, from replicate streams 0..7 whatever the chunk, so a
    replicate's numbers do not depend on the chunking (cached per worker)."""

    def build():
        Y0 = draw_responses(
            pr.sim,
            pr.beta,
            pr.theta,
            pr.sigma,
            child_seeds(root, 0, SHARED_H_REPLICATES),
            shared=pr.shared,
        )
        return shared_hessian(eng, Y0, pr.start, reml)

    return _cached(pr, f"H0-{key}-{root.entropy}-{root.spawn_key}", build)


def _run_chunk(problem: _Problem, start: int, stop: int, root: np.random.SeedSequence) -> dict:
    """Simulate replicates start..stop-1, refit, test; arrays of (B, p_tested) and (B,)."""
    pr = problem
    with threadpool_limits(1):
        seeds = child_seeds(root, start, stop)
        Y = draw_responses(pr.sim, pr.beta, pr.theta, pr.sigma, seeds, shared=pr.shared)
        eng = _cached(pr, "engine", lambda: Engine(pr.fit))
        reml = pr.test != "lrt"
        H0 = _shared_start(pr, eng, root, reml)
        resp = eng.responses(Y)  # once: the refits, the df and the oracle share them
        # only the Satterthwaite df reuse the refits' last stencils
        wanted = pr.test == "satterthwaite"
        fits = refit_batch(eng, Y, pr.start, REML=reml, H0=H0, stencil=wanted, responses=resp)
        out = _tests(pr, eng, Y, fits, pr.cols, start, root=root, resp=resp)
        out["p_null"] = np.full(out["p"].shape, np.nan)
        out["rej"] = np.full(out["p"].shape, np.nan)
        out["rej_null"] = np.full(out["p"].shape, np.nan)
        if pr.null_how:
            _null_p(pr, eng, Y, fits, out, start, root)
        if pr.test != "lrt":
            _conditional(pr, Y, out, resp if pr.fit is pr.sim else None)
    return out


def _oracle(pr: _Problem) -> tuple[Engine, np.ndarray, np.ndarray]:
    """The analysis model's fixed effects by generalised least squares at the true
    covariance: its engine, the estimator's mean and its variances (see `_conditional`)."""
    if pr.fit is pr.sim:  # the analysis model is the truth's: its engine is the oracle's
        o, eng = pr.fit, _cached(pr, "engine", lambda: Engine(pr.fit))
    else:
        o = dataclasses.replace(pr.sim, X=pr.fit.X, fe_names=pr.fit.fe_names)
        eng = Engine(o)
    p = o.p
    # the estimator is linear in y: its mean is b0(mu + w) - b0(w) for any w (with w the
    # reduced products are those of a full-rank [X y])
    w = np.random.default_rng(0).standard_normal(o.n)
    resp = eng.responses(np.column_stack([pr.sim.X @ pr.beta + w, w]))
    _, _, _, MW = eng.kernel_parts(np.repeat(pr.theta[None], 2, 0), np.arange(2), resp)
    A = MW[0, :p, :p]
    mean = np.linalg.solve(A, MW[0, :p, p] - MW[1, :p, p])
    var = pr.sigma**2 * np.diag(np.linalg.inv(A))
    return eng, mean, var


def _conditional(pr: _Problem, Y: np.ndarray, out: dict, resp=None) -> None:
    """Fill ``out["rej"]`` (and ``out["rej_null"]``): each replicate's probability of
    rejecting given everything but the oracle estimate (conditional Monte Carlo).

    Write a replicate's estimate as beta-hat = b0 + h, with b0 the generalised least-squares
    estimate at the true covariance. The REML/ML fit sees the response only through its
    residual from the fixed effects (the error contrasts), so the variance estimates, the
    SE, the df and h are functions of the contrasts alone, while b0 ~ N(m, v) is
    independent of the contrasts (they are uncorrelated and jointly normal). So given the
    contrasts, t = (b0 + h - b) / se rejects with probability
    Phi((a - c se) / sqrt(v)) + Phi((-a - c se) / sqrt(v)), a = m + h - b, c the test's
    critical value. Its average over replicates estimates power without bias, with a
    smaller variance than the share of rejections (Rao-Blackwell).
    """
    cols = list(pr.cols)
    eng, mean, var = _cached(pr, "oracle", lambda: _oracle(pr))
    B = Y.shape[1]
    if resp is None:  # (given: the analysis engine's, which is then the oracle's)
        resp = eng.responses(Y)
    _, _, _, MW = eng.kernel_parts(np.repeat(pr.theta[None], B, 0), np.arange(B), resp)
    p = eng.p
    b0 = np.linalg.solve(MW[:, :p, :p], MW[:, :p, p][:, :, None])[..., 0][:, cols]
    h = out["est"] - b0
    crit = _crit(out["df"], pr.alpha, pr.test) * out["se"]
    sd = np.sqrt(var[cols])

    def prob(a):
        r = stats.norm.cdf((a - crit) / sd) + stats.norm.cdf((-a - crit) / sd)
        return np.where(np.isfinite(out["p"]), r, np.nan)

    a = mean[cols] + h
    out["rej"] = prob(a)
    out["rej_null"] = np.full(out["p"].shape, np.nan)
    for c, how in enumerate(pr.null_how):
        if how == "same":
            out["rej_null"][:, c] = out["rej"][:, c]
        elif how == "shift":
            out["rej_null"][:, c] = prob(a - np.asarray(pr.null_beta))[:, c]


def _p_value(stat: np.ndarray, df: np.ndarray, test: str) -> np.ndarray:
    if test == "wald":
        return 2 * stats.norm.sf(np.abs(stat))
    return 2 * stats.t.sf(np.abs(stat), df)


def _tests(
    pr: _Problem, eng: Engine, Y: np.ndarray, fits, cols, start: int, what="", root=None, resp=None
) -> dict:
    """Test the coefficients ``cols`` of the fits of ``Y``; ``what`` names a null model in
    error messages."""
    cols = list(cols)
    B = Y.shape[1]
    est = fits.beta[:, cols]
    se = fits.se[:, cols]
    status = fits.status.astype(object)
    df = np.full((B, len(cols)), np.inf)
    errors: list[str] = []
    failed = status == "failed"
    for i in np.flatnonzero(failed):
        errors.append(
            f"replicate {start + i}: the refit{what} failed (the REML/ML criterion is not "
            "finite at the start or the optimum)."
        )
    stat = est / se
    if pr.test == "wald":
        pval = _p_value(stat, df, "wald")
    elif pr.test == "satterthwaite":
        from lmmcore.batch_inference import batch_satterthwaite

        resp = eng.responses(Y) if resp is None else resp
        # the refit's own Newton stencil gives the derivatives (df within ~0.5%)
        df = np.asarray(batch_satterthwaite(eng, resp, fits, True, reuse=True), dtype=float)
        df = df[:, cols]
        pval = _p_value(stat, df, "satterthwaite")
    elif pr.test == "kr":
        se, df, pval, stat = _kr(pr, fits, cols, est, errors, start)
    else:  # lrt
        stat = np.full((B, len(cols)), np.nan)
        for c, j in enumerate(cols):
            red_eng = _cached(pr, f"reduced{j}", lambda j=j: Engine(_reduced(pr.fit, j)))
            h0 = None if root is None else _shared_start(pr, red_eng, root, False, f"red{j}")
            red = refit_batch(red_eng, Y, pr.start, REML=False, H0=h0, stencil=False)
            ok = (red.status != "failed") & ~failed
            chi = np.maximum(red.objective - fits.objective, 0.0)
            stat[ok, c] = chi[ok]
            for i in np.flatnonzero((red.status == "failed") & ~failed):
                errors.append(
                    f"replicate {start + i}: the reduced-model refit without "
                    f"{pr.fit.fe_names[j]}{what} failed."
                )
        pval = stats.chi2.sf(stat, 1)
    bad = failed[:, None] | ~np.isfinite(pval)
    for i in np.flatnonzero(bad.any(axis=1) & ~failed):
        errors.append(
            f"replicate {start + i}: the {pr.test} test{what} gave no p-value (its statistic "
            "or degrees of freedom are not finite; the refit may be degenerate)."
        )
    return {
        "est": np.where(failed[:, None], np.nan, est),
        "se": np.where(failed[:, None], np.nan, se),
        "stat": stat,
        "df": df,
        "p": np.where(bad, np.nan, pval),
        "status": status.astype(STATUS_DTYPE),
        "errors": errors,
    }


def _null_p(
    pr: _Problem, eng: Engine, Y: np.ndarray, fits, out: dict, start: int, root=None
) -> None:
    """Fill ``out["p_null"]``: each effect's p-value on the same draws with its true value
    set to 0, i.e. on the responses Y - x_j beta_j (same random effects and residuals).

    REML and ML fits are invariant to adding X delta to the response (the criterion sees
    the response only through its residual from the fixed effects), so when the analysis
    model has the effect's column the null fit is the fit itself with beta_j shifted by
    -beta_j: same variance estimates, SE and df, no refit ("shift"). The LRT's reduced
    model lacks that column, so it is refitted on Y - x_j beta_j ("reduced").
    """
    for c, j in enumerate(pr.cols):
        how, b = pr.null_how[c], pr.null_beta[c]
        if how == "same":
            out["p_null"][:, c] = out["p"][:, c]
        elif how == "shift":
            stat = (out["est"][:, c] - b) / out["se"][:, c]
            out["p_null"][:, c] = _p_value(stat, out["df"][:, c], pr.test)
        else:
            Y0 = Y - np.outer(pr.sim.X[:, pr.null_col[c]], b)
            what = f" of the null model ({pr.fit.fe_names[j]} = 0)"
            reml = pr.test != "lrt"
            h0 = _shared_start(pr, eng, root, reml)
            if how == "reduced":
                fits0 = fits
            else:
                st = pr.test == "satterthwaite"
                fits0 = refit_batch(eng, Y0, pr.start, REML=reml, H0=h0, stencil=st)
            null = _tests(pr, eng, Y0, fits0, (j,), start, what, root=root)
            out["p_null"][:, c] = null["p"][:, 0]
            out["errors"].extend(null["errors"])


def _kr(pr: _Problem, fits, cols, est, errors, start):
    from lmmcore.inference import KRDesign

    s = pr.fit
    design = _cached(
        pr, "kr", lambda: KRDesign.from_blocks(s.X, [(b.codes, b.T) for b in s.blocks])
    )
    B = fits.B
    shape = (B, len(cols))
    se, df, pval, stat = (np.full(shape, np.nan) for _ in range(4))
    eye = np.eye(s.p)
    for i in range(B):
        if fits.status[i] == "failed":
            continue
        s2 = float(fits.sigma[i]) ** 2
        covs = [s2 * lam @ lam.T for lam in s.lambdas(fits.theta[i])]
        try:
            kr = design.kenward_roger(covs, s2)
            for c, j in enumerate(cols):
                t = kr.ttest(eye[j], fits.beta[i])
                se[i, c], df[i, c], stat[i, c], pval[i, c] = t.se, t.df, t.t, t.p_value
        except (LmmError, np.linalg.LinAlgError, ValueError) as exc:
            errors.append(f"replicate {start + i}: Kenward-Roger failed: {exc}")
    return se, df, pval, stat


# ----------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class PowerResult:
    """Per-replicate estimates and tests of a power simulation, and their summary.

    Arrays are (R, p) over the R finished replicates (``replicate`` gives their stream
    index) and the p tested effects (``names``). Failed refits hold NaN. ``p_null`` holds
    each effect's p-value on the same replicate with its true value set to 0 (NaN where
    the type-I error was not asked for; see `power`). ``rej`` holds each replicate's
    conditional probability of rejecting (conditional Monte Carlo; NaN for the LRT) and
    ``rej_null`` the same for the type-I error.
    """

    names: list[str]
    truth: np.ndarray
    replicate: np.ndarray
    est: np.ndarray
    se: np.ndarray
    stat: np.ndarray
    df: np.ndarray
    p: np.ndarray
    status: np.ndarray
    test: str
    alpha: float
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    p_null: np.ndarray | None = None
    rej: np.ndarray | None = None
    rej_null: np.ndarray | None = None
    _problem: _Problem | None = field(default=None, repr=False)
    _root: np.random.SeedSequence | None = field(default=None, repr=False)
    _next: int = 0
    _options: dict = field(default_factory=dict, repr=False)

    @property
    def nsim(self) -> int:
        """Number of finished replicates."""
        return int(self.replicate.size)

    def status_counts(self) -> dict[str, int]:
        """Replicates by fit status: ok, singular, not converged, failed."""
        return {k: int((self.status == k).sum()) for k in STATUSES}

    @property
    def estimates(self) -> pd.DataFrame:
        """Long table: one row per replicate and effect (estimate, se, statistic, df, p,
        significant, status)."""
        R, k = self.est.shape
        return pd.DataFrame(
            {
                "replicate": np.repeat(self.replicate, k),
                "effect": np.tile(self.names, R),
                "estimate": self.est.ravel(),
                "se": self.se.ravel(),
                "statistic": self.stat.ravel(),
                "df": self.df.ravel(),
                "p": self.p.ravel(),
                "significant": (self.p < self.alpha).ravel(),
                "p_null": self._p_null.ravel(),
                "reject_probability": self._rej("rej").ravel(),
                "status": np.repeat(self.status, k),
            }
        )

    @property
    def _p_null(self) -> np.ndarray:
        return np.full(self.p.shape, np.nan) if self.p_null is None else self.p_null

    def _rej(self, key: str) -> np.ndarray:
        v = getattr(self, key)
        return np.full(self.p.shape, np.nan) if v is None else v

    @property
    def table(self) -> pd.DataFrame:
        """One row per effect (index: effect name).

        Columns: ``true_value``; ``quantity`` ("power", or "type I error" where the true
        value is 0); ``power`` (rejection rate at ``alpha`` among valid replicates) with its
        Clopper-Pearson 95% CI ``ci_lower``/``ci_upper`` and Monte-Carlo SE ``mcse``;
        ``n_valid``; ``mean_estimate``, ``bias``, ``rmse``; ``mean_se`` vs ``sd_estimate``
        (the empirical SD of the estimates); ``coverage`` of the nominal (1 - alpha) CI
        (z, or t with the test's df); counts ``n_ok``, ``n_singular``,
        ``n_not_converged``, ``n_failed`` (failed replicates are not in the denominator);
        ``type1_error``, the rejection rate of the same test on the same replicates with
        the effect's true value set to 0, with its Clopper-Pearson 95% CI
        ``type1_ci_lower``/``type1_ci_upper`` and ``type1_refits``, the refits it took
        (no extra simulations are drawn; NaN where it was not computed).

        ``power_cmc`` estimates the same power by conditional Monte Carlo: the mean over
        valid replicates of each one's probability of rejecting given its variance
        estimates (Wald, Satterthwaite and KR; see `_conditional`). It has the same
        expectation as ``power`` and a much smaller Monte-Carlo error (``cmc_mcse``, its
        normal 95% CI ``cmc_ci_lower``/``cmc_ci_upper``); ``type1_cmc`` is the same for the
        type-I error. `power_curve` and `find_sample_size` use it where it exists.
        """
        rows = []
        refits = self._problem.null_refits if self._problem is not None else ()
        for c, name in enumerate(self.names):
            p = self.p[:, c]
            valid = np.isfinite(p)
            n = int(valid.sum())
            x = int((p[valid] < self.alpha).sum())
            lo, hi = clopper_pearson(x, n)
            rate = x / n if n else np.nan
            est = self.est[valid, c]
            se = self.se[valid, c]
            truth = float(self.truth[c])
            crit = _crit(self.df[valid, c], self.alpha, self.test)
            cover = np.abs(est - truth) <= crit * se
            st = self.status
            rows.append(
                {
                    "effect": name,
                    "true_value": truth,
                    "quantity": "type I error" if truth == 0 else "power",
                    "power": rate,
                    "ci_lower": lo,
                    "ci_upper": hi,
                    "mcse": math.sqrt(rate * (1 - rate) / n) if n else np.nan,
                    "n_valid": n,
                    "mean_estimate": float(est.mean()) if n else np.nan,
                    "bias": float(est.mean() - truth) if n else np.nan,
                    "rmse": float(np.sqrt(np.mean((est - truth) ** 2))) if n else np.nan,
                    "mean_se": float(se.mean()) if n else np.nan,
                    "sd_estimate": float(est.std(ddof=1)) if n > 1 else np.nan,
                    "coverage": float(cover.mean()) if n else np.nan,
                    "n_ok": int(((st == "ok") & valid).sum()),
                    "n_singular": int(((st == "singular") & valid).sum()),
                    "n_not_converged": int(((st == "not converged") & valid).sum()),
                    "n_failed": int((~valid).sum()),
                    **self._type1(c, refits[c] if refits else None),
                    **_cmc(self._rej("rej")[valid, c]),
                    "type1_cmc": _cmc(self._rej("rej_null")[:, c])["power_cmc"],
                }
            )
        return pd.DataFrame(rows).set_index("effect")

    def _type1(self, c: int, refits: int | None) -> dict[str, float]:
        p0 = self._p_null[:, c]
        valid = np.isfinite(p0)
        n = int(valid.sum())
        x = int((p0[valid] < self.alpha).sum())
        lo, hi = clopper_pearson(x, n)
        return {
            "type1_error": x / n if n else np.nan,
            "type1_ci_lower": lo,
            "type1_ci_upper": hi,
            "type1_refits": refits * self.nsim if n and refits is not None else np.nan,
        }

    def power(self, effect: str) -> float:
        """The rejection rate of one effect."""
        return float(self.table.loc[effect, "power"])

    def extend(self, nsim: int, **overrides: Any) -> PowerResult:
        """This result plus ``nsim`` more replicates from the same seed streams.

        Replicates ``self._next .. self._next + nsim - 1`` are drawn, so
        ``power(..., nsim=a).extend(nsim=b)`` equals ``power(..., nsim=a + b)``. Options
        such as ``n_jobs``, ``backend``, ``progress`` or ``show_progress`` may be changed.

        Example:
            >>> from lmmcore import PRESETS
            >>> p = PRESETS["P5"]
            >>> r = power(p.spec, p.design.with_size(subjects=8), nsim=4, seed=3)
            >>> r.extend(nsim=4).nsim
            8
        """
        if self._problem is None or self._root is None:
            raise PowerError("This result does not carry its simulation; it cannot be extended.")
        _check_nsim(nsim, self._next)
        opts = {**self._options, **overrides}
        target = self._next + int(nsim)
        # replicates an interrupted run did not finish come first, so that
        # power(a).extend(b) equals power(a + b) even after an interrupt
        todo = np.setdiff1d(np.arange(target), self.replicate)
        parts = [self._arrays()]
        interrupted = False
        for a, b in _runs(todo):
            try:
                more = _simulate(self._problem, self._root, a, b, **opts)
            except BackendFailure as exc:
                done = _merge([*parts, exc.finished])
                exc.partial = dataclasses.replace(self, **done, interrupted=True, _next=target)
                raise
            parts.append(more)
            if more["interrupted"]:
                interrupted = True
                break
        merged = _merge(parts)
        return dataclasses.replace(self, **merged, interrupted=interrupted, _next=target)._checked()

    def _arrays(self) -> dict:
        keys = ("replicate", "est", "se", "stat", "df", "p", "status", "errors")
        return {
            **{k: getattr(self, k) for k in keys},
            "p_null": self._p_null,
            "rej": self._rej("rej"),
            "rej_null": self._rej("rej_null"),
        }

    def _checked(self) -> PowerResult:
        failed = ~np.isfinite(self.p)
        n = failed.shape[0]
        worst = failed.sum(axis=0).max() if failed.size else 0
        if n and worst > MAX_FAILED_FRACTION * n:
            first = self.errors[0] if self.errors else "no message"
            raise PowerError(
                f"{worst} of {n} replicates failed (more than {MAX_FAILED_FRACTION:.0%}); "
                f"the power estimate would be unreliable. First error: {first}"
            )
        if worst:
            warnings.warn(
                f"{worst} of {n} replicates failed; they are excluded from the power "
                "denominators and counted in n_failed.",
                LmmWarning,
                stacklevel=3,
            )
        singular = int((self.status == "singular").sum())
        if n and singular > SINGULAR_WARN_SHARE * n:
            warnings.warn(
                f"{singular} of {n} refits ({singular / n:.0%}) were singular (a random-effect "
                "SD estimated as 0 or a correlation as +-1): this design does not support "
                "the model's random-effect structure, so its variances are poorly estimated "
                "and the tests may be miscalibrated. Consider more subjects or items, or a "
                "simpler random-effect structure (e.g. no correlations, fewer slopes).",
                LmmWarning,
                stacklevel=3,
            )
        self._warn_type1()
        return self

    def _warn_type1(self) -> None:
        """Warn when a type-I error rate lies above the Monte-Carlo range of alpha: the
        upper end of the central 95% of the rejection counts a test at alpha gives, with
        the 2.5% upper tail split over the k effects (Bonferroni), so that a calibrated
        test warns in about 2.5% of runs however many effects it tests."""
        p0 = self._p_null
        valid = np.isfinite(p0)
        k = max(1, int(valid.any(axis=0).sum()))
        high = []
        for c, name in enumerate(self.names):
            n = int(valid[:, c].sum())
            x = int((p0[valid[:, c], c] < self.alpha).sum())
            top = stats.binom.ppf(1 - 0.025 / k, n, self.alpha) if n else np.inf
            if x > top:
                high.append(
                    f"{name} {x / n:.3f} (a test at alpha gives at most {top / n:.3f} in "
                    f"{1 - 0.025 / k:.1%} of runs of {n} simulations)"
                )
        if high:
            warnings.warn(
                f"The {self.test} test rejects true null hypotheses too often on this design "
                f"(alpha = {self.alpha:g}); type-I error: {'; '.join(high)}. Its power is "
                "overstated too. With few subjects or items use test='satterthwaite' or "
                "'kr' rather than 'wald'.",
                LmmWarning,
                stacklevel=4,
            )


def _cmc(rej: np.ndarray) -> dict[str, float]:
    """Mean, Monte-Carlo SE and normal 95% CI (clipped to [0, 1]) of the replicates'
    conditional rejection probabilities (NaN ones left out)."""
    r = rej[np.isfinite(rej)]
    n = r.size
    if n == 0:
        return dict.fromkeys(("power_cmc", "cmc_mcse", "cmc_ci_lower", "cmc_ci_upper"), np.nan)
    m = float(r.mean())
    se = float(r.std(ddof=1) / math.sqrt(n)) if n > 1 else np.nan
    z = stats.norm.ppf(0.975)
    return {
        "power_cmc": m,
        "cmc_mcse": se,
        "cmc_ci_lower": max(0.0, m - z * se),
        "cmc_ci_upper": min(1.0, m + z * se),
    }


def smooth_power_table(table: pd.DataFrame) -> pd.DataFrame:
    """A power table whose ``power``, ``ci_lower``, ``ci_upper`` and ``mcse`` are the
    conditional Monte-Carlo ones where those exist (column ``estimator``: "conditional"),
    the share of rejections otherwise ("rejections"); the share of rejections and its CI
    stay as ``power_rejections``, ``rejections_ci_lower``, ``rejections_ci_upper``.

    Example:
        >>> t = pd.DataFrame({"power": [0.5], "ci_lower": [0.47], "ci_upper": [0.53],
        ...                   "mcse": [0.016], "power_cmc": [0.52], "cmc_ci_lower": [0.515],
        ...                   "cmc_ci_upper": [0.525], "cmc_mcse": [0.0025]})
        >>> cols = ["power", "ci_lower", "estimator", "power_rejections"]
        >>> smooth_power_table(t)[cols].values.tolist()
        [[0.52, 0.515, 'conditional', 0.5]]
    """
    t = table.copy()
    has = t["power_cmc"].notna() & t["cmc_ci_lower"].notna()
    t["power_rejections"] = t["power"]
    t["rejections_ci_lower"] = t["ci_lower"]
    t["rejections_ci_upper"] = t["ci_upper"]
    for a, b in (("power", "power_cmc"), ("ci_lower", "cmc_ci_lower"),
                 ("ci_upper", "cmc_ci_upper"), ("mcse", "cmc_mcse")):  # fmt: skip
        t[a] = t[a].where(~has, t[b])
    t["estimator"] = np.where(has, "conditional", "rejections")
    return t


def _runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """Sorted indices -> maximal runs of consecutive ones as (start, stop) pairs."""
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    stops = np.r_[idx[breaks] + 1, idx[-1] + 1]
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _merge(parts: list[dict]) -> dict:
    """Concatenate replicate arrays and order them by replicate index."""
    rep = np.concatenate([p["replicate"] for p in parts])
    order = np.argsort(rep, kind="stable")
    out = {"replicate": rep[order]}
    for key in ARRAYS:
        out[key] = np.concatenate([p[key] for p in parts])[order]
    out["errors"] = [e for p in parts for e in p["errors"]]
    return out


def clopper_pearson(x: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial CI for x successes in n trials.

    Example:
        >>> [round(v, 4) for v in clopper_pearson(5, 100)]
        [0.0164, 0.1128]
    """
    if n == 0:
        return (np.nan, np.nan)
    a = (1 - level) / 2
    lo = 0.0 if x == 0 else float(stats.beta.ppf(a, x, n - x + 1))
    hi = 1.0 if x == n else float(stats.beta.ppf(1 - a, x + 1, n - x))
    return lo, hi


def _crit(df: np.ndarray, alpha: float, test: str) -> np.ndarray:
    if test in ("satterthwaite", "kr"):
        return stats.t.ppf(1 - alpha / 2, df)
    return np.full(df.shape, stats.norm.ppf(1 - alpha / 2))


# ----------------------------------------------------------------------------- running


def _check_nsim(nsim: Any, already: int = 0) -> int:
    n = _check_count(nsim, "nsim")
    if n + already > MAX_NSIM:
        raise PowerError(
            f"nsim = {n + already:,} simulations is more than the limit of {MAX_NSIM:,} per "
            "run; a power estimate needs about 1,000 (its Monte-Carlo SE is then about 0.016)."
        )
    return n


def _check_count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise PowerError(f"{what} must be a positive integer, got {value!r}.")
    return int(value)


def _simulate(
    problem: _Problem,
    root: np.random.SeedSequence,
    first: int,
    stop: int,
    *,
    n_jobs: int = 1,
    backend: Any = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int | None = None,
    show_progress: bool = False,
    client: Any = None,
) -> dict:
    be: Backend = get_backend(backend, n_jobs, client)
    total = stop - first
    chunk = _check_count(chunk_size, "chunk_size") if chunk_size is not None else None
    if chunk is None:
        workers = getattr(be, "n_jobs", 1)
        chunk = min(DEFAULT_CHUNK, max(25, math.ceil(total / max(1, 2 * workers))))
        if be.name == "dask":
            chunk = min(DEFAULT_CHUNK, max(25, math.ceil(total / 8)))
    bounds = [(a, min(stop, a + chunk)) for a in range(first, stop, chunk)]
    k = len(problem.cols)
    out = {key: np.full((total, k), np.nan) for key in ARRAYS if key != "status"}
    out["status"] = np.full(total, "failed", dtype=object)
    done = np.zeros(total, dtype=bool)
    errors: dict[int, list[str]] = {}
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"power ({problem.test})", unit="sim")
    interrupted = False
    failure: Exception | None = None
    finished = 0
    chunks = be.map(_run_chunk, problem, bounds, root)
    try:
        while True:
            try:
                (a, b), res = next(chunks)
            except StopIteration:
                break
            except Exception as exc:
                if not _backend_failure(exc):
                    raise
                failure = exc  # the backend failed: workers killed, a cluster gone
                break
            for key in ARRAYS:
                out[key][a - first : b - first] = res[key]
            done[a - first : b - first] = True
            errors[a] = res["errors"]
            finished += b - a
            if bar is not None:
                bar.update(b - a)
            if progress is not None:
                progress(finished, total)
    except KeyboardInterrupt:
        interrupted = True
        warnings.warn(
            f"Interrupted: returning the {int(done.sum())} of {total} simulations that finished.",
            LmmWarning,
            stacklevel=3,
        )
    finally:
        chunks.close()  # cancels queued chunks (processes, Dask) on an interrupt or error
        if bar is not None:
            bar.close()
    res = {key: v[done] for key, v in out.items()}
    res["status"] = res["status"].astype(STATUS_DTYPE)
    res["replicate"] = np.arange(first, stop)[done]
    res["errors"] = [e for a in sorted(errors) for e in errors[a]]
    res["interrupted"] = interrupted
    if failure is not None:
        raise BackendFailure(failure, res)
    return res


_BACKEND_ERRORS = ("KilledWorker", "FutureCancelledError", "CommClosedError", "ProcessExpired")


def _backend_failure(exc: BaseException) -> bool:
    """True for a failure of where chunks run (a dead worker or cluster), not of the chunk's
    own computation (that error is raised as it is)."""
    from concurrent.futures import BrokenExecutor, CancelledError

    if isinstance(exc, LmmError | MemoryError):
        return False
    if isinstance(exc, BrokenExecutor | CancelledError | TimeoutError | ConnectionError | EOFError):
        return True
    return any(t.__name__ in _BACKEND_ERRORS for t in type(exc).__mro__)


class BackendFailure(PowerError):
    """The backend stopped mid-run (workers killed, a Dask cluster gone).

    ``finished`` holds the replicates that completed; `power` turns it into a
    `PowerResult` on the error's ``partial`` attribute.
    """

    def __init__(self, cause: BaseException, finished: dict):
        n = int(finished["replicate"].size)
        super().__init__(
            f"The simulation backend failed ({type(cause).__name__}: {cause}) after {n} "
            "simulations had finished; they are kept on this error's .partial result. Check "
            "the workers (e.g. the Dask cluster), then extend .partial to finish the run."
        )
        self.finished = finished
        self.partial: PowerResult | None = None


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, float | int) or not 0 < alpha < 1:
        raise PowerError(f"alpha must be strictly between 0 and 1, got {alpha!r}.")
    return float(alpha)


def _seeds(seed: SeedLike) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """The simulations' root stream and the design's (covariates, missing rows)."""
    root = seed_sequence(seed)
    sims = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, 0))
    design_seed = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, 1))
    return sims, design_seed


def _make_problem(
    spec: ModelSpec,
    design: Design | pd.DataFrame,
    test: str,
    alpha: float,
    effects: Sequence[str] | None,
    formula: str | None,
    design_seed: np.random.SeedSequence,
    type1: bool | None = False,
    draws_from: Design | None = None,
) -> tuple[_Problem, list[str], np.ndarray]:
    if not isinstance(spec, ModelSpec):
        raise PowerError(f"spec must be a ModelSpec, got {type(spec).__name__}.")
    units = None
    if isinstance(design, pd.DataFrame):
        data = design
    elif isinstance(design, Design):
        data, units = design.conditions_units(np.random.default_rng(design_seed))
    else:
        raise PowerError(f"design must be a Design or a DataFrame, got {type(design).__name__}.")
    sim = spec.structure(data)
    shared = None
    if draws_from is not None:
        if units is None or not isinstance(draws_from, Design):
            raise PowerError(
                "draws_from needs design and draws_from to be Designs (the same design at "
                "two sizes); a DataFrame of conditions has no units to share."
            )
        shared = shared_draws(spec, design, units, sim, draws_from, design_seed)
    theta = spec.theta_for(sim)
    beta = spec.beta_for(sim)
    if formula is None or formula == spec.formula:
        fit, start = sim, theta
    else:
        d = data if spec.response in data.columns else data.assign(**{spec.response: 0.0})
        fit = build_structure(formula, d, contrasts=spec.contrasts)
        if fit.n != sim.n:
            raise PowerError(
                f"The analysis formula uses {fit.n} rows but the truth {sim.n}: both must use "
                "the same rows (no missing values in either's columns)."
            )
        if fit.response != spec.response:
            raise PowerError(
                f"The analysis formula's response {fit.response!r} differs from the spec's "
                f"{spec.response!r}."
            )
        try:
            start = np.maximum(spec.theta_for(fit), fit.theta_lower)
        except LmmError:
            start = fit.theta0
    names_all = list(fit.fe_names)
    if effects is None:
        cols = list(range(len(names_all)))
    else:
        if isinstance(effects, str):
            effects = [effects]
        unknown = [e for e in effects if e not in names_all]
        if unknown:
            raise PowerError(
                f"Unknown effect(s) {', '.join(map(repr, unknown))}; the analysis model's "
                f"fixed effects are: {', '.join(names_all)}."
            )
        cols = [names_all.index(e) for e in effects]
    names = [names_all[j] for j in cols]
    truth = np.array([float(spec.fixed.get(n, 0.0)) for n in names])
    null_col, null_how = [], []
    for n, j, b in zip(names, cols, truth, strict=True):
        sc = sim.fe_names.index(n) if b != 0 else -1
        null_col.append(sc)
        if b == 0:
            null_how.append("same")
        elif np.array_equal(sim.X[:, sc], fit.X[:, j]):
            null_how.append("reduced" if test == "lrt" else "shift")
        else:
            null_how.append("refit")
    if type1 is None:  # on where it costs no refit
        type1 = all(h in ("same", "shift") for h in null_how)
    problem = _Problem(
        uuid.uuid4().hex,
        sim,
        beta,
        theta,
        spec.sigma,
        fit,
        start,
        test,
        alpha,
        tuple(cols),
        shared,
        tuple(truth.tolist()) if type1 else (),
        tuple(null_col) if type1 else (),
        tuple(null_how) if type1 else (),
    )
    return problem, names, truth


def power(
    spec: ModelSpec,
    design: Design | pd.DataFrame,
    *,
    nsim: int = 1000,
    alpha: float = 0.05,
    test: str = "satterthwaite",
    effects: Sequence[str] | str | None = None,
    formula: str | None = None,
    seed: SeedLike = None,
    n_jobs: int = 1,
    backend: Any = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int | None = None,
    show_progress: bool = False,
    type1: bool | None = None,
    draws_from: Design | None = None,
) -> PowerResult:
    """Power of every fixed effect by simulation: simulate, refit, test, count.

    Args:
        spec: the ground truth (fixed effects, random-effect SDs/correlations, sigma).
        design: the study (`Design`; its conditions are built once from ``seed``), or a
            DataFrame of conditions.
        nsim: number of simulations (at least 1,000 for a stable estimate; the table's
            Monte-Carlo CI says how precise it is).
        alpha: significance level.
        test: ``"satterthwaite"`` (t test with lmerTest's df; the default), ``"wald"``
            (z test; anticonservative with few subjects or items), ``"kr"``
            (Kenward-Roger t test; slow: one dense computation per replicate), ``"lrt"``
            (likelihood ratio of ML fits with and without each effect; one extra refit
            per effect).
        effects: names of the fixed effects to test (default: all).
        formula: analysis formula when it differs from the spec's (e.g. a model that
            omits a random slope); responses are drawn from the spec's model.
        seed: int, Generator, SeedSequence or None.
        n_jobs: worker processes (-1: all cores); ignored for ``backend="dask"``.
        backend: None/"local"/"processes", "dask" (a ``dask.distributed.Client`` or a
            scheduler address ``"tcp://host:8786"`` may be given directly).
        progress: callback ``progress(done, total)`` after each chunk.
        chunk_size: replicates per chunk (default: up to 250).
        show_progress: tqdm progress bar.
        type1: also estimate every effect's type-I error: the same test on the same
            replicates with that effect's true value set to 0 (the response
            y - x_j beta_j: same random effects and residuals). For the Wald,
            Satterthwaite and KR tests this needs no refit (the REML fit of y - x_j beta_j
            is the fit of y with beta_j shifted), so it is free and on by default (None);
            the LRT's reduced model must be refitted for each effect, which roughly
            doubles an LRT run, so there it is on only with ``type1=True``.
        draws_from: a larger version of ``design`` (more subjects, items or trials) whose
            random draws this run reuses: replicate i takes the random effects and
            residuals of the units it shares with that design's replicate i (common random
            numbers, as `power_curve` uses them; see `lmmcore.crn`).

    Returns:
        `PowerResult` (``.table``, ``.estimates``, ``.extend(nsim=...)``). A type-I error
        above the range a calibrated test shows in ``nsim`` simulations is warned about.

    Raises:
        PowerError: bad arguments, or more than 10% of refits failed.

    Ctrl-C returns the simulations finished so far, with a warning.

    Example:
        >>> from lmmcore import PRESETS
        >>> p5 = PRESETS["P5"]
        >>> r = power(p5.spec, p5.design.with_size(subjects=8), nsim=10, seed=2)
        >>> list(r.table.index), r.nsim
        (['(Intercept)', 'REPETITION'], 10)
    """
    if test not in TESTS:
        raise PowerError(f"Unknown test {test!r}; use one of {', '.join(TESTS)}.")
    nsim = _check_nsim(nsim)
    alpha = _check_alpha(alpha)
    if type1 is not None and not isinstance(type1, bool):
        raise PowerError(f"type1 must be True, False or None (automatic), got {type1!r}.")
    if test == "kr":
        warnings.warn(
            "test='kr' (Kenward-Roger) is slow: a dense n x n computation per replicate; "
            "'satterthwaite' gives nearly the same answer much faster.",
            LmmWarning,
            stacklevel=2,
        )
    client = None
    if backend is not None and not isinstance(backend, str | Backend):
        client, backend = backend, "dask"
    sims, design_seed = _seeds(seed)
    problem, names, truth = _make_problem(
        spec, design, test, alpha, effects, formula, design_seed, type1, draws_from
    )
    if test == "wald":
        few = min(((b.nlevels, b.group) for b in problem.fit.blocks), default=None)
        if few is not None and few[0] < WALD_MIN_LEVELS:
            warnings.warn(
                f"The Wald z test ignores the uncertainty of the variance estimates: with "
                f"only {few[0]} levels of {few[1]!r} it rejects true null hypotheses more "
                "often than alpha (anticonservative), and power is overstated. Use "
                "test='satterthwaite'.",
                LmmWarning,
                stacklevel=2,
            )
    opts = {
        "n_jobs": n_jobs,
        "backend": backend,
        "progress": progress,
        "chunk_size": chunk_size,
        "show_progress": show_progress,
        "client": client,
    }
    try:
        res = _simulate(problem, sims, 0, nsim, **opts)
    except BackendFailure as exc:
        exc.partial = _result(exc.finished, names, truth, test, alpha, problem, sims, nsim, opts)
        raise
    return _result(res, names, truth, test, alpha, problem, sims, nsim, opts)._checked()


def _result(res, names, truth, test, alpha, problem, sims, nsim, opts) -> PowerResult:
    return PowerResult(
        names,
        truth,
        res["replicate"],
        res["est"],
        res["se"],
        res["stat"],
        res["df"],
        res["p"],
        res["status"],
        test,
        float(alpha),
        res["errors"],
        res["interrupted"],
        p_null=res["p_null"],
        rej=res["rej"],
        rej_null=res["rej_null"],
        _problem=problem,
        _root=sims,
        _next=nsim,
        _options=opts,
    )


# ----------------------------------------------------------------------------- curves


def _resize(design: Design | pd.DataFrame, sizes: Mapping[str, int]) -> Design | pd.DataFrame:
    """The design at other sizes; pilot data (a DataFrame) grows along its own grouping
    columns with `lmmcore.extend` (``{"Subject": 40}``)."""
    if isinstance(design, pd.DataFrame):
        from lmmcore.pilot import extend

        data = design
        for along, n in sizes.items():
            data = extend(data, along, int(n))
        return data
    try:
        return design.with_size(**sizes)
    except TypeError as exc:
        raise PowerError(
            f"Cannot vary {sorted(sizes)}; vary 'subjects', 'items', 'trials' or 'nested'."
        ) from exc


EFFECT_DIM = "effect:"
SIZE_DIMS = ("subjects", "items", "trials")


def _grid(
    spec: ModelSpec, design: Design, vary: Mapping[str, Sequence[Any]]
) -> tuple[list[str], list[tuple[tuple, ModelSpec, Design]]]:
    """The points of a curve: (values, spec, design) per combination of ``vary``, in the
    order of `itertools.product` over its entries."""
    if not isinstance(vary, Mapping) or not vary:
        raise PowerError(
            "vary must be a dict such as {'subjects': [10, 20, 40]} or {'effect:x': [0, 0.5]}."
        )
    if not isinstance(spec, ModelSpec):
        raise PowerError(f"spec must be a ModelSpec, got {type(spec).__name__}.")
    if not isinstance(design, Design | pd.DataFrame):
        raise PowerError(
            f"design must be a Design or pilot data (a DataFrame), got {type(design).__name__}."
        )
    dims = list(vary)
    axes = []
    for dim in dims:
        values = vary[dim]
        if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
            raise PowerError(f"vary[{dim!r}] must be a list of values, got {values!r}.")
        if len(values) == 0:
            raise PowerError(f"vary[{dim!r}] is empty; give at least one value.")
        if isinstance(dim, str) and dim.startswith(EFFECT_DIM):
            name = dim[len(EFFECT_DIM) :]
            if name not in spec.fixed:
                raise PowerError(
                    f"vary[{dim!r}]: {name!r} is not a fixed effect of the spec; use one of "
                    + ", ".join(EFFECT_DIM + n for n in spec.fixed)
                    + "."
                )
            axes.append([_effect_value(v, dim) for v in values])
        else:
            pilot = isinstance(design, pd.DataFrame)
            axes.append([_size_value(v, dim, design if pilot else None) for v in values])
    points = []
    for values in itertools.product(*axes):
        sizes, fixed = {}, {}
        for dim, v in zip(dims, values, strict=True):
            if dim.startswith(EFFECT_DIM):
                fixed[dim[len(EFFECT_DIM) :]] = v
            else:
                sizes[dim] = v
        d = _resize(design, sizes) if sizes else design
        s = dataclasses.replace(spec, fixed={**spec.fixed, **fixed}) if fixed else spec
        points.append((values, s, d))
    return dims, points


def _effect_value(v: Any, dim: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise PowerError(f"vary[{dim!r}] must hold numbers (true values), got {v!r}.")
    if not math.isfinite(v):
        raise PowerError(f"vary[{dim!r}] must hold finite numbers, got {v!r}.")
    return float(v)


def _size_value(v: Any, dim: str, pilot: pd.DataFrame | None = None) -> int:
    if pilot is not None:
        if dim not in pilot.columns:
            raise PowerError(
                f"Cannot vary {dim!r}: pilot data grow along their own grouping columns "
                f"(lmmcore.extend), and {dim!r} is not one of {', '.join(map(str, pilot.columns))}."
            )
    elif dim not in SIZE_DIMS:
        raise PowerError(
            f"Cannot vary {dim!r}; vary 'subjects', 'items', 'trials' or 'effect:NAME' (the "
            "true value of the fixed effect NAME)."
        )
    whole = isinstance(v, int | np.integer) or (
        isinstance(v, float | np.floating) and float(v).is_integer()
    )
    if isinstance(v, bool) or not whole:
        raise PowerError(f"vary[{dim!r}] must hold whole numbers (sizes), got {v!r}.")
    return int(v)


def power_curve(
    spec: ModelSpec,
    design: Design,
    vary: Mapping[str, Sequence[Any]],
    *,
    common_draws: bool = True,
    smooth: bool = True,
    **kwargs: Any,
) -> pd.DataFrame:
    """Power over a grid of design sizes or true values: a tidy frame, one row per point
    and effect.

    ``vary`` maps ``subjects``/``items``/``trials`` to sizes and ``"effect:NAME"`` to true
    values of the fixed effect NAME (a sensitivity curve: power against effect size); two
    entries give a 2-D grid (for a heatmap). Other arguments as `power`; every point uses
    the same ``seed``. The column ``nsim`` gives the simulations finished at each point;
    after Ctrl-C the curve stops, keeps the points (and the part of a point) that finished,
    and ``frame.attrs["interrupted"]`` is True. `approx_power_curve` draws the same curve
    from the approximation in milliseconds.

    Common random numbers (``common_draws=True``, the default): replicate i of every point
    reads its draws from replicate i of the largest design of the grid (the largest value
    of every size), so the points differ by their design and not by their luck, and the
    curve is smooth (P1, subjects 20-100, nsim=1000: the SD of power(100) - power(60) is
    2.5x smaller, about the most nested subsets allow there, and 37 of 40 seeds gave a
    monotone curve against 15 of 40; `benchmarks/crn.py`).

    Conditional Monte Carlo (``smooth=True``, the default): each point's ``power`` and CI
    are `PowerResult.table`'s ``power_cmc`` ones where the test allows (Wald,
    Satterthwaite, KR; see `smooth_power_table`), an estimate of the same power with a
    far smaller Monte-Carlo error. With common draws, on the same P1 curve, the SD of
    power(100) - power(60) over 20 seeds is then 22x smaller than with independent points
    (32x from all 20,000 replicates) and all 20 curves are monotone. The share of
    rejections stays as ``power_rejections``. ``smooth=False`` gives the share of
    rejections everywhere.
    Each point is still an exact simulation of its own design (its own conditions,
    covariates and missing rows, as `power` builds them), and its Monte-Carlo CI is
    valid on its own; what is correlated is the error of neighbouring points, so the
    whole curve can sit a little high or low together. What is shared:

    - subjects: a smaller design's subjects are the first n_g of each between-subject
      group (the same rule at every level of a nested design), with their random effects;
    - items: the first m_g of each item group, with their random effects; so when both
      subjects and items vary, every point is nested in the largest one;
    - residuals: of the same observation (subject, item, cell, repetition); each point
      drops its own missing rows, so a row missing at one size may be present at another;
    - counterbalanced designs: an observation is (subject, item, repetition); in a nested
      counterbalanced design a subject's Latin-square list can change with the number of
      subjects, and a pair then keeps its residual but not its cell;
    - not shared: covariate values (each point draws its own from the seed, as `power`
      does); grouping factors that are not made of design units raise a PowerError.

    Effect values (``"effect:NAME"``) change no draw: with the same seed every value sees
    the same random effects and residuals, whatever ``common_draws``.

    ``common_draws=False`` gives the former independent points: each point draws its own
    design's random effects and residuals from the seed's streams, which align only by
    accident between sizes; their errors are independent, so their differences are noisy.

    Pilot data (a DataFrame) grow along their own grouping columns with `lmmcore.extend`
    (``vary={"Subject": [18, 36]}``); their points always draw independently.

    Example:
        >>> from lmmcore import PRESETS
        >>> p5 = PRESETS["P5"]
        >>> df = power_curve(p5.spec, p5.design, {"subjects": [4, 8]}, nsim=5,
        ...                  seed=1, effects=["REPETITION"])
        >>> df[["subjects", "effect", "n_valid"]].values.tolist()
        [[4, 'REPETITION', 5], [8, 'REPETITION', 5]]
    """
    for name, v in (("common_draws", common_draws), ("smooth", smooth)):
        if not isinstance(v, bool):
            raise PowerError(f"{name} must be True or False, got {v!r}.")
    dims, points = _grid(spec, design, vary)
    sizes = {d: max(values[i] for values, _, _ in points) for i, d in enumerate(dims)}
    sizes = {d: v for d, v in sizes.items() if not d.startswith(EFFECT_DIM)}
    pilot = isinstance(design, pd.DataFrame)  # pilot data: every point draws its own
    big = _resize(design, sizes) if common_draws and sizes and not pilot else None
    frames = []
    interrupted = False
    for values, spec_i, design_i in points:
        res = power(spec_i, design_i, draws_from=big, **kwargs)
        t = (smooth_power_table(res.table) if smooth else res.table).reset_index()
        for dim, v in reversed(list(zip(dims, values, strict=True))):
            t.insert(0, dim, v)
        t["nsim"] = res.nsim
        frames.append(t)
        if res.interrupted:
            interrupted = True
            break
    out = pd.concat(frames, ignore_index=True)
    out.attrs["interrupted"] = interrupted
    return out


@dataclass(frozen=True)
class SampleSizeResult:
    """Outcome of `find_sample_size`: ``size`` is None when the target is not reachable."""

    size: int | None
    reachable: bool
    message: str
    evaluated: pd.DataFrame  # one row per size tried: size, power, ci_lower, ci_upper


def find_sample_size(
    spec: ModelSpec,
    design: Design,
    effect: str,
    target: float = 0.8,
    dimension: str = "subjects",
    lower: int = 4,
    upper: int = 200,
    step: int | None = None,
    smooth: bool = True,
    **kwargs: Any,
) -> SampleSizeResult:
    """Smallest size whose power CI lower bound exceeds ``target``, by bisection.

    Sizes ``lower, lower + step, ..., <= upper`` are searched (``step`` defaults to the
    smallest increment the design accepts, e.g. the number of between-subject cells);
    ``upper`` is tried first, and if even it does not reach the target the result says
    so (e.g. P1 with few items: adding subjects cannot make up for them). Power is
    assumed to increase with size; every size uses the same ``seed`` and the draws of the
    largest size (common random numbers, as in `power_curve`), which makes that so. Power
    and its CI are the conditional Monte-Carlo ones (``smooth=True``, as in
    `power_curve`) where the test allows.

    Example:
        >>> from lmmcore import PRESETS
        >>> p5 = PRESETS["P5"]
        >>> r = find_sample_size(p5.spec, p5.design, "REPETITION", target=0.99,
        ...                      lower=2, upper=4, nsim=5, seed=1)
        >>> r.reachable
        False
    """
    if not 0 < target < 1:
        raise PowerError(f"target must be strictly between 0 and 1, got {target!r}.")
    if isinstance(design, pd.DataFrame):
        if dimension not in design.columns:
            raise PowerError(
                f"dimension {dimension!r} is not a column of the pilot data; use one of its "
                "grouping columns."
            )
    elif dimension not in ("subjects", "items", "trials"):
        raise PowerError(f"dimension must be 'subjects', 'items' or 'trials', got {dimension!r}.")
    if not (isinstance(lower, int) and isinstance(upper, int) and 1 <= lower <= upper):
        raise PowerError(f"Need integers 1 <= lower <= upper, got {lower!r}, {upper!r}.")
    candidates = []
    for n in range(lower, upper + 1, step or 1):
        if not isinstance(design, pd.DataFrame):
            try:
                _resize(design, {dimension: n})  # validates the size (group multiples)
            except DesignError:
                continue
        candidates.append(n)
    if not candidates:
        raise PowerError(f"No {dimension} count in [{lower}, {upper}] fits this design.")
    rows: dict[int, dict] = {}

    largest = _resize(design, {dimension: candidates[-1]})

    def ok(i: int) -> bool:
        n = candidates[i]
        d = _resize(design, {dimension: n})
        t = power(spec, d, effects=[effect], draws_from=largest, **kwargs).table
        r = (smooth_power_table(t) if smooth else t).loc[effect]
        rows[n] = {dimension: n, **r[["power", "ci_lower", "ci_upper", "n_valid"]].to_dict()}
        return bool(r["ci_lower"] > target)

    frame = lambda: pd.DataFrame(sorted(rows.values(), key=lambda r: r[dimension]))  # noqa: E731
    if not ok(len(candidates) - 1):
        top = rows[candidates[-1]]
        other = {"subjects": "items", "items": "subjects"}.get(dimension, "another dimension")
        return SampleSizeResult(
            None,
            False,
            f"Target power {target:.0%} for {effect} is not reachable by adding {dimension} "
            f"up to {candidates[-1]}: power there is {top['power']:.3f} (95% CI "
            f"{top['ci_lower']:.3f}-{top['ci_upper']:.3f}). Add {other}, or raise the upper "
            "bound.",
            frame(),
        )
    lo, hi = -1, len(candidates) - 1  # ok(hi) is True; ok(lo) False or below range
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    n = candidates[hi]
    return SampleSizeResult(
        n,
        True,
        f"{dimension} = {n}: power {rows[n]['power']:.3f} for {effect}, 95% CI lower bound "
        f"{rows[n]['ci_lower']:.3f} > {target}.",
        frame(),
    )
