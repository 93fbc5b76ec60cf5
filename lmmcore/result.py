"""The fitted model (lme4's ``merMod``): estimates, variance components, BLUPs, inference.

Derived quantities are computed lazily and cached; labels live in pandas objects, arrays
stay plain.

Example:
    >>> import lmmcore
    >>> from lmmcore.datasets import load_dataset
    >>> res = lmmcore.fit("Reaction ~ Days + (Days | Subject)", load_dataset("sleepstudy"))
    >>> round(float(res.fe_params["Days"]), 4)
    10.4673
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from lmmcore.engine import Engine, Responses, Solution
from lmmcore.optimize import OptSummary
from lmmcore.structure import ModelStructure

if TYPE_CHECKING:
    from lmmcore.bootstrap import BootResult
    from lmmcore.simulate import SeedLike

SINGULAR_TOL = 1e-4


@dataclass(frozen=True, eq=False)
class LMMResult:
    """A fitted linear mixed model. Create it with :func:`lmmcore.fit`."""

    structure: ModelStructure
    engine: Engine
    responses: Responses
    rep: int
    solution: Solution
    optimizer: OptSummary
    REML: bool

    # ---- basic ---------------------------------------------------------------------
    @property
    def formula(self) -> str:
        return self.structure.formula

    @property
    def nobs(self) -> int:
        return self.structure.n

    @property
    def y(self) -> np.ndarray:
        return self.responses.Y[:, self.rep]

    @property
    def ngroups(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b in self.structure.blocks:
            out.setdefault(b.group, b.nlevels)
        return out

    @property
    def theta(self) -> np.ndarray:
        return self.solution.theta.copy()

    @property
    def theta_series(self) -> pd.Series:
        return pd.Series(self.solution.theta, index=list(self.structure.theta_names))

    @property
    def converged(self) -> bool:
        return self.optimizer.converged

    @property
    def objective(self) -> float:
        """lme4's REMLcrit for REML fits, the deviance for ML fits."""
        return float(
            self.engine.criterion_from_parts(
                np.array([self.solution.ldL2]),
                np.array([self.solution.ldRX2]),
                np.array([self.solution.r2]),
                self.REML,
            )[0]
        )

    @property
    def llf(self) -> float:
        return -0.5 * self.objective

    @property
    def n_params(self) -> int:
        return self.structure.p + self.structure.n_theta + 1

    @property
    def aic(self) -> float:
        return self.objective + 2 * self.n_params

    @property
    def bic(self) -> float:
        return self.objective + self.n_params * np.log(self.nobs)

    @property
    def scale(self) -> float:
        """Residual variance sigma^2."""
        dof = self.nobs - self.structure.p if self.REML else self.nobs
        return self.solution.r2 / dof

    @property
    def sigma(self) -> float:
        return float(np.sqrt(self.scale))

    @property
    def is_singular(self) -> bool:
        """lme4's isSingular: a diagonal theta element below 1e-4."""
        return self.isSingular()

    def isSingular(self, tol: float = SINGULAR_TOL) -> bool:
        """lme4's (and interlace's) ``isSingular``: a diagonal theta element below ``tol``.

        Example:
            >>> import lmmcore
            >>> res = lmmcore.fit("Yield ~ 1 + (1 | Batch)", lmmcore.load_dataset("Dyestuff"))
            >>> res.isSingular(), res.isSingular(tol=1.0)
            (False, True)
        """
        lo = self.structure.theta_lower
        return bool(np.any(self.solution.theta[lo == 0.0] < tol))

    @property
    def method(self) -> str:
        """``"REML"`` or ``"ML"`` (interlace's name for the criterion)."""
        return "REML" if self.REML else "ML"

    # ---- fixed effects -------------------------------------------------------------
    @property
    def fe_names(self) -> list[str]:
        return list(self.structure.fe_names)

    @property
    def fe_params(self) -> pd.Series:
        return pd.Series(self.solution.beta, index=self.fe_names, name="Estimate")

    @cached_property
    def _vcov(self) -> np.ndarray:
        return self.scale * np.linalg.inv(self.solution.RXtRX)

    @property
    def vcov(self) -> pd.DataFrame:
        return pd.DataFrame(self._vcov, index=self.fe_names, columns=self.fe_names)

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._vcov)), index=self.fe_names, name="Std. Error")

    @property
    def tvalues(self) -> pd.Series:
        return pd.Series(self.solution.beta / self.bse.to_numpy(), index=self.fe_names)

    @cached_property
    def satterthwaite_info(self):
        """lmerTest's derivatives: Hessian of the deviance in (theta, sigma) and the
        Jacobian of vcov(beta); ``.ttest(L)`` / ``.ftest(L)`` test any contrast."""
        from lmmcore.inference import satterthwaite_setup

        varpar = np.append(self.solution.theta, self.sigma)
        p = self.structure.p
        eng = self.engine
        seen: dict[bytes, tuple] = {}  # the Richardson steps in sigma reuse theta's factor

        def parts(theta: np.ndarray) -> tuple:
            key = theta.tobytes()
            if key not in seen:
                ld, ldrx, r2, MW = eng.kernel_parts(
                    theta[None], np.array([self.rep]), self.responses
                )
                seen[key] = (float(ld[0]), float(ldrx[0]), float(r2[0]), MW[0, :p, :p])
            return seen[key]

        def dev(vp: np.ndarray) -> float:
            return eng.deviance_from_parts(*parts(vp[:-1])[:3], vp[-1], self.REML)

        def vcov(vp: np.ndarray) -> np.ndarray:
            return vp[-1] ** 2 * np.linalg.inv(parts(vp[:-1])[3])

        return satterthwaite_setup(dev, vcov, varpar, warn=False)

    @property
    def df(self) -> pd.Series:
        """Satterthwaite denominator degrees of freedom per coefficient (as lmerTest)."""
        return pd.Series(self.satterthwaite_info.coef_df(), index=self.fe_names, name="df")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided t-test p-values with Satterthwaite df (as lmerTest's summary)."""
        t = self.tvalues.to_numpy()
        return pd.Series(2 * stats.t.sf(np.abs(t), self.df.to_numpy()), index=self.fe_names)

    def conf_int(self, level: float = 0.95, method: str = "satterthwaite") -> pd.DataFrame:
        """Confidence intervals for the fixed effects: ``"satterthwaite"`` (t) or ``"wald"``.

        lme4's intervals for every parameter (Wald, profile, bootstrap) are :meth:`confint`.
        """
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, got {level}.")
        a = (1 - level) / 2
        if method == "wald":
            q = stats.norm.ppf(1 - a)
        elif method == "satterthwaite":
            q = stats.t.ppf(1 - a, self.df.to_numpy())
        else:
            raise ValueError(f"Unknown method {method!r}; use 'satterthwaite' or 'wald'.")
        est, se = self.fe_params.to_numpy(), self.bse.to_numpy()
        return pd.DataFrame(
            {f"{100 * a:.1f} %": est - q * se, f"{100 * (1 - a):.1f} %": est + q * se},
            index=self.fe_names,
        )

    def confint(
        self,
        parm: str | Sequence[str] | None = None,
        level: float = 0.95,
        method: str = "profile",
        oldNames: bool = True,
        nsim: int = 500,
        boot_type: str = "perc",
        seed: SeedLike = None,
        **boot_kwargs: Any,
    ) -> pd.DataFrame:
        """Confidence intervals for every parameter, as lme4's ``confint(m, ...)``.

        Rows: the variance parameters, named as lme4 (``.sig01``, ``.sig02``, ...,
        ``.sigma``; with ``oldNames=False`` ``sd_(Intercept)|Subject``,
        ``cor_Days.(Intercept)|Subject``, ``sigma``), then the fixed effects; columns
        ``"2.5 %"`` and ``"97.5 %"`` for ``level=0.95``.

        Args:
            parm: row names to keep, or ``"theta_"`` (variance parameters) or ``"beta_"``
                (fixed effects); default all.
            level: confidence level.
            method: ``"profile"`` (lme4's default: where the signed root of the profiled
                ML deviance crosses the normal quantiles; a REML fit is refitted by ML
                first, as lme4 does), ``"Wald"`` (fixed effects +- z SE, NA for the
                variance parameters, as lme4) or ``"boot"`` (parametric bootstrap,
                intervals of the SDs, correlations, sigma and fixed effects).
            oldNames: lme4's ``.sig01``-style names (True, its default) or the
                descriptive ones.
            nsim, boot_type, seed: for ``"boot"``: replicates, ``"perc"``, ``"basic"`` or
                ``"norm"`` (R's ``boot.ci``), and the seed; other keywords go to
                :func:`lmmcore.bootMer` (``n_jobs``, ``show_progress``, ``use_u``...).

        :meth:`conf_int` is the fixed effects alone with Satterthwaite t (or Wald)
        intervals, as lmerTest.

        Example:
            >>> import lmmcore
            >>> data = lmmcore.load_dataset("sleepstudy")
            >>> res = lmmcore.fit("Reaction ~ Days + (Days | Subject)", data)
            >>> res.confint(method="Wald").round(3).iloc[3:]
                           2.5 %   97.5 %
            .sigma           NaN      NaN
            (Intercept)  238.029  264.781
            Days           7.438   13.497
        """
        from lmmcore.confint import confint

        return confint(self, parm, level, method, oldNames, nsim, boot_type, seed, **boot_kwargs)

    # ---- interlace's names (see the README, "Coming from interlace") -----------------
    @property
    def fe_bse(self) -> pd.Series:
        """interlace's name for :attr:`bse`."""
        return self.bse

    @property
    def fe_pvalues(self) -> pd.Series:
        """interlace's name for :attr:`pvalues` (Satterthwaite df, as lmerTest)."""
        return self.pvalues

    @property
    def fe_cov(self) -> np.ndarray:
        """interlace's name for :attr:`vcov`, as a plain (p, p) array."""
        return self._vcov.copy()

    @property
    def fe_conf_int(self) -> pd.DataFrame:
        """interlace's name for ``conf_int()``: 95% Satterthwaite t intervals."""
        return self.conf_int()

    # ---- random effects ------------------------------------------------------------
    @cached_property
    def varcorr(self) -> list[dict[str, Any]]:
        """Per random-effects block: name, group, terms, SDs, correlation and covariance."""
        out = []
        s2 = self.scale
        for b, lam in zip(
            self.structure.blocks, self.structure.lambdas(self.solution.theta), strict=True
        ):
            cov = s2 * lam @ lam.T
            sd = np.sqrt(np.diag(cov))
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = cov / np.outer(sd, sd)
            corr[~np.isfinite(corr)] = 0.0
            np.fill_diagonal(corr, 1.0)
            out.append(
                dict(name=b.name, group=b.group, terms=list(b.terms), sd=sd, corr=corr, cov=cov)
            )
        return out

    @property
    def variance_components(self) -> pd.DataFrame:
        """lme4's ``as.data.frame(VarCorr(m))``: grp, var1, var2, vcov, sdcor."""
        rows = []
        for vc in self.varcorr:
            for i, t in enumerate(vc["terms"]):
                rows.append((vc["name"], t, None, vc["cov"][i, i], vc["sd"][i]))
            for j in range(len(vc["terms"])):
                for i in range(j + 1, len(vc["terms"])):
                    rows.append(
                        (
                            vc["name"],
                            vc["terms"][j],
                            vc["terms"][i],
                            vc["cov"][i, j],
                            vc["corr"][i, j],
                        )
                    )
        rows.append(("Residual", None, None, self.scale, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    @cached_property
    def random_effects(self) -> dict[str, pd.DataFrame]:
        """BLUPs (conditional modes) per grouping factor, indexed by level (lme4's ranef)."""
        u = self.solution.u
        out: dict[str, pd.DataFrame] = {}
        off = 0
        for b in self.structure.blocks:
            vals = u[off : off + b.q].reshape(b.nlevels, b.k)
            off += b.q
            df = pd.DataFrame(vals, index=b.index, columns=b.terms)  # the data's own dtype
            if b.group in out:
                out[b.group] = out[b.group].join(df)
            else:
                out[b.group] = df
        return out

    @property
    def fittedvalues(self) -> np.ndarray:
        s = self.structure
        return s.X @ self.solution.beta + s.Z @ self.solution.u

    @property
    def resid(self) -> np.ndarray:
        return self.y - self.fittedvalues

    def predict(
        self, newdata: pd.DataFrame | None = None, re_form: str | None = None
    ) -> np.ndarray:
        """Predictions, as lme4's ``predict.merMod`` with ``allow.new.levels = TRUE``.

        Args:
            newdata: rows to predict (the response may be absent); None: the fitted data.
                New data are coded as the fitted data were (``scale(x)`` uses the fitted
                mean and SD). A grouping level the fit did not see gets no random effect
                (population level); a row with a missing predictor gives NaN.
            re_form: None (conditional on the random effects) or ``"~0"`` / ``"NA"``
                (population level: fixed effects only).

        Example:
            >>> import lmmcore, pandas as pd
            >>> res = lmmcore.fit("Reaction ~ Days + (Days | Subject)",
            ...                   lmmcore.load_dataset("sleepstudy"))
            >>> new = pd.DataFrame({"Days": [3, 3], "Subject": ["308", "new"]})
            >>> res.predict(new).round(2).tolist(), res.predict(new, re_form="~0").round(2).tolist()
            ([312.66, 282.81], [282.81, 282.81])
        """
        population = False
        if re_form is not None:
            if not isinstance(re_form, str) or re_form.replace(" ", "") not in ("~0", "NA"):
                raise ValueError(
                    f"re_form must be None (with random effects) or '~0' (population "
                    f"level), got {re_form!r}."
                )
            population = True
        s = self.structure
        if newdata is None:
            X = s.X
            blocks = [(b.codes, b.T) for b in s.blocks]
        else:
            X, blocks, _ = s.new_data(newdata)
        pred = X @ self.solution.beta
        if population:
            return pred
        u = self.solution.u
        off = 0
        for b, (codes, T) in zip(s.blocks, blocks, strict=True):
            ub = u[off : off + b.q].reshape(b.nlevels, b.k)
            off += b.q
            seen = codes >= 0
            pred[seen] += np.einsum("ij,ij->i", T[seen], ub[codes[seen]])
        return pred

    # ---- simulation & bootstrap ----------------------------------------------------
    def simulate(self, nsim: int = 1, seed: SeedLike = None, use_u: bool = False) -> np.ndarray:
        """Simulate ``nsim`` responses, (n, nsim); see :func:`lmmcore.simulate`.

        Example:
            >>> import lmmcore
            >>> res = lmmcore.fit("Yield ~ 1 + (1 | Batch)", lmmcore.load_dataset("Dyestuff"))
            >>> res.simulate(2, seed=1).shape
            (30, 2)
        """
        from lmmcore.simulate import simulate

        return simulate(self, nsim=nsim, seed=seed, use_u=use_u)

    def bootMer(
        self, statistic=None, B: int = 500, seed=None, show_progress: bool = False, **kwargs: Any
    ) -> BootResult:
        """Parametric bootstrap; see :func:`lmmcore.bootMer`."""
        from lmmcore.bootstrap import bootMer

        return bootMer(
            self, statistic=statistic, B=B, seed=seed, show_progress=show_progress, **kwargs
        )

    # ---- printing ------------------------------------------------------------------
    def summary(self) -> str:
        """An lme4/lmerTest-style summary, returned as text (also printed by ``print``)."""
        return _summary_text(self)

    def __repr__(self) -> str:
        crit = "REML criterion" if self.REML else "deviance"
        return (
            f"<LMMResult {self.formula!r}: {crit} {self.objective:.4f}, "
            f"nobs {self.nobs}, singular {self.is_singular}>"
        )


def isSingular(result: LMMResult, tol: float = SINGULAR_TOL) -> bool:
    """lme4's ``isSingular(m, tol = 1e-4)``, also interlace's: see :meth:`LMMResult.isSingular`.

    Example:
        >>> import lmmcore
        >>> res = lmmcore.fit("Yield ~ 1 + (1 | Batch)", lmmcore.load_dataset("Dyestuff2"))
        >>> lmmcore.isSingular(res)
        True
    """
    return result.isSingular(tol)


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}g}"


def _summary_text(r: LMMResult) -> str:
    out = io.StringIO()
    w = out.write
    if r.REML:
        w("Linear mixed model fit by REML. t-tests use Satterthwaite's method\n")
    else:
        w("Linear mixed model fit by maximum likelihood. t-tests use Satterthwaite's method\n")
    w(f"Formula: {r.formula}\n\n")
    if r.REML:
        w(f"REML criterion at convergence: {r.objective:.1f}\n\n")
    else:
        tab = pd.DataFrame(
            [[r.aic, r.bic, r.llf, r.objective, r.nobs - r.n_params]],
            columns=["AIC", "BIC", "logLik", "deviance", "df.resid"],
        )
        w(tab.to_string(index=False, float_format=lambda v: f"{v:.1f}") + "\n\n")
    sr = r.resid / r.sigma
    q = np.quantile(sr, [0, 0.25, 0.5, 0.75, 1])
    w("Scaled residuals: \n")
    w(
        pd.DataFrame([q], columns=["Min", "1Q", "Median", "3Q", "Max"]).to_string(
            index=False, float_format=lambda v: f"{v:.4f}"
        )
        + "\n\n"
    )
    w("Random effects:\n")
    rows = []
    for vc in r.varcorr:
        k = len(vc["terms"])
        for i, t in enumerate(vc["terms"]):
            corr = " ".join(f"{vc['corr'][i, j]:5.2f}" for j in range(i)) if i else ""
            rows.append(
                [
                    vc["name"] if i == 0 else "",
                    t,
                    _fmt(vc["cov"][i, i]),
                    _fmt(vc["sd"][i]),
                    corr if k > 1 else "",
                ]
            )
    rows.append(["Residual", "", _fmt(r.scale), _fmt(r.sigma), ""])
    header = ["Groups", "Name", "Variance", "Std.Dev.", "Corr"]
    if all(row[4] == "" for row in rows):
        header, rows = header[:4], [row[:4] for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        cells = [
            str(x).ljust(w) if i < 2 or i == 4 else str(x).rjust(w)
            for i, (x, w) in enumerate(zip(row, widths, strict=True))
        ]
        w(" " + " ".join(cells).rstrip() + "\n")
    grp = ", ".join(f"{g}, {n}" for g, n in r.ngroups.items())
    w(f"Number of obs: {r.nobs}, groups:  {grp}\n\n")
    w("Fixed effects:\n")
    fe = pd.DataFrame(
        {
            "Estimate": r.fe_params,
            "Std. Error": r.bse,
            "df": r.df,
            "t value": r.tvalues,
            "Pr(>|t|)": r.pvalues,
        }
    )
    w(
        fe.to_string(
            formatters={
                "Estimate": lambda v: f"{v:.4g}",
                "Std. Error": lambda v: f"{v:.4g}",
                "df": lambda v: f"{v:.2f}",
                "t value": lambda v: f"{v:.3f}",
                "Pr(>|t|)": lambda v: f"{v:.3g}" if v >= 2e-16 else "<2e-16",
            }
        )
        + "\n"
    )
    if r.structure.p > 1:
        se = np.sqrt(np.diag(r._vcov))
        corr = r._vcov / np.outer(se, se)
        short = ["(Intr)" if n == "(Intercept)" else n[:6] for n in r.fe_names]
        lines = ["", "Correlation of Fixed Effects:"]
        lines.append(" " * 12 + " ".join(f"{s:>6}" for s in short[:-1]))
        for i in range(1, r.structure.p):
            vals = " ".join(f"{corr[i, j]:6.3f}" for j in range(i))
            lines.append(f"{r.fe_names[i][:11]:<11} {vals}")
        w("\n".join(lines) + "\n")
    if r.is_singular:
        w("\nboundary (singular) fit: see help('isSingular')\n")
    if not r.converged:
        w(f"\noptimizer warning: {r.optimizer.message}\n")
    text = out.getvalue()
    return text
