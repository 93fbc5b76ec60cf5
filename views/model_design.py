"""Page "Model & design": your own design (or a preset, a file, a link, a pilot fit), the
formula, the true values, and a live simulated preview.

On success it keeps the current ``ModelSpec`` in ``st.session_state["spec"]`` and the
``Design`` in ``["design"]`` (for a pilot fit: the pilot's data), one simulated dataset in
``["sim_data"]`` (seed ``["sim_seed"]``), and ``["md_error"]`` None; when an input is wrong
it removes them and ``["md_error"]`` says what is wrong, so no other page uses a model
that is not the one on screen. "Fit this simulated dataset" stores the fit in
``["fit_result"]`` and the true fixed effects in ``["truth"]`` for "Fit & bootstrap".
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

import lmmcore
from lmmcore.confint import true_parameters
from lmmcore.export import MAX_LINK, decode_link, encode_link, read_spec_design
from lmmcore.plots import condition_labels, drawn_effects_plot, group_means_plot, spaghetti_plot
from views._common import (
    APP_MAX_ROWS,
    DEFAULT_SEED,
    PILOT_KEY,
    QUERY_NOTES_KEY,
    SEED_KEY,
    check_app_design,
    escape_markdown,
    keep_widgets,
    page_header,
    show_error,
    snapshot_widgets,
)
from views._design_builder import build_design, load_design
from views._jobs import fit_on_worker

PURPOSE = (
    "Describe your study (who is measured, the items, the conditions), write or propose the "
    "lme4 formula, and set the true values; or start from a preset or your pilot data."
)
BLANK = "blank"
PILOT = "pilot"
FILE = "file"
PREVIEW_ROWS = 10
#: Largest simulated dataset drawn for the preview; larger designs are previewed on their
#: first subjects (the page says so). Power, fits and exports use the whole design.
PREVIEW_MAX_ROWS = 50_000
MAX_SUBJECT_LINES = 60
PROPOSALS = {
    "maximal": "maximal (random slopes for every within-unit effect)",
    "uncorrelated": "maximal without correlations (||)",
    "intercepts": "random intercepts only",
}

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


def starting_points() -> dict[str, str]:
    """The options of "Start from": presets, a blank model, and what was loaded."""
    ss = st.session_state
    out = {name: f"{name}: {p.title}" for name, p in lmmcore.PRESETS.items()}
    out[BLANK] = "your own design (start from one factor)"
    if FILE in ss.get("md_sources", {}):
        out[FILE] = "the loaded file or link"
    if ss.get(PILOT_KEY) is not None:
        out[PILOT] = f"pilot data: {ss[PILOT_KEY]['label']}"
    return out


def source_of(name: str) -> tuple[lmmcore.ModelSpec, lmmcore.Design | None]:
    ss = st.session_state
    if name == BLANK:
        return BLANK_SPEC, BLANK_DESIGN
    if name == PILOT:
        return ss[PILOT_KEY]["spec"], None
    if name == FILE:
        return ss["md_sources"][FILE]
    p = lmmcore.PRESETS[name]
    return p.spec, p.design


def load_model(name: str) -> None:
    """Reset every input of this page to a starting point's values."""
    spec, design = source_of(name)
    ss = st.session_state
    ss["md_loaded"] = name
    ss["md_formula"] = spec.formula
    ss["md_sigma"] = float(spec.sigma)
    ss["md_unit"] = spec.unit
    ss["md_contrasts"] = spec.contrasts
    ss["md_fixed_vals"] = dict(spec.fixed)
    ss["md_sd_vals"] = {g: dict(e["sd"]) for g, e in spec.random.items()}
    ss["md_corr_vals"] = {g: _corr_dict(list(e["sd"]), e["corr"]) for g, e in spec.random.items()}
    if design is not None:
        load_design(design)
    ss["md_gen"] = ss.get("md_gen", 0) + 1  # fresh editor keys


def _corr_dict(terms: list[str], corr) -> dict[str, float]:
    out = {}
    for i, a in enumerate(terms):
        for j, b in enumerate(terms):
            if i < j:
                out[f"{a}|{b}"] = 0.0 if corr is None else float(np.asarray(corr)[i, j])
    return out


@st.cache_data(show_spinner=False, max_entries=64)
def formula_terms(
    formula: str, design_json: str | None, contrasts_json: str, seed: int, _pilot=None
):
    """(fixed-effect names, {group: random terms}) of the formula on the design's conditions
    (a preview-sized version: the names do not depend on the numbers of units), or on the
    pilot's data."""
    if design_json is None:
        data = _pilot
    else:
        design = lmmcore.Design.from_dict(json.loads(design_json)).preview(PREVIEW_MAX_ROWS)[0]
        data = design.conditions(seed)
    resp = lmmcore.parse_formula(formula).response
    if resp not in data.columns:
        data = data.assign(**{resp: 0.0})
    s = lmmcore.build_structure(formula, data, contrasts=json.loads(contrasts_json))
    groups: dict[str, list[str]] = {}
    for b in s.blocks:
        groups.setdefault(b.group, []).extend(b.terms)
    return list(s.fe_names), groups


@st.cache_data(show_spinner=False, max_entries=16)
def simulate_preview(spec_json: str, design_json: str | None, seed: int, _pilot=None):
    """One dataset (as ``spec.simulate_data(design, seed)``) and the random effects drawn.

    Entries are bounded by the preview's row cap (or the pilot's size), so the cache holds
    at most 16 such datasets whatever the design."""
    spec = lmmcore.ModelSpec.from_dict(json.loads(spec_json))
    if design_json is None:
        source = _pilot
    else:
        source = check_app_design(lmmcore.Design.from_dict(json.loads(design_json)))
    data = spec.simulate_data(source, seed)
    _, effects = spec.simulate(data.drop(columns=[spec.response]), 1, seed, return_effects=True)
    return data, effects


def explain(text: str) -> None:
    with st.expander("What am I looking at?"):
        st.markdown(text)


def fixed_inputs(names: list[str]) -> dict[str, float]:
    vals = st.session_state["md_fixed_vals"]
    table = pd.DataFrame({"value": [float(vals.get(n, 0.0)) for n in names]}, index=names)
    table.index.name = "coefficient"
    key = f"md_fixed_{st.session_state['md_gen']}_{abs(hash(tuple(names)))}"
    edited = st.data_editor(
        table,
        key=key,
        disabled=["coefficient"],
        width="stretch",
        column_config={
            "value": st.column_config.NumberColumn(
                "true value",
                format="%.4g",
                help="The average effect you expect, in the response's units (new "
                "coefficients start at 0).",
            )
        },
    )
    out = {n: float(v) for n, v in zip(names, edited["value"].fillna(0.0), strict=True)}
    vals.update(out)
    return out


def corr_pairs(terms: list[str], values: dict[str, float]) -> pd.DataFrame:
    """One row per pair of terms: the correlation is entered once (no triangle to keep in
    step); the full matrix shown beside it is mirrored from these rows."""
    rows = [
        (a, b, float(values.get(f"{a}|{b}", 0.0)))
        for i, a in enumerate(terms)
        for b in terms[i + 1 :]
    ]
    return pd.DataFrame(rows, columns=["term", "with", "correlation"])


def random_inputs(groups: dict[str, list[str]]) -> dict[str, dict]:
    sd_vals, corr_vals = st.session_state["md_sd_vals"], st.session_state["md_corr_vals"]
    gen = st.session_state["md_gen"]
    random: dict[str, dict] = {}
    for g, terms in groups.items():
        st.markdown(f"**{g}**")
        sds = sd_vals.setdefault(g, {})
        table = pd.DataFrame({"SD": [float(sds.get(t, 0.0)) for t in terms]}, index=terms)
        table.index.name = "term"
        ed = st.data_editor(
            table,
            key=f"md_sd_{gen}_{g}_{abs(hash(tuple(terms)))}",
            disabled=["term"],
            width="stretch",
            column_config={
                "SD": st.column_config.NumberColumn(
                    "SD",
                    format="%.4g",
                    help=f"How much each {g} differs from the average in this term, as a "
                    "standard deviation (not a variance). The SD of a slope says how much "
                    f"the effect itself varies between {g} levels; 0 removes the term.",
                )
            },
        )
        sd = {t: float(v) for t, v in zip(terms, ed["SD"].fillna(0.0), strict=True)}
        sds.update(sd)
        corr = None
        if len(terms) > 1:
            cv = corr_vals.setdefault(g, {})
            st.caption(f"Correlations between the {g} terms (each pair once)")
            ped = st.data_editor(
                corr_pairs(terms, cv),
                key=f"md_corr_{gen}_{g}_{abs(hash(tuple(terms)))}",
                disabled=["term", "with"],
                hide_index=True,
                width="stretch",
                column_config={
                    "correlation": st.column_config.NumberColumn(
                        "correlation",
                        min_value=-1.0,
                        max_value=1.0,
                        format="%.3g",
                        help="Between -1 and 1: e.g. do subjects who are slow overall also "
                        "show a larger effect?",
                    )
                },
            )
            m = np.eye(len(terms))
            for _, row in ped.iterrows():
                r = float(row["correlation"]) if pd.notna(row["correlation"]) else 0.0
                i, j = terms.index(row["term"]), terms.index(row["with"])
                m[i, j] = m[j, i] = r
                cv[f"{row['term']}|{row['with']}"] = r
            with st.expander(f"Correlation matrix of {g}"):
                st.dataframe(pd.DataFrame(m, index=terms, columns=terms).round(3))
            corr = m.tolist()
        random[g] = {"sd": sd, "corr": corr}
    return random


def show_preview(spec: lmmcore.ModelSpec, subj: str, factors, covs, data, effects) -> None:
    st.subheader("One simulated dataset")
    st.dataframe(data.head(PREVIEW_ROWS))
    st.markdown(
        f"{len(data):,} rows (first {PREVIEW_ROWS} shown); it changes with every input and "
        "with the sidebar seed."
    )
    resp = spec.response
    unit = spec.unit
    cond = condition_labels(data, factors)
    if cond is not None:
        plot_df, x = data.assign(condition=cond), "condition"
    else:
        plot_df, x = data, (covs[0] if covs else None)
    if subj in data.columns:
        st.plotly_chart(
            spaghetti_plot(plot_df, resp, x, subj, max_subjects=MAX_SUBJECT_LINES, unit=unit),
            key="md_spaghetti",
        )
        explain(
            f"Each thin line is one {subj}: their average {resp} in each condition (at most "
            f"{MAX_SUBJECT_LINES} are drawn). The thick black line is the average over "
            "everyone. Lines at different heights show subject intercepts; lines with "
            "different slopes show that the effect varies between subjects (a random slope)."
        )
    groups = [g for g in spec.random if g in data.columns]
    st.plotly_chart(group_means_plot(data, resp, groups, unit=unit), key="md_means")
    explain(
        "The average response of each subject and each item. The wider these histograms, "
        "the more subjects (or items) differ, and the more of them a study needs."
    )
    st.plotly_chart(drawn_effects_plot(effects, unit=unit), key="md_effects")
    explain(
        "The random effects this dataset was built with: each level's own deviation from the "
        "fixed effects. A scatter shows a subject's intercept against its slope, so you can "
        "see the correlation you set; a histogram shows a single term. Their spread matches "
        "the SDs you entered, up to chance."
    )


@st.cache_data(show_spinner=False, max_entries=64)
def approx_table(spec_json: str, design_json: str | None, seed: int, _pilot=None):
    """`lmmcore.approx_power` of every effect at this design (milliseconds)."""
    spec = lmmcore.ModelSpec.from_dict(json.loads(spec_json))
    design = _pilot if design_json is None else lmmcore.Design.from_dict(json.loads(design_json))
    return lmmcore.approx_power(spec, design, seed=seed)


def approx_panel(spec, design_json: str | None, seed: int, pilot) -> None:
    """Approximate power of each effect, updated with every input (no button)."""
    st.subheader("Approximate power at this design")
    try:
        table = approx_table(json.dumps(spec.to_dict()), design_json, seed, _pilot=pilot)
    except lmmcore.LmmError as e:
        st.caption(escape_markdown(f"No approximation for this model: {e}"))
        return
    shown = table.drop(index="(Intercept)", errors="ignore")[
        ["true_value", "quantity", "power", "se", "df"]
    ].rename(columns={"true_value": "true value", "se": "SE", "df": "df (Satterthwaite)"})
    st.dataframe(shown.round(4), key="md_approx_table")
    st.caption(
        "From the expected information at these true values, in milliseconds and without "
        "simulating: it follows every change above. The Power page checks it by simulation "
        "and draws curves over sizes and effect values."
    )


def standardized_entry(spec: lmmcore.ModelSpec, design: lmmcore.Design, seed: int) -> None:
    """Effects as Cohen's d and variances as shares of the total (PANGEA's inputs), shown
    for the current values and editable: 'Apply' converts them back to values and SDs
    (lmmcore.standardize / unstandardize)."""
    ss = st.session_state
    with st.expander("Standardized view and entry: Cohen's d and variance shares"):
        try:
            std = lmmcore.standardize(spec, design, seed=seed)
        except lmmcore.LmmError as e:
            st.caption(escape_markdown(f"Not available for this model: {e}"))
            return
        st.caption(
            "d = effect x the step of its column / total SD (Westfall, Kenny & Judd 2014); a "
            "share is a variance component over the total variance of one observation. Edit "
            "them and press Apply to set the values and SDs above."
        )
        gen = ss["md_gen"]
        total = st.number_input(
            "Total SD",
            value=float(std.total_sd),
            min_value=1e-9,
            format="%.4g",
            key=f"md_std_total_{gen}",
            help="The SD of one observation around the grand mean: all variance components "
            "and the residual together.",
        )
        d_ed = st.data_editor(
            pd.DataFrame({"Cohen's d": std.d}).rename_axis("effect"),
            key=f"md_std_d_{gen}",
            disabled=["effect"],
            width="stretch",
        )
        shares = {k: v for k, v in std.vpc.items() if k not in ("residual", "covariances")}
        v_ed = st.data_editor(
            pd.DataFrame({"share": shares}).rename_axis("variance component"),
            key=f"md_std_vpc_{gen}",
            disabled=["variance component"],
            width="stretch",
        )
        st.caption(
            f"Residual share: {std.vpc.get('residual', 0):.3f} (what remains); covariance "
            f"share: {std.vpc.get('covariances', 0):.3f}."
        )
        if st.button("Apply", key="md_std_apply"):
            try:
                new = lmmcore.unstandardize(
                    spec,
                    design,
                    d=d_ed["Cohen's d"].to_dict(),
                    vpc=v_ed["share"].to_dict(),
                    total_sd=float(total),
                    seed=seed,
                )
            except lmmcore.LmmError as e:
                show_error(e)
                return
            ss["md_fixed_vals"] = dict(new.fixed)
            ss["md_sd_vals"] = {g: dict(e["sd"]) for g, e in new.random.items()}
            ss["md_pending_widgets"] = {"md_sigma": float(new.sigma)}  # set before drawn
            ss["md_gen"] = gen + 1
            st.rerun()


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
    ss["fit_inputs"] = ("simulated", spec.formula, True)
    ss["fit_warnings"] = caught
    ss["truth"] = dict(spec.fixed)
    ss["truth_params"] = true_parameters(spec, result.structure)
    ss.pop("boot_result", None)


def sync_query_params(preset: str, seed: int, spec, design) -> None:
    """Keep the view in the URL: a preset by name and size, anything else as a model link
    (or a note that it is too large for one)."""
    params = {"seed": str(seed)}
    p = lmmcore.PRESETS.get(preset)
    as_preset = False
    if p is not None and design is not None and spec == p.spec and design.nested is None:
        try:
            items = design.items if p.design.items is not None else None
            as_preset = design == p.design.with_size(subjects=design.subjects, items=items)
        except lmmcore.LmmError:
            as_preset = False
    if as_preset:
        params.update(preset=preset, subjects=str(design.subjects))
        if design.items is not None:
            params["items"] = str(design.items)
    elif design is not None:
        link = encode_link(spec, design)
        if link is None:
            st.caption(
                f"This model and design are too large for a link (over {MAX_LINK:,} "
                "characters): download the JSON file on Export and load it here instead."
            )
        else:
            params["model"] = link
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


def load_file() -> None:
    """A spec + design JSON (from Export or the CLI) or a model link, as a starting point."""
    ss = st.session_state
    with st.expander("Load a model and design (JSON file from Export)"):
        up = st.file_uploader("Spec and design (JSON)", type="json", key="md_json_upload")
        if up is not None and ss.get("md_json_loaded") != up.file_id:
            try:
                ss.setdefault("md_sources", {})[FILE] = read_spec_design(up.getvalue())
            except lmmcore.LmmError as exc:
                show_error(f"Could not use {up.name}: {exc}")
                return
            ss["md_json_loaded"] = up.file_id
            ss["md_pending_start"] = FILE  # applied before "Start from" is drawn
            st.rerun()


def pending_link() -> None:
    """Apply a ``?model=`` link once (read_query_params left it in session state)."""
    ss = st.session_state
    link = ss.pop("md_query_model", None)
    if link is None:
        return
    try:
        ss.setdefault("md_sources", {})[FILE] = decode_link(link)
    except lmmcore.LmmError as exc:
        show_error(f"The link's model could not be used: {exc}")
        return
    ss["md_preset"] = FILE
    ss.pop("md_loaded", None)


# ----------------------------------------------------------------------------- page


def fail(message: object) -> None:
    """Show the error, forget the model (no other page may use a stale one), stop."""
    ss = st.session_state
    show_error(message)
    ss["md_error"] = str(message)
    for key in ("spec", "design", "sim_data", "sim_effects"):
        ss.pop(key, None)
    st.stop()


def main() -> None:
    st.set_page_config(page_title="Model & design · lmmcore", layout="wide")
    page_header("Model & design", PURPOSE)
    ss = st.session_state
    keep_widgets("md_")
    if QUERY_NOTES_KEY in ss:
        st.warning(ss.pop(QUERY_NOTES_KEY))
    pending_link()
    ss.update(ss.pop("md_pending_widgets", {}))
    if "md_pending_start" in ss:
        ss["md_preset"] = ss.pop("md_pending_start")
        ss.pop("md_loaded", None)
    options = starting_points()
    if ss.get("md_preset") not in options:
        ss["md_preset"] = "P1"
    preset = st.selectbox(
        "Start from",
        list(options),
        key="md_preset",
        format_func=options.get,
        help="A preset from the literature, your own design, a loaded file, or your pilot "
        "data's fit (from the Your data page).",
    )
    if ss.get("md_loaded") != preset:
        load_model(preset)
        pending = ss.pop("md_query_sizes", None)  # sizes from the URL, on the first load
        if pending:
            ss.update({k: v for k, v in pending.items() if v is not None})
    if preset in lmmcore.PRESETS:
        p = lmmcore.PRESETS[preset]
        st.markdown(f"*{p.source}.* {p.notes}")
    load_file()
    seed = int(ss.get(SEED_KEY, DEFAULT_SEED))
    ss["md_error"] = None

    st.subheader("Design")
    pilot = ss[PILOT_KEY]["data"] if preset == PILOT else None
    if pilot is not None:
        design = None
        st.markdown(
            f"**Pilot data** ({ss[PILOT_KEY]['label']}): {len(pilot):,} rows. Power "
            "simulates new responses on these rows (their conditions, imbalance and missing "
            "rows), and the Power page extends them to more subjects or items."
        )
    else:
        try:
            design = check_app_design(lmmcore.Design.from_dict(build_design()))
        except (lmmcore.LmmError, TypeError, ValueError) as e:
            fail(e)
        st.markdown(
            f"**{design.summary()}**. The app works on designs of up to {APP_MAX_ROWS:,} "
            f"rows (this one has {design.n_rows:,})."
        )
        if design.factors:
            st.caption("Coded columns for the formula: " + (", ".join(design.columns) or "(none)"))
        explain(
            "The design says who sees what. *within* factors change inside each subject and "
            "item; *within subjects, between items* ones change across items (each item has "
            "one level); *between subjects* ones split the subjects into groups. The coding "
            "turns labels into the numbers the model uses (deviation: -0.5/+0.5, sum: -1/+1, "
            "treatment: 0/1)."
        )

    st.subheader("Model")
    c1, c2 = st.columns([3, 1])
    if design is not None:
        proposal = c1.selectbox(
            "Propose a formula from the design",
            list(PROPOSALS),
            format_func=PROPOSALS.get,
            key="md_proposal",
            help="Barr et al. (2013) recommend the maximal structure the design allows; "
            "drop correlations or slopes if it does not converge.",
        )
        c2.write("")
        if c2.button("Use it", key="md_propose"):
            resp = _response_of(ss.get("md_formula", "")) or "y"
            ss["md_formula"] = design.propose_formula(resp, proposal)
            st.rerun()
    formula = st.text_input(
        "Model formula (lme4 syntax)",
        key="md_formula",
        help="response ~ fixed effects + (random effects | grouping factor), e.g. "
        "rt ~ cond + (1 + cond | subj) + (1 | item).",
    )
    unit = st.text_input(
        "Unit of the response", key="md_unit", max_chars=20, help="Shown on the axes, e.g. ms."
    )
    explain(
        "The formula names the response, the fixed effects (the average effects you want to "
        "detect) and, in brackets, the random effects: `(1 + X | subj)` lets each subject "
        "have its own intercept and its own effect of X."
    )
    design_json = None if design is None else json.dumps(design.to_dict())
    try:
        contrasts_json = json.dumps(ss.get("md_contrasts") or {}, sort_keys=True)
        key = design_json if pilot is None else None
        names, groups = formula_terms(formula, key, contrasts_json, seed, _pilot=pilot)
    except lmmcore.LmmError as e:
        fail(e)

    # one column: at 800 px every editor keeps room for its values
    st.markdown("**Fixed effects**")
    fixed = fixed_inputs(names)
    sigma = st.number_input(
        "Residual SD (sigma)",
        key="md_sigma",
        format="%.4g",
        help="The trial-to-trial noise left after the fixed and random effects, in the "
        "response's units.",
    )
    st.markdown("**Random effects: SD of each term, per grouping factor**")
    random = random_inputs(groups)
    if preset == PILOT:
        st.info(
            "These start as the pilot's fitted values. Power computed from them is the "
            "'observed power' of the pilot, which says little about a new study (it follows "
            "the pilot's own noisy estimate); set each effect to the smallest value you would "
            "care to detect before planning."
        )
    explain(
        "**Fixed effects**: the true value of each coefficient (new ones start at 0). "
        "**Random effects**: how much each term varies between subjects or items, as a "
        "standard deviation (not a variance), and how those deviations correlate. **Residual "
        "SD**: the trial-to-trial noise left over."
    )
    try:
        spec = lmmcore.ModelSpec(
            formula, fixed, random, float(sigma), contrasts=ss.get("md_contrasts"), unit=unit
        )
        if design is not None:
            shown, preview_note = design.preview(PREVIEW_MAX_ROWS)
            shown_json = json.dumps(shown.to_dict())
        else:
            preview_note, shown_json = None, None
        data, effects = simulate_preview(json.dumps(spec.to_dict()), shown_json, seed, _pilot=pilot)
        ss["md_contrasts"] = spec.contrasts
    except lmmcore.LmmError as e:
        fail(e)

    approx_panel(spec, design_json if design is not None else None, seed, pilot)
    if design is not None:
        standardized_entry(spec, design, seed)
    ss["spec"], ss["design"] = spec, (design if design is not None else pilot)
    ss["sim_data"], ss["sim_seed"], ss["sim_effects"] = data, seed, effects
    sync_query_params(preset, seed, spec, design)
    if preview_note:
        st.info(f"{preview_note} Power, fits and exports use the whole design.")
    if design is not None:
        subj, factors, covs = (
            design.hierarchy[-1][0],
            [f.name for f in design.factors],
            [c.name for c in design.covariates],
        )
    else:
        subj, factors, covs = (list(groups) or [""])[0], [], []
    show_preview(spec, subj, factors, covs, data, effects)

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


def _response_of(formula: str) -> str | None:
    try:
        return lmmcore.parse_formula(formula).response
    except lmmcore.LmmError:
        return None


def run_page() -> None:
    try:
        main()
    finally:  # also after st.stop(): the values on screen survive other pages
        snapshot_widgets("md_")


if __name__ == "__main__":  # Streamlit runs pages as __main__; tests import them
    run_page()
