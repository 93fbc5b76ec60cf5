"""Page "Model & design": a preset or your own model and design, with a live simulated preview.

Keeps the current ``ModelSpec`` in ``st.session_state["spec"]``, the ``Design`` in
``["design"]`` and one simulated dataset in ``["sim_data"]`` (seed ``["sim_seed"]``).
"Fit this simulated dataset" stores the fit in ``["fit_result"]`` and the true fixed
effects in ``["truth"]`` for "Fit & bootstrap".
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

import lmmcore
from lmmcore.plots import condition_labels, drawn_effects_plot, group_means_plot, spaghetti_plot
from views._common import (
    APP_MAX_ROWS,
    DEFAULT_SEED,
    QUERY_NOTES_KEY,
    SEED_KEY,
    check_app_design,
    page_header,
    show_error,
)
from views._jobs import fit_on_worker

PURPOSE = (
    "Specify the model in lme4 syntax and the study design (subjects, items, within- and "
    "between-factors), or start from a preset."
)
BLANK = "blank"
PREVIEW_ROWS = 10
#: Largest simulated dataset drawn for the preview; larger designs are previewed on their
#: first subjects (the page says so). Power, fits and exports use the whole design.
PREVIEW_MAX_ROWS = 50_000
MAX_SUBJECT_LINES = 60

# The "blank" starting point: one two-level factor within subjects and items.
BLANK_SPEC = lmmcore.ModelSpec(
    "y ~ 1 + cond + (1 + cond | subj) + (1 | item)",
    fixed={"(Intercept)": 0.0, "cond": 0.5},
    random={
        "subj": {"sd": {"(Intercept)": 1.0, "cond": 0.5}},
        "item": {"sd": {"(Intercept)": 1.0}},
    },
    sigma=1.0,
)
BLANK_DESIGN = lmmcore.Design(
    subjects=30, items=20, factors=[lmmcore.Factor("cond", ["a", "b"], "within")]
)


def starting_point(name: str) -> tuple[lmmcore.ModelSpec, lmmcore.Design]:
    if name == BLANK:
        return BLANK_SPEC, BLANK_DESIGN
    p = lmmcore.PRESETS[name]
    return p.spec, p.design


def load_preset(name: str) -> None:
    """Reset every input of this page to the preset's values."""
    spec, design = starting_point(name)
    ss = st.session_state
    ss["md_loaded"] = name
    ss["md_formula"] = spec.formula
    ss["md_sigma"] = float(spec.sigma)
    ss["md_fixed_vals"] = dict(spec.fixed)
    ss["md_sd_vals"] = {g: dict(e["sd"]) for g, e in spec.random.items()}
    ss["md_corr_vals"] = {g: _corr_dict(list(e["sd"]), e["corr"]) for g, e in spec.random.items()}
    ss["md_subjects"] = int(design.subjects or 1)
    ss["md_items"] = int(design.items or 1)
    ss["md_gen"] = ss.get("md_gen", 0) + 1  # fresh editor keys


def _corr_dict(terms: list[str], corr) -> dict[str, float]:
    out = {}
    for i, a in enumerate(terms):
        for j, b in enumerate(terms):
            if i < j:
                out[f"{a}|{b}"] = 0.0 if corr is None else float(np.asarray(corr)[i, j])
    return out


@st.cache_data(show_spinner=False, max_entries=64)
def formula_terms(formula: str, design_json: str, seed: int):
    """(fixed-effect names, {group: random terms}) of the formula on the design's conditions
    (a preview-sized version: the names do not depend on the numbers of units)."""
    design = lmmcore.Design.from_dict(json.loads(design_json)).preview(PREVIEW_MAX_ROWS)[0]
    data = design.conditions(seed)
    resp = lmmcore.parse_formula(formula).response
    if resp not in data.columns:
        data = data.assign(**{resp: 0.0})
    s = lmmcore.build_structure(formula, data)
    groups: dict[str, list[str]] = {}
    for b in s.blocks:
        groups.setdefault(b.group, []).extend(b.terms)
    return list(s.fe_names), groups


@st.cache_data(show_spinner=False, max_entries=16)
def simulate_preview(spec_json: str, design_json: str, seed: int):
    """One dataset (as ``spec.simulate_data(design, seed)``) and the random effects drawn.

    Entries are bounded by the preview's row cap, so the cache holds at most 16 x
    `PREVIEW_MAX_ROWS` rows whatever the design."""
    spec = lmmcore.ModelSpec.from_dict(json.loads(spec_json))
    design = lmmcore.Design.from_dict(json.loads(design_json))
    check_app_design(design)
    data = spec.simulate_data(design, seed)
    _, effects = spec.simulate(data.drop(columns=[spec.response]), 1, seed, return_effects=True)
    return data, effects


def explain(text: str) -> None:
    with st.expander("What am I looking at?"):
        st.markdown(text)


def design_inputs(base: lmmcore.Design) -> lmmcore.Design | None:
    st.subheader("Design")
    c1, c2 = st.columns(2)
    if base.nested is not None:
        st.info("This design is nested; its sizes cannot be changed on this page.")
        return base
    subjects = c1.number_input("Subjects", min_value=1, step=1, key="md_subjects")
    items = None
    if base.items is not None:
        items = c2.number_input("Items", min_value=1, step=1, key="md_items")
    try:
        design = base.with_size(subjects=int(subjects), items=None if items is None else int(items))
        check_app_design(design)
    except lmmcore.LmmError as e:
        show_error(e)
        return None
    if base.factors:
        st.dataframe(
            pd.DataFrame(
                {
                    "factor": [f.name for f in base.factors],
                    "levels": [" / ".join(f.levels) for f in base.factors],
                    "varies": [f.varies.replace("_", " ") for f in base.factors],
                    "coding": [f.coding for f in base.factors],
                    "columns": [", ".join(f.columns) or "(categorical)" for f in base.factors],
                }
            ),
            hide_index=True,
        )
    st.markdown(
        f"**{design.summary()}**. The app works on designs of up to {APP_MAX_ROWS:,} rows "
        f"(this one has {design.n_rows:,})."
    )
    explain(
        "The design says who sees what. *within* factors change inside each subject and item; "
        "*within subject* ones change across items (each item has one level); *between "
        "subject* ones split the subjects into groups. The coding turns labels into the "
        "numbers the model uses (deviation: -0.5/+0.5, sum: -1/+1, treatment: 0/1)."
    )
    return design


def fixed_inputs(names: list[str]) -> dict[str, float]:
    vals = st.session_state["md_fixed_vals"]
    table = pd.DataFrame({"value": [float(vals.get(n, 0.0)) for n in names]}, index=names)
    table.index.name = "coefficient"
    key = f"md_fixed_{st.session_state['md_gen']}_{abs(hash(tuple(names)))}"
    edited = st.data_editor(
        table,
        key=key,
        disabled=["coefficient"],
        column_config={"value": st.column_config.NumberColumn("true value", format="%.4g")},
    )
    out = {n: float(v) for n, v in zip(names, edited["value"].fillna(0.0), strict=True)}
    vals.update(out)
    return out


def random_inputs(groups: dict[str, list[str]]) -> dict[str, dict]:
    sd_vals, corr_vals = st.session_state["md_sd_vals"], st.session_state["md_corr_vals"]
    gen = st.session_state["md_gen"]
    random: dict[str, dict] = {}
    cols = st.columns(max(1, len(groups)))
    for col, (g, terms) in zip(cols, groups.items(), strict=False):
        with col:
            st.markdown(f"**{g}**")
            sds = sd_vals.setdefault(g, {})
            table = pd.DataFrame({"SD": [float(sds.get(t, 0.0)) for t in terms]}, index=terms)
            table.index.name = "term"
            ed = st.data_editor(
                table, key=f"md_sd_{gen}_{g}_{abs(hash(tuple(terms)))}", disabled=["term"]
            )
            sd = {t: float(v) for t, v in zip(terms, ed["SD"].fillna(0.0), strict=True)}
            sds.update(sd)
            corr = None
            if len(terms) > 1:
                cv = corr_vals.setdefault(g, {})
                m = np.eye(len(terms))
                for i, a in enumerate(terms):
                    for j, b in enumerate(terms):
                        if i < j:
                            m[i, j] = m[j, i] = float(cv.get(f"{a}|{b}", 0.0))
                st.markdown("correlations (upper triangle is used)")
                ced = st.data_editor(
                    pd.DataFrame(m, index=terms, columns=terms),
                    key=f"md_corr_{gen}_{g}_{abs(hash(tuple(terms)))}",
                )
                m2 = ced.to_numpy(dtype=float)
                corr = np.eye(len(terms))
                for i, a in enumerate(terms):
                    for j, b in enumerate(terms):
                        if i < j:
                            r = m2[i, j] if np.isfinite(m2[i, j]) else 0.0
                            corr[i, j] = corr[j, i] = r
                            cv[f"{a}|{b}"] = float(r)
                corr = corr.tolist()
            random[g] = {"sd": sd, "corr": corr}
    return random


def show_preview(spec: lmmcore.ModelSpec, design: lmmcore.Design, data, effects) -> None:
    st.subheader("One simulated dataset")
    st.dataframe(data.head(PREVIEW_ROWS))
    st.markdown(
        f"{len(data):,} rows (first {PREVIEW_ROWS} shown); it changes with every input and "
        "with the sidebar seed."
    )
    resp = spec.response
    subj = design.subject_col if design.nested is None else design.hierarchy[-1][0]
    cond = condition_labels(data, [f.name for f in design.factors])
    if cond is not None:
        plot_df, x = data.assign(condition=cond), "condition"
    else:
        covs = [c.name for c in design.covariates]
        plot_df, x = data, (covs[0] if covs else None)
    st.plotly_chart(
        spaghetti_plot(plot_df, resp, x, subj, max_subjects=MAX_SUBJECT_LINES), key="md_spaghetti"
    )
    explain(
        f"Each thin line is one {subj}: their average {resp} in each condition (at most "
        f"{MAX_SUBJECT_LINES} are drawn). The thick black line is the average over everyone. "
        "Lines at different heights show subject intercepts; lines with different slopes "
        "show that the effect varies between subjects (a random slope)."
    )
    groups = [g for g in spec.random if g in data.columns]
    st.plotly_chart(group_means_plot(data, resp, groups), key="md_means")
    explain(
        "The average response of each subject and each item. The wider these histograms, "
        "the more subjects (or items) differ, and the more of them a study needs."
    )
    st.plotly_chart(drawn_effects_plot(effects), key="md_effects")
    explain(
        "The random effects this dataset was built with: each level's own deviation from the "
        "fixed effects. A scatter shows a subject's intercept against its slope, so you can "
        "see the correlation you set; a histogram shows a single term. Their spread matches "
        "the SDs you entered, up to chance."
    )


def fit_simulated(spec: lmmcore.ModelSpec, data: pd.DataFrame) -> None:
    """Fit the previewed dataset on a worker process (stoppable)."""
    try:
        result, caught = fit_on_worker(spec.formula, data, True)
    except lmmcore.LmmError as e:
        show_error(e)
        return
    ss = st.session_state
    ss["fit_result"] = result
    ss["fit_data"] = data
    ss["fit_source"] = "simulated"
    ss["fit_warnings"] = caught
    ss["truth"] = dict(spec.fixed)
    ss.pop("boot_result", None)


def sync_query_params(preset: str, seed: int) -> None:
    params = {
        "preset": preset,
        "seed": str(seed),
        "subjects": str(st.session_state.get("md_subjects")),
        "items": str(st.session_state.get("md_items")),
    }
    if {k: st.query_params.get(k) for k in params} != params:
        st.query_params.from_dict(params)


# ----------------------------------------------------------------------------- page

page_header("Model & design", PURPOSE)
ss = st.session_state
if QUERY_NOTES_KEY in ss:
    st.warning(ss.pop(QUERY_NOTES_KEY))
options = [*lmmcore.PRESETS, BLANK]
if ss.get("md_preset") not in options:
    ss["md_preset"] = "P1"
preset = st.selectbox(
    "Start from",
    options,
    key="md_preset",
    format_func=lambda n: "blank model" if n == BLANK else f"{n}: {lmmcore.PRESETS[n].title}",
)
if ss.get("md_loaded") != preset:
    load_preset(preset)
    pending = ss.pop("md_query_sizes", None)  # sizes from the URL, on the first load
    if pending:
        ss.update({k: v for k, v in pending.items() if v is not None})
if preset != BLANK:
    p = lmmcore.PRESETS[preset]
    st.markdown(f"*{p.source}.* {p.notes}")
seed = int(ss.get(SEED_KEY, DEFAULT_SEED))
base_spec, base_design = starting_point(preset)

design = design_inputs(base_design)
sync_query_params(preset, seed)

st.subheader("Model")
formula = st.text_input("Model formula (lme4 syntax)", key="md_formula")
explain(
    "The formula names the response, the fixed effects (the average effects you want to "
    "detect) and, in brackets, the random effects: `(1 + X | subj)` lets each subject have "
    "its own intercept and its own effect of X. Fixed effects can only use the design's "
    "columns: " + (", ".join(f"`{c}`" for c in base_design.columns) or "(none)") + "."
)
if design is None:
    st.stop()
design_json = json.dumps(design.to_dict())
try:
    names, groups = formula_terms(formula, design_json, seed)
except lmmcore.LmmError as e:
    show_error(e)
    st.stop()

c1, c2 = st.columns([1, 2])
with c1:
    st.markdown("**Fixed effects**")
    fixed = fixed_inputs(names)
    sigma = st.number_input("Residual SD (sigma)", key="md_sigma", format="%.4g")
with c2:
    st.markdown("**Random effects: SD of each term, per grouping factor**")
    random = random_inputs(groups)
explain(
    "**Fixed effects**: the true value of each coefficient (new ones start at 0). "
    "**Random effects**: how much each term varies between subjects or items, as a "
    "standard deviation (not a variance), and how those deviations correlate. **Residual "
    "SD**: the trial-to-trial noise left over."
)
shown, preview_note = design.preview(PREVIEW_MAX_ROWS)
try:
    spec = lmmcore.ModelSpec(formula, fixed, random, float(sigma), contrasts=base_spec.contrasts)
    data, effects = simulate_preview(json.dumps(spec.to_dict()), json.dumps(shown.to_dict()), seed)
except lmmcore.LmmError as e:
    show_error(e)
    st.stop()

ss["spec"], ss["design"], ss["sim_data"], ss["sim_seed"] = spec, design, data, seed
ss["sim_effects"] = effects
if preview_note:
    st.info(f"{preview_note} Power, fits and exports use the whole design.")
show_preview(spec, design, data, effects)

st.subheader("Fit the model to this dataset")
if st.button("Fit this simulated dataset", key="md_fit", type="primary"):
    fit_simulated(spec, data)
if ss.get("fit_source") == "simulated" and "fit_result" in ss:
    st.success(
        "Fitted; see the estimates beside the true values on the Fit & bootstrap page "
        f"({ss['fit_result'].nobs:,} observations)."
    )
    st.page_link(
        "views/fit_bootstrap.py", label="Go to Fit & bootstrap", icon=":material/functions:"
    )
