"""A model specification: the ground truth of a simulation as users think of it.

Fixed effects by coefficient name, random-effect SDs and correlations per grouping factor,
and the residual SD; never variances or lme4's theta. `ModelSpec.theta_for` converts to
theta for a given `ModelStructure`; `ModelSpec.simulate` draws responses with the same
per-replicate seeding as `lmmcore.simulate`.

Random effects are drawn per level of each grouping factor in the structure's sorted
level order, so the same seed gives a subject the same effect however rows are ordered.

Example:
    >>> import pandas as pd
    >>> spec = ModelSpec(
    ...     "y ~ x + (1 | g)",
    ...     fixed={"(Intercept)": 1.0, "x": 0.5},
    ...     random={"g": {"sd": {"(Intercept)": 2.0}}},
    ...     sigma=1.0,
    ... )
    >>> df = pd.DataFrame({"x": [0.0, 1.0] * 4, "g": list("aabbccdd")})
    >>> spec.theta_for(spec.structure(df))
    array([2.])
    >>> spec.simulate(df, nsim=3, seed=1).shape
    (8, 3)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lmmcore.errors import LmmError, SpecError
from lmmcore.formula import CONTRASTS, Name, parse_formula
from lmmcore.limits import MAX_FIXED_COLUMNS
from lmmcore.simulate import SeedLike, child_seeds, seed_sequence
from lmmcore.structure import ModelStructure, build_structure

if TYPE_CHECKING:
    from lmmcore.design import Design
    from lmmcore.result import LMMResult

__all__ = ["SPEC_KIND", "SPEC_VERSION", "ModelSpec", "psd_cholesky"]

SPEC_KIND = "lmmcore.ModelSpec"
SPEC_VERSION = 1

_CORR_TOL = 1e-8


def psd_cholesky(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (zero columns where singular).

    Example:
        >>> psd_cholesky(np.array([[4.0, 0.0], [0.0, 0.0]]))
        array([[2., 0.],
               [0., 0.]])
    """
    a = np.asarray(a, dtype=float)
    k = a.shape[0]
    L = np.zeros((k, k))
    tol = 1e-12 * max(1.0, float(np.max(np.abs(np.diag(a)))) if k else 1.0)
    for j in range(k):
        d = a[j, j] - L[j, :j] @ L[j, :j]
        if d <= tol:
            continue  # singular direction: column stays zero
        L[j, j] = math.sqrt(d)
        L[j + 1 :, j] = (a[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]
    return L


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise SpecError(f"{what} must be a number, got {value!r}.")
    v = float(value)
    if not math.isfinite(v):
        raise SpecError(f"{what} must be a finite number, got {value!r}.")
    return v


def _check_corr(corr: Any, terms: list[str], group: str) -> np.ndarray | None:
    if corr is None:
        return None
    what = f"random[{group!r}]['corr']"
    k = len(terms)
    rows = corr.tolist() if isinstance(corr, np.ndarray) else corr
    if not (
        isinstance(rows, Sequence)
        and len(rows) == k
        and all(isinstance(r, Sequence) and not isinstance(r, str) and len(r) == k for r in rows)
    ):
        raise SpecError(
            f"{what} must be a {k} x {k} matrix, one row and column per term in the order "
            f"of its 'sd' ({', '.join(terms)}): a list of {k} lists of {k} numbers."
        )
    try:
        c = np.asarray(rows, dtype=float)
    except (TypeError, ValueError):
        raise SpecError(
            f"{what} must be a square matrix of numbers (a list of lists), got {corr!r}."
        ) from None
    if not np.all(np.isfinite(c)):
        raise SpecError(f"{what} has non-finite entries; use numbers in [-1, 1].")
    if not np.allclose(c, c.T, atol=_CORR_TOL, rtol=0):
        i, j = np.argwhere(~np.isclose(c, c.T, atol=_CORR_TOL, rtol=0))[0]
        raise SpecError(
            f"{what} is not symmetric: entry [{i}][{j}] = {c[i, j]:g} but [{j}][{i}] = "
            f"{c[j, i]:g}; make them equal."
        )
    if np.any(np.abs(c) > 1 + _CORR_TOL):
        i, j = np.argwhere(np.abs(c) > 1 + _CORR_TOL)[0]
        raise SpecError(
            f"{what} entry [{i}][{j}] = {c[i, j]:g} is outside [-1, 1]; a correlation "
            "must lie between -1 and 1."
        )
    if not np.allclose(np.diag(c), 1.0, atol=_CORR_TOL, rtol=0):
        raise SpecError(f"{what} must have 1 on its diagonal, got {np.diag(c).tolist()}.")
    c = (c + c.T) / 2
    np.fill_diagonal(c, 1.0)
    lo = float(np.linalg.eigvalsh(c).min()) if k else 0.0
    if lo < -1e-10:
        raise SpecError(
            f"{what} is not positive semi-definite (smallest eigenvalue {lo:.3g}): these "
            "correlations cannot occur together. Use smaller correlations (closer to 0)."
        )
    return c


def _check_contrasts(contrasts: Any) -> dict[str, str] | None:
    """``{column: contrast}`` with every contrast one lmmcore knows (else a SpecError)."""
    if contrasts is None:
        return None
    if not isinstance(contrasts, Mapping):
        raise SpecError(
            f"contrasts must be a dict of column -> contrast such as {{'f': 'sum'}}, got "
            f"{contrasts!r}."
        )
    out = {}
    for col, con in contrasts.items():
        key = con.lower().removeprefix("contr.") if isinstance(con, str) else None
        if not isinstance(col, str) or key not in CONTRASTS:
            raise SpecError(
                f"contrasts[{col!r}] = {con!r} is not a contrast lmmcore knows; use one of "
                f"{', '.join(sorted(CONTRASTS))}."
            )
        out[col] = key
    return out


def _mismatch(given, expected, unknown_label: str, missing_label: str) -> str:
    """'' when the names ``given`` are exactly ``expected``; else what is wrong, e.g.
    "unknown term(s) a and no SD for b"."""
    unknown = [k for k in given if k not in expected]
    missing = [k for k in expected if k not in given]
    what = []
    if unknown:
        what.append(f"{unknown_label} {', '.join(unknown)}")
    if missing:
        what.append(f"{missing_label} {', '.join(missing)}")
    return " and ".join(what)


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """Ground truth for simulation: an lme4 formula with its parameter values.

    Args:
        formula: lme4 formula, e.g. ``"RT ~ 1 + X_i + (1 | item_id) + (1 + X_i | subj_id)"``.
        fixed: coefficient name -> value, named as ``fit().fe_params`` names them
            (``(Intercept)``, ``X_i``, ``condB``, ``X_e:X_c``).
        random: grouping factor -> ``{"sd": {term: SD}, "corr": matrix or None}``; the
            correlation matrix is in the order of the ``sd`` keys; None means uncorrelated.
            Terms of different random terms of the same factor (``(x || g)``) must have
            correlation 0.
        sigma: residual SD (> 0).
        contrasts: per factor column, as `build_structure` takes them.
        unit: the response's unit (``"ms"``), for plots and tables; at most 20 characters.
    """

    formula: str
    fixed: Mapping[str, float]
    random: Mapping[str, Mapping[str, Any]]
    sigma: float
    contrasts: Mapping[str, str] | None = field(default=None)
    unit: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.formula, str):
            raise SpecError(f"formula must be a string, got {type(self.formula).__name__}.")
        try:
            parsed = parse_formula(self.formula)
        except LmmError as exc:
            raise SpecError(f"formula {self.formula!r} does not parse: {exc}") from None
        if not isinstance(parsed.response_node, Name):
            raise SpecError(
                f"The response of {self.formula!r} must be a column name, such as 'rt': a spec "
                "simulates the response on the scale the model analyses (for log(rt), "
                "simulate a column 'log_rt' and analyse that)."
            )
        if len(self.fixed) > MAX_FIXED_COLUMNS if isinstance(self.fixed, Mapping) else False:
            raise SpecError(
                f"fixed has {len(self.fixed):,} entries, more than the limit of "
                f"{MAX_FIXED_COLUMNS:,} coefficients."
            )
        if not isinstance(self.fixed, Mapping):
            raise SpecError(
                f"fixed must be a dict of coefficient name -> value, got {self.fixed!r}."
            )
        fixed = {str(k): _number(v, f"fixed[{k!r}]") for k, v in self.fixed.items()}
        sigma = _number(self.sigma, "sigma")
        if sigma <= 0:
            raise SpecError(f"sigma (the residual SD) must be > 0, got {sigma:g}.")
        if not isinstance(self.random, Mapping):
            raise SpecError(
                "random must be a dict of grouping factor -> {'sd': {term: SD}, 'corr': ...}, "
                f"got {self.random!r}."
            )
        valid_groups = list(dict.fromkeys(t.group_name for t in parsed.random))
        random: dict[str, dict[str, Any]] = {}
        for g, entry in self.random.items():
            if g not in valid_groups:
                raise SpecError(
                    f"random has unknown grouping factor {g!r}; the formula's grouping "
                    f"factors are: {', '.join(valid_groups)}."
                )
            if not isinstance(entry, Mapping) or "sd" not in entry:
                raise SpecError(
                    f"random[{g!r}] must be a dict with 'sd' ({{term: SD}}) and optional "
                    f"'corr', got {entry!r}."
                )
            extra = set(entry) - {"sd", "corr"}
            if extra:
                raise SpecError(
                    f"random[{g!r}] has unknown key(s) {sorted(extra)}; use 'sd' and 'corr'."
                )
            sd_in = entry["sd"]
            if not isinstance(sd_in, Mapping) or not sd_in:
                raise SpecError(
                    f"random[{g!r}]['sd'] must be a non-empty dict of term -> SD, got {sd_in!r}."
                )
            sd = {}
            for t, v in sd_in.items():
                s = _number(v, f"random[{g!r}]['sd'][{t!r}]")
                if s < 0:
                    raise SpecError(
                        f"random[{g!r}]['sd'][{t!r}] = {s:g} is negative; an SD must be >= 0 "
                        "(give SDs, not variances; 0 removes the effect)."
                    )
                sd[str(t)] = s
            corr = _check_corr(entry.get("corr"), list(sd), g)
            random[g] = {"sd": sd, "corr": corr}
        missing = [g for g in valid_groups if g not in random]
        if missing:
            raise SpecError(
                f"random lacks grouping factor(s) {', '.join(missing)}; give "
                "{'sd': {term: SD}} for each of: " + ", ".join(valid_groups) + "."
            )
        contrasts = _check_contrasts(self.contrasts)
        if not isinstance(self.unit, str) or len(self.unit) > 20 or not self.unit.isprintable():
            raise SpecError(
                f"unit must be a short text such as 'ms' (at most 20 printable characters), "
                f"got {self.unit!r}."
            )
        object.__setattr__(self, "fixed", fixed)
        object.__setattr__(self, "random", random)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "contrasts", contrasts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelSpec):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ structure

    @property
    def response(self) -> str:
        return parse_formula(self.formula).response

    def structure(self, data: pd.DataFrame) -> ModelStructure:
        """Build the model structure on ``data`` (the response column may be absent)."""
        if not isinstance(data, pd.DataFrame):
            raise SpecError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
        resp = self.response
        if resp not in data.columns:
            data = data.assign(**{resp: 0.0})
        s = build_structure(self.formula, data, contrasts=self.contrasts)
        self._check_names(s)
        return s

    def _check_names(self, s: ModelStructure) -> None:
        names = list(s.fe_names)
        what = _mismatch(self.fixed, names, "unknown coefficient(s)", "no value for")
        if what:
            raise SpecError(
                f"fixed has {what}; on this data the formula's coefficients "
                f"are: {', '.join(names)}."
            )
        for g, entry in self.random.items():
            terms = [t for b in s.blocks if b.group == g for t in b.terms]
            what = _mismatch(entry["sd"], terms, "unknown term(s)", "no SD for")
            if what:
                raise SpecError(
                    f"random[{g!r}]['sd'] has {what}; the terms of {g!r} are: {', '.join(terms)}."
                )
            if len(set(terms)) != len(terms):
                raise SpecError(
                    f"The formula has the term(s) of {g!r} more than once ({', '.join(terms)}); "
                    "give each term once in the formula."
                )

    def theta_for(self, structure: ModelStructure) -> np.ndarray:
        """lme4's theta for ``structure``: per block, tril(chol(D C D)) / sigma, column-major."""
        self._check_names(structure)
        out = []
        for g, entry in self.random.items():
            blocks = [b for b in structure.blocks if b.group == g]
            if len(blocks) > 1 and entry["corr"] is not None:
                keys = list(entry["sd"])
                for bi in blocks:
                    for bj in blocks:
                        if bi is bj:
                            continue
                        for ti in bi.terms:
                            for tj in bj.terms:
                                c = entry["corr"][keys.index(ti), keys.index(tj)]
                                if abs(c) > _CORR_TOL:
                                    raise SpecError(
                                        f"random[{g!r}]['corr'] gives {ti} and {tj} correlation "
                                        f"{c:g}, but the formula makes them uncorrelated "
                                        f"(|| or separate terms); set it to 0 (or None), or "
                                        f"write them in one term such as (1 + x | {g})."
                                    )
        for b in structure.blocks:
            entry = self.random[b.group]
            keys = list(entry["sd"])
            idx = [keys.index(t) for t in b.terms]
            sd = np.array([entry["sd"][t] for t in b.terms])
            corr = np.eye(b.k) if entry["corr"] is None else entry["corr"][np.ix_(idx, idx)]
            cov = sd[:, None] * corr * sd[None, :]
            lam = psd_cholesky(cov) / self.sigma
            r, c = b.tril
            out.extend(lam[r, c])
        return np.array(out, dtype=float)

    def beta_for(self, structure: ModelStructure) -> np.ndarray:
        """The fixed effects in the order of ``structure.fe_names``."""
        self._check_names(structure)
        return np.array([self.fixed[n] for n in structure.fe_names])

    # ------------------------------------------------------------------ simulation

    def _data(self, data_or_design: pd.DataFrame | Design, seed: SeedLike) -> pd.DataFrame:
        if isinstance(data_or_design, pd.DataFrame):
            return data_or_design
        if hasattr(data_or_design, "conditions"):
            s = seed
            if isinstance(seed, np.random.SeedSequence):
                s = np.random.default_rng(seed)
            return data_or_design.conditions(s)
        raise SpecError(
            "simulate needs a pandas DataFrame or an lmmcore Design, got "
            f"{type(data_or_design).__name__}."
        )

    def simulate(
        self,
        data_or_design: pd.DataFrame | Design,
        nsim: int = 1,
        seed: SeedLike = None,
        return_effects: bool | str = False,
    ) -> np.ndarray | tuple[np.ndarray, Any]:
        """Responses (n, nsim) drawn from this spec on the data (or a design's conditions).

        Replicate ``i`` uses the ``i``-th child of ``seed`` as `lmmcore.simulate` does.
        With ``return_effects=True`` also returns replicate 0's random effects as
        ``{group: DataFrame indexed by level, one column per term}``; with ``"all"`` a list
        of such dicts, one per replicate.
        """
        if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 1:
            raise SpecError(f"nsim must be a positive whole number, got {nsim!r}.")
        if return_effects not in (True, False, "all"):
            raise SpecError(f"return_effects must be True, False or 'all', got {return_effects!r}.")
        data = self._data(data_or_design, seed)
        s = self.structure(data)
        beta, theta = self.beta_for(s), self.theta_for(s)
        seeds = child_seeds(seed_sequence(seed), 0, int(nsim))
        from lmmcore.simulate import draw_responses

        Y = draw_responses(s, beta, theta, self.sigma, seeds)
        if not return_effects:
            return Y
        which = seeds[:1] if return_effects is True else seeds
        effects = [self._effects(s, theta, sd) for sd in which]
        return Y, (effects[0] if return_effects is True else effects)

    def _effects(
        self, s: ModelStructure, theta: np.ndarray, seed: np.random.SeedSequence
    ) -> dict[str, pd.DataFrame]:
        """The random effects ``draw_responses`` draws from ``seed`` (its first q normals)."""
        zu = np.random.default_rng(seed).standard_normal(s.q)
        out: dict[str, pd.DataFrame] = {}
        off = 0
        for b, lam in zip(s.blocks, s.lambdas(theta), strict=True):
            vals = self.sigma * (zu[off : off + b.q].reshape(b.nlevels, b.k) @ lam.T)
            off += b.q
            df = pd.DataFrame(vals, index=pd.Index(b.levels, name=b.group), columns=b.terms)
            out[b.group] = out[b.group].join(df) if b.group in out else df
        return out

    def simulate_data(
        self, data_or_design: pd.DataFrame | Design, seed: SeedLike = None
    ) -> pd.DataFrame:
        """One simulated dataset: the data (or design's conditions) with the response filled."""
        data = self._data(data_or_design, seed)
        y = self.simulate(data, 1, seed)[:, 0]
        if len(y) != len(data):
            raise SpecError(
                "The data has missing values in the formula's columns, so rows were dropped; "
                "remove those rows first."
            )
        return data.assign(**{self.response: y})

    # ------------------------------------------------------------------ (de)serialising

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `ModelSpec.from_dict` rebuilds the same spec."""
        return {
            "kind": SPEC_KIND,
            "version": SPEC_VERSION,
            "formula": self.formula,
            "fixed": dict(self.fixed),
            "random": {
                g: {
                    "sd": dict(e["sd"]),
                    "corr": None if e["corr"] is None else e["corr"].tolist(),
                }
                for g, e in self.random.items()
            },
            "sigma": self.sigma,
            "contrasts": None if self.contrasts is None else dict(self.contrasts),
            "unit": self.unit,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Rebuild a spec from `to_dict` output; errors name the offending field."""
        if not isinstance(data, Mapping):
            raise SpecError(f"from_dict needs a dict, got {type(data).__name__}.")
        kind = data.get("kind", SPEC_KIND)
        if kind != SPEC_KIND:
            raise SpecError(f"field 'kind' must be {SPEC_KIND!r}, got {kind!r}.")
        version = data.get("version", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise SpecError(
                f"field 'version' is {version!r}; this lmmcore reads version {SPEC_VERSION}."
            )
        known = {"kind", "version", "formula", "fixed", "random", "sigma", "contrasts", "unit"}
        extra = sorted(set(data) - known)
        if extra:
            raise SpecError(f"unknown field(s) {extra}; a spec has {sorted(known)}.")
        for f in ("formula", "fixed", "random", "sigma"):
            if f not in data:
                raise SpecError(
                    f"field {f!r} is missing; a spec needs formula, fixed, random, sigma."
                )
        return cls(
            formula=data["formula"],
            fixed=data["fixed"],
            random=data["random"],
            sigma=data["sigma"],
            contrasts=data.get("contrasts"),
            unit=data.get("unit", ""),
        )

    @classmethod
    def from_fit(cls, result: LMMResult) -> ModelSpec:
        """The spec whose truth is a fitted model's estimates."""
        fixed = {str(k): float(v) for k, v in result.fe_params.items()}
        random: dict[str, dict[str, Any]] = {}
        blocks: dict[str, list[dict[str, Any]]] = {}
        for vc in result.varcorr:
            blocks.setdefault(vc["group"], []).append(vc)
        for g, vcs in blocks.items():
            terms = [t for vc in vcs for t in vc["terms"]]
            sd = {t: float(s) for vc in vcs for t, s in zip(vc["terms"], vc["sd"], strict=True)}
            if len(terms) == 1 or all(len(vc["terms"]) == 1 for vc in vcs):
                corr = None
            else:
                corr = np.zeros((len(terms), len(terms)))
                off = 0
                for vc in vcs:
                    k = len(vc["terms"])
                    corr[off : off + k, off : off + k] = vc["corr"]
                    off += k
                corr = corr.tolist()
            random[g] = {"sd": sd, "corr": corr}
        contrasts = dict(result.structure.contrasts) or None
        return cls(
            formula=result.formula,
            fixed=fixed,
            random=random,
            sigma=float(result.sigma),
            contrasts=contrasts,
        )
