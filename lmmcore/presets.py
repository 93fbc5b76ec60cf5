"""Preset designs from the literature (see shared/presets.md): a spec and a design each.

Example:
    >>> p = PRESETS["P1"]
    >>> p.design.n_rows, p.spec.sigma
    (5000, 200.0)
"""

from __future__ import annotations

from dataclasses import dataclass

from lmmcore.design import Covariate, Design, Factor
from lmmcore.spec import ModelSpec

__all__ = ["PRESETS", "Preset"]


@dataclass(frozen=True, eq=False)
class Preset:
    """A named starting point: the truth (`spec`) and the study (`design`)."""

    name: str
    title: str
    source: str
    spec: ModelSpec
    design: Design
    notes: str = ""


def _two(name: str, a: str, b: str, varies: str = "within", coding: str = "deviation") -> Factor:
    return Factor(name, [a, b], varies=varies, coding=coding)


def _corr(k: int, pairs: dict[tuple[int, int], float]) -> list[list[float]]:
    c = [[1.0 if i == j else 0.0 for j in range(k)] for i in range(k)]
    for (i, j), r in pairs.items():
        c[i][j] = c[j][i] = r
    return c


def _p1() -> Preset:
    return Preset(
        "P1",
        "In-group vs out-group faces (DeBruine & Barr 2021)",
        "DeBruine & Barr (2021), AMPPS 4(1)",
        ModelSpec(
            "RT ~ 1 + X_i + (1 | item_id) + (1 + X_i | subj_id)",
            fixed={"(Intercept)": 800.0, "X_i": 50.0},
            random={
                "item_id": {"sd": {"(Intercept)": 80.0}},
                "subj_id": {
                    "sd": {"(Intercept)": 100.0, "X_i": 40.0},
                    "corr": _corr(2, {(0, 1): 0.2}),
                },
            },
            sigma=200.0,
        ),
        Design(
            subjects=100,
            items=50,
            factors=[_two("X_i", "ingroup", "outgroup", "within_subject")],
            subject_col="subj_id",
            item_col="item_id",
        ),
        "Teaching preset: with few items, power stops rising as subjects are added.",
    )


def _p1b() -> Preset:
    return Preset(
        "P1b",
        "2 x 2 maximal model (DeBruine & Barr 2021 appendix)",
        "DeBruine & Barr (2021), AMPPS 4(1), appendix",
        ModelSpec(
            "RT ~ 1 + X_e * X_c + (1 + X_e | item_id) + (1 + X_e * X_c | subj_id)",
            fixed={"(Intercept)": 800.0, "X_e": 0.0, "X_c": 50.0, "X_e:X_c": 70.0},
            random={
                "item_id": {
                    "sd": {"(Intercept)": 80.0, "X_e": 60.0},
                    "corr": _corr(2, {(0, 1): 0.2}),
                },
                "subj_id": {
                    "sd": {"(Intercept)": 100.0, "X_e": 40.0, "X_c": 80.0, "X_e:X_c": 80.0},
                    "corr": _corr(
                        4,
                        {
                            (0, 1): 0.3,
                            (0, 2): 0.3,
                            (0, 3): 0.3,
                            (1, 2): 0.1,
                            (1, 3): 0.1,
                            (2, 3): 0.1,
                        },
                    ),
                },
            },
            sigma=200.0,
        ),
        Design(
            subjects=50,
            items=50,
            factors=[
                _two("X_e", "neutral", "smiling", "within"),
                _two("X_c", "ingroup", "outgroup", "within_subject"),
            ],
            subject_col="subj_id",
            item_col="item_id",
        ),
        "Stress test: a maximal model with a 4 x 4 subject covariance.",
    )


def _p2() -> Preset:
    return Preset(
        "P2",
        "KB07 (Kronmüller & Barr 2007), MixedModelsSim.jl tutorial",
        "Kronmüller & Barr (2007); MixedModelsSim.jl power tutorial",
        ModelSpec(
            "rt_trunc ~ 1 + spkr + prec + load + (1 | subj) + (1 + prec | item)",
            fixed={"(Intercept)": 2181.85, "spkr": 67.879, "prec": -333.791, "load": 78.5904},
            random={
                "subj": {"sd": {"(Intercept)": 298.026}},
                "item": {
                    "sd": {"(Intercept)": 364.713, "prec": 252.521},
                    "corr": _corr(2, {(0, 1): -0.7}),
                },
            },
            sigma=680.032,
        ),
        Design(
            subjects=56,
            items=32,
            factors=[
                _two("spkr", "old", "new", coding="sum"),
                _two("prec", "maintain", "break", coding="sum"),
                _two("load", "yes", "no", coding="sum"),
            ],
            counterbalance=True,
        ),
        "±1 coding, first level -1. The tutorial sweeps subjects {20, 30, 40} x items "
        "{16, 24, 32}.",
    )


def _p3() -> Preset:
    names = [
        "(Intercept)",
        "age",
        "frequency",
        "context",
        "age:frequency",
        "age:context",
        "frequency:context",
        "age:frequency:context",
    ]
    beta = [1.0, -1.0, 2.0, -1.5, 0.3, -1.3, 1.4, 0.0]
    return Preset(
        "P3",
        "Standardized 2 x 2 x 2 crossed design (Alday 2021)",
        "Alday (2021)",
        ModelSpec(
            "dv ~ 1 + age * frequency * context + (1 + frequency + context | subj)"
            " + (1 + age + context | item)",
            fixed=dict(zip(names, beta, strict=True)),
            random={
                "subj": {
                    "sd": {"(Intercept)": 1.5, "frequency": 0.5, "context": 0.75},
                    "corr": _corr(3, {(0, 1): -0.5, (0, 2): 0.0, (1, 2): 0.8}),
                },
                "item": {
                    "sd": {"(Intercept)": 1.3, "age": 0.35, "context": 0.75},
                    "corr": _corr(3, {(0, 1): 0.2, (0, 2): 0.5, (1, 2): -0.3}),
                },
            },
            sigma=1.0,
        ),
        Design(
            subjects=40,
            items=40,
            factors=[
                _two("age", "old", "young", "between_subject", "sum"),
                _two("frequency", "high", "low", "within_subject", "sum"),
                _two("context", "matched", "unmatched", "within", "sum"),
            ],
        ),
        "The zero three-way interaction is a built-in type-I-error check.",
    )


def _p4() -> Preset:
    return Preset(
        "P4",
        "Eye-tracking first-pass durations (Yan et al. 2014)",
        "Yan et al. (2014), as used by Kumle, Võ & Draschkow (2021)",
        ModelSpec(
            "flp ~ word_length * complexity + (1 | subject) + (1 | sentence)",
            fixed={
                "(Intercept)": 3.662,
                "word_length": 1.512,
                "complexity": -0.0753,
                "word_length:complexity": 0.1158,
            },
            random={
                "subject": {"sd": {"(Intercept)": 0.5957}},
                "sentence": {"sd": {"(Intercept)": 0.2355}},
            },
            sigma=1.7916,
        ),
        Design(
            subjects=48,
            items=120,
            trials=3,
            missing=0.2174,
            subject_col="subject",
            item_col="sentence",
            covariates=[
                Covariate("word_length", "normal", (0.0, 1.0), per="row", center=True),
                Covariate("complexity", "normal", (0.0, 1.0), per="item", center=True),
            ],
        ),
        "Many observations, small effects; the original had about 13,523 unbalanced "
        "observations (several words per sentence), approximated here by 3 trials per "
        "subject-sentence pair with 21.74% missing. Covariates are standardized, not the "
        "original scales.",
    )


def _p5() -> Preset:
    return Preset(
        "P5",
        "Masked repetition priming (Perea et al. 2015)",
        "Perea et al. (2015) data via Brysbaert & Stevens (2018); values estimated",
        ModelSpec(
            "RT ~ REPETITION + (1 | ITEM) + (1 | SUBJECT)",
            fixed={"(Intercept)": 623.0, "REPETITION": -37.0},
            random={
                "ITEM": {"sd": {"(Intercept)": 31.0}},
                "SUBJECT": {"sd": {"(Intercept)": 78.0}},
            },
            sigma=136.0,
        ),
        Design(
            subjects=40,
            items=120,
            factors=[_two("REPETITION", "unrelated", "repeated")],
            counterbalance=True,
            subject_col="SUBJECT",
            item_col="ITEM",
        ),
        "Estimated by method of moments from open data, not published values. REPETITION "
        "is -0.5 unrelated / +0.5 repeated, so the 37 ms priming effect is -37. By-subject "
        "priming SD is about 0: fitting (REPETITION | SUBJECT) is often singular.",
    )


PRESETS: dict[str, Preset] = {p.name: p for p in (_p1(), _p1b(), _p2(), _p3(), _p4(), _p5())}
