"""Tests of lmmcore.approx: closed forms, the information against brute force, simulation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from lmmcore import (
    PRESETS,
    Design,
    Factor,
    ModelSpec,
    approx_power,
    approx_power_curve,
    build_structure,
    power,
)
from lmmcore.approx import expected_information, two_sided_power
from lmmcore.errors import PowerError
from lmmcore.inference import KRDesign

# ------------------------------------------------------------------ closed form (P1)


def p1_closed_form() -> tuple[float, float]:
    """Var(b1) and its Satterthwaite df for P1 (100 subjects x 50 items, X_i between items,
    +-0.5 coded; SDs: item 80, subject slope 40, residual 200).

    b1 is the difference of the two conditions' means, so
    Var(b1) = w0^2 (1/25 + 1/25) + t1^2 / 100 + s^2 (1/2500 + 1/2500). Balanced, its REML
    estimate is the same combination of three independent mean squares:
    Var-hat = MS_D / S + 2 MS_I / (S I) - 2 MS_E / (S I), with MS_D the subjects'
    condition differences (S - 1 = 99 df; E = t1^2 + 2 s^2 / I), MS_I items within
    conditions (2 (I - 1) = 48 df; E = S w0^2 + s^2), MS_E the residual ((S - 1)(2I - 2)
    = 4752 df; E = s^2); S = 100, I = 25 items per condition. Satterthwaite:
    df = Var^2 / sum_k (c_k E[MS_k])^2 / df_k.
    """
    S, I = 100, 25
    w0, t1, s = 80.0, 40.0, 200.0
    parts = [
        ((t1**2 + 2 * s**2 / I) / S, S - 1),
        (2 * (S * w0**2 + s**2) / (S * I), 2 * (I - 1)),
        (-2 * s**2 / (S * I), (S - 1) * (2 * I - 2)),
    ]
    var = sum(c for c, _ in parts)
    assert var == pytest.approx(w0**2 * (2 / 25) + t1**2 / 100 + s**2 * (2 / 2500), rel=1e-14)
    df = var**2 / sum(c**2 / d for c, d in parts)
    return var, df


def test_p1_equals_the_closed_form():
    p1 = PRESETS["P1"]
    var, df = p1_closed_form()
    assert var == pytest.approx(560.0) and np.sqrt(var) == pytest.approx(23.664, abs=1e-3)
    t = approx_power(p1.spec, p1.design, effects="X_i").loc["X_i"]
    assert t["se"] ** 2 == pytest.approx(var, rel=1e-10)
    assert t["df"] == pytest.approx(df, rel=1e-8)
    assert 48 <= t["df"] <= 60
    ncp = 50 / np.sqrt(var)
    crit = stats.t.ppf(0.975, df)
    expected = stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp)
    assert t["ncp"] == pytest.approx(ncp, rel=1e-10)
    assert t["power"] == pytest.approx(expected, rel=1e-8)
    assert 0.544 <= t["power"] <= 0.547
    wald = approx_power(p1.spec, p1.design, test="wald", effects="X_i").loc["X_i"]
    z = stats.norm.ppf(0.975)
    assert wald["power"] == pytest.approx(stats.norm.sf(z - ncp) + stats.norm.cdf(-z - ncp))
    assert wald["df"] == np.inf
    # balanced: the Kenward-Roger adjustment vanishes and its df is Satterthwaite's
    kr = approx_power(p1.spec, p1.design, test="kr", effects="X_i").loc["X_i"]
    assert kr["se"] ** 2 == pytest.approx(var, rel=1e-8)
    assert kr["df"] == pytest.approx(df, rel=1e-6)


def test_one_way_random_intercept_closed_form():
    # 6 groups of 5: Var(mean) = (tau^2 + s^2 / 5) / 6 with df = groups - 1
    spec = ModelSpec(
        "y ~ 1 + (1 | subj)", {"(Intercept)": 1.0}, {"subj": {"sd": {"(Intercept)": 2.0}}}, 1.0
    )
    t = approx_power(spec, Design(6, trials=5)).loc["(Intercept)"]
    assert t["se"] ** 2 == pytest.approx((4 + 1 / 5) / 6, rel=1e-12)
    assert t["df"] == pytest.approx(5.0, rel=1e-10)


# ------------------------------------------------------------------ brute force


CASES = {
    "crossed": (
        Design(8, 6, [Factor("x", ["a", "b"]), Factor("w", ["p", "q"], "between_subject")]),
        "y ~ x * w + (1 + x | subj) + (1 | item)",
        {
            "subj": {"sd": {"(Intercept)": 1.2, "x": 0.7}, "corr": [[1, 0.4], [0.4, 1]]},
            "item": {"sd": {"(Intercept)": 0.6}},
        },
    ),
    "nested": (
        Design(
            nested=[("school", 4), ("class", 2), ("pupil", 4)],
            factors=[Factor("t", ["c", "d"], "between_subject", at="class")],
            trials=2,
        ),
        "y ~ t + (1 | school) + (1 | class)",
        {"school": {"sd": {"(Intercept)": 0.8}}, "class": {"sd": {"(Intercept)": 0.5}}},
    ),
    "slopes, zero SD, missing": (
        Design(7, 5, [Factor("x", ["a", "b"])], missing=0.2),
        "y ~ x + (1 + x || subj) + (1 + x | item)",
        {
            "subj": {"sd": {"(Intercept)": 1.0, "x": 0.0}},
            "item": {"sd": {"(Intercept)": 0.5, "x": 0.8}, "corr": [[1, -0.3], [-0.3, 1]]},
        },
    ),
}


def dense_pieces(s, gammas, s2):
    """V, the derivative patterns dV/dphi (phi: Gamma entries per block, sigma^2) and P,
    with n x n matrices."""
    Z = s.Z.toarray()
    blocks = []
    for b, g in zip(s.blocks, gammas, strict=True):
        blocks.append(np.kron(np.eye(b.nlevels), g))
    Gam = sp.block_diag(blocks).toarray()
    V = s2 * (np.eye(s.n) + Z @ Gam @ Z.T)
    dV = []
    off = 0
    for b in s.blocks:
        r, c = b.tril
        for i, j in zip(r, c, strict=True):
            A = np.zeros((s.q, s.q))
            E = np.zeros((b.k, b.k))
            E[i, j] = E[j, i] = 1.0
            A[off : off + b.q, off : off + b.q] = np.kron(np.eye(b.nlevels), E)
            dV.append(s2 * Z @ A @ Z.T)
        off += b.q
    dV.append(V / s2)
    Vi = np.linalg.inv(V)
    X = s.X
    C = np.linalg.inv(X.T @ Vi @ X)
    P = Vi - Vi @ X @ C @ X.T @ Vi
    return V, dV, P, C


def vcov_at(s, gammas, s2):
    Z = s.Z.toarray()
    Gam = sp.block_diag(
        [np.kron(np.eye(b.nlevels), g) for b, g in zip(s.blocks, gammas, strict=True)]
    ).toarray()
    V = s2 * (np.eye(s.n) + Z @ Gam @ Z.T)
    return np.linalg.inv(s.X.T @ np.linalg.solve(V, s.X))


@pytest.mark.parametrize("case", list(CASES))
def test_expected_information_equals_dense_n_by_n(case):
    design, formula, random = CASES[case]
    rng = np.random.default_rng(len(case))
    sigma = float(rng.uniform(0.6, 1.5))
    s = build_structure(formula, design.conditions(rng).assign(y=0.0))
    spec = ModelSpec(formula, dict.fromkeys(s.fe_names, 0.0), random, sigma)
    theta = spec.theta_for(s)
    info = expected_information(s, theta, sigma)
    gammas = [lam @ lam.T for lam in s.lambdas(theta)]
    s2 = sigma**2
    V, dV, P, C = dense_pieces(s, gammas, s2)
    m = len(dV)
    brute = np.array([[0.5 * np.trace(P @ dV[i] @ P @ dV[j]) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(info.information, brute, rtol=1e-9, atol=1e-12 * np.abs(brute).max())
    np.testing.assert_allclose(info.vcov, C, rtol=1e-9, atol=1e-12 * np.abs(C).max())
    assert len(info.param_names) == m and info.param_names[-1] == "sigma^2"
    # d C_jj / d phi by central differences of the dense C
    jac = np.empty((m, s.p))
    k = 0
    for bi, b in enumerate(s.blocks):
        r, c = b.tril
        for i, j in zip(r, c, strict=True):
            h = 1e-5
            up = [g.copy() for g in gammas]
            dn = [g.copy() for g in gammas]
            up[bi][i, j] += h
            dn[bi][i, j] -= h
            if i != j:
                up[bi][j, i] += h
                dn[bi][j, i] -= h
            jac[k] = np.diag(vcov_at(s, up, s2) - vcov_at(s, dn, s2)) / (2 * h)
            k += 1
    h = 1e-5 * s2
    jac[k] = np.diag(vcov_at(s, gammas, s2 + h) - vcov_at(s, gammas, s2 - h)) / (2 * h)
    np.testing.assert_allclose(info.jacobian, jac, rtol=1e-5, atol=1e-9)


def test_information_matches_kenward_rogers_in_its_parameterisation():
    # KRDesign (checked against pbkrtest) parameterises by psi = (sigma^2 Gamma, sigma^2):
    # I_phi = J' I_psi J with J = d psi / d phi
    design, formula, random = CASES["crossed"]
    s = build_structure(formula, design.conditions().assign(y=0.0))
    sigma = 1.3
    spec = ModelSpec(formula, dict.fromkeys(s.fe_names, 0.0), random, sigma)
    theta = spec.theta_for(s)
    s2 = sigma**2
    gam = [lam @ lam.T for lam in s.lambdas(theta)]
    kr = KRDesign.from_blocks(s.X, [(b.codes, b.T) for b in s.blocks]).kenward_roger(
        [s2 * g for g in gam], s2
    )
    ours = expected_information(s, theta, sigma)
    m = ours.information.shape[0]
    J = np.zeros((m, m))
    entries = [
        g[i, j] for b, g in zip(s.blocks, gam, strict=True) for i, j in zip(*b.tril, strict=True)
    ]
    for i, e in enumerate(entries):
        J[i, i] = s2
        J[i, -1] = e
    J[-1, -1] = 1.0
    expected = J.T @ kr.information @ J
    np.testing.assert_allclose(
        ours.information, expected, rtol=1e-8, atol=1e-12 * np.abs(expected).max()
    )
    np.testing.assert_allclose(ours.vcov, kr.vcov, rtol=1e-9, atol=1e-12 * np.abs(kr.vcov).max())


# ------------------------------------------------------------------ against simulation


@pytest.mark.parametrize(
    ("preset", "sizes", "effect", "test"),
    [
        ("P1", {"subjects": 40, "items": 20}, "X_i", "satterthwaite"),
        ("P5", {"subjects": 20, "items": 40}, "REPETITION", "satterthwaite"),
        ("P2", {"subjects": 24, "items": 16}, "prec", "wald"),
    ],
)
def test_agrees_with_simulation_within_its_monte_carlo_ci(preset, sizes, effect, test):
    p = PRESETS[preset]
    design = p.design.with_size(**sizes)
    sim = power(p.spec, design, nsim=400, seed=11, effects=effect, test=test).table.loc[effect]
    approx = approx_power(p.spec, design, effects=effect, test=test).loc[effect]
    assert sim["ci_lower"] <= approx["power"] <= sim["ci_upper"], (approx["power"], sim)
    # the SE at the truth against the SD of the simulated estimates (SD's own MC error:
    # about 1/sqrt(2 * 400) = 3.5% relative)
    assert approx["se"] == pytest.approx(sim["sd_estimate"], rel=0.12)


# ------------------------------------------------------------------ curves, errors


def test_curve_over_effect_sizes_and_design_sizes():
    p1 = PRESETS["P1"]
    curve = approx_power_curve(
        p1.spec, p1.design, {"items": [10, 50], "effect:X_i": [0, 50]}, effects="X_i"
    )
    assert curve[["items", "effect:X_i"]].values.tolist() == [[10, 0], [10, 50], [50, 0], [50, 50]]
    assert np.allclose(curve.loc[curve["effect:X_i"] == 0, "power"], 0.05)
    assert list(curve["quantity"]) == ["type I error", "power"] * 2
    one = approx_power(p1.spec, p1.design.with_size(items=10), effects="X_i").loc["X_i"]
    assert curve["power"].iloc[1] == pytest.approx(one["power"], rel=1e-12)
    assert curve["power"].iloc[3] > curve["power"].iloc[1]  # more items, more power


def test_two_sided_power_is_alpha_at_zero_and_symmetric():
    df = np.array([5.0, 50.0, np.inf])
    np.testing.assert_allclose(two_sided_power(np.zeros(3), df, 0.05), 0.05, rtol=1e-10)
    np.testing.assert_allclose(
        two_sided_power(np.full(3, 2.5), df, 0.05), two_sided_power(np.full(3, -2.5), df, 0.05)
    )
    # far in the tails (scipy's noncentral t gives NaN at some of these)
    ncp = np.array([5.0, 9.0, 12.0, 20.0, 30.0, 40.0, 80.0])
    pw = two_sided_power(ncp, np.full(ncp.size, 38.0), 0.05)
    assert np.all(np.isfinite(pw)) and np.all(np.diff(pw) >= 0) and pw[-1] == 1.0
    assert pw[0] == pytest.approx(0.998, abs=1e-3)


def test_bad_input_is_refused_with_a_typed_error():
    p1 = PRESETS["P1"]
    with pytest.raises(PowerError, match="needs simulation"):
        approx_power(p1.spec, p1.design, test="lrt")
    with pytest.raises(PowerError, match="alpha"):
        approx_power(p1.spec, p1.design, alpha=2)
    with pytest.raises(PowerError, match="Unknown effect"):
        approx_power(p1.spec, p1.design, effects="nope")
    with pytest.raises(PowerError, match="not a fixed effect of the spec"):
        approx_power_curve(p1.spec, p1.design, {"effect:nope": [1]})
    with pytest.raises(PowerError, match="Cannot vary"):
        approx_power_curve(p1.spec, p1.design, {"colour": [1]})
    big = ModelSpec(
        "y ~ 1 + (1 | subj)", {"(Intercept)": 1.0}, {"subj": {"sd": {"(Intercept)": 1.0}}}, 1.0
    )
    with pytest.raises(PowerError, match=r"q = 3,100 random effects \(subj 3100 x 1"):
        approx_power(big, Design(3100, trials=2))
