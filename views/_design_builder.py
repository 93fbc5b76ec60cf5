"""The design builder of "Model & design": widgets that describe a whole `lmmcore.Design`.

Every input has a session-state key starting ``md_``; `load_design` writes a design into
those keys (a preset, a JSON file, a link), `build_design` reads them back into a Design
(or shows the library's message). Only widgets and text parsing live here: the design
itself, its checks and its conditions table are `lmmcore.Design`'s.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

import lmmcore
from lmmcore.design import CODINGS, DISTRIBUTIONS, VARIES

VARIES_LABELS = {
    "within": "within subjects and items",
    "within_subject": "within subjects, between items",
    "between_subject": "between subjects, within items",
    "between": "between subjects and items",
}
CODING_LABELS = {
    "deviation": "deviation (-0.5/+0.5; centred)",
    "sum": "sum (-1/+1)",
    "treatment": "treatment (0/1; first level = reference)",
    "helmert": "Helmert",
    "poly": "polynomial (ordered levels)",
    "categorical": "categorical (coded by the formula)",
}
MAX_FACTORS = 8
MAX_COVARIATES = 6
UNITS = ("subjects", "nested units")


def _nested_text(nested) -> str:
    return ", ".join(f"{n} {c}" for n, c in nested)


def parse_nested(text: str) -> list[tuple[str, int]]:
    """``"school 10, class 4, pupil 25"`` -> [("school", 10), ("class", 4), ("pupil", 25)].

    Example:
        >>> parse_nested("school 10, class 4, pupil 25")
        [('school', 10), ('class', 4), ('pupil', 25)]
    """
    out = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9_.]*)\s+(\d{1,7})", part)
        if m is None:
            raise lmmcore.DesignError(
                f"{part!r} is not 'name count'; write the levels top first, e.g. "
                "'school 10, class 4, pupil 25' (10 schools, 4 classes in each, 25 pupils "
                "in each class)"
            )
        out.append((m.group(1), int(m.group(2))))
    if not out:
        raise lmmcore.DesignError("give at least one nesting level, e.g. 'class 8, pupil 20'")
    return out


def load_design(design: lmmcore.Design) -> None:
    """Write ``design`` into the builder's widgets (before they are drawn)."""
    ss = st.session_state
    ss["md_units_kind"] = UNITS[1] if design.nested is not None else UNITS[0]
    ss["md_subjects"] = int(design.subjects or 1)
    ss["md_subject_col"] = design.subject_col
    ss["md_nested_text"] = _nested_text(design.nested or [("class", 8), ("pupil", 20)])
    ss["md_has_items"] = design.items is not None
    ss["md_items"] = int(design.items or 20)
    ss["md_item_col"] = design.item_col
    ss["md_nfactors"] = len(design.factors)
    for i, f in enumerate(design.factors):
        ss[f"md_f{i}_name"] = f.name
        ss[f"md_f{i}_levels"] = ", ".join(f.levels)
        ss[f"md_f{i}_varies"] = f.varies
        ss[f"md_f{i}_coding"] = f.coding
        ss[f"md_f{i}_at"] = f.at or ""
    ss["md_ncov"] = len(design.covariates)
    for i, c in enumerate(design.covariates):
        ss[f"md_c{i}_name"] = c.name
        ss[f"md_c{i}_dist"] = c.distribution
        ss[f"md_c{i}_p1"] = float(c.params[0])
        ss[f"md_c{i}_p2"] = float(c.params[1])
        ss[f"md_c{i}_per"] = c.per
        ss[f"md_c{i}_center"] = c.center
    ss["md_trials"] = int(design.trials)
    ss["md_counterbalance"] = bool(design.counterbalance)
    ss["md_missing"] = float(design.missing) * 100


def _remove(prefix: str, count_key: str, i: int, fields: list[str]) -> None:
    """Drop entry ``i`` of a list of widget groups (a callback: runs before the rerun)."""
    ss = st.session_state
    n = int(ss.get(count_key, 0))
    for j in range(i, n - 1):
        for f in fields:
            src = f"md_{prefix}{j + 1}_{f}"
            if src in ss:
                ss[f"md_{prefix}{j}_{f}"] = ss[src]
    for f in fields:
        ss.pop(f"md_{prefix}{n - 1}_{f}", None)
    ss[count_key] = n - 1


def _add_factor() -> None:
    ss = st.session_state
    i = int(ss.get("md_nfactors", 0))
    names = {ss.get(f"md_f{j}_name") for j in range(i)}
    name = next(f"F{k}" for k in range(1, 100) if f"F{k}" not in names)
    ss[f"md_f{i}_name"] = name
    ss[f"md_f{i}_levels"] = "a, b"
    ss[f"md_f{i}_varies"] = "within"
    ss[f"md_f{i}_coding"] = "deviation"
    ss[f"md_f{i}_at"] = ""
    ss["md_nfactors"] = i + 1


def _add_covariate() -> None:
    ss = st.session_state
    i = int(ss.get("md_ncov", 0))
    ss[f"md_c{i}_name"] = f"cov{i + 1}"
    ss[f"md_c{i}_dist"] = "normal"
    ss[f"md_c{i}_p1"] = 0.0
    ss[f"md_c{i}_p2"] = 1.0
    ss[f"md_c{i}_per"] = "row"
    ss[f"md_c{i}_center"] = False
    ss["md_ncov"] = i + 1


_FACTOR_FIELDS = ["name", "levels", "varies", "coding", "at"]
_COV_FIELDS = ["name", "dist", "p1", "p2", "per", "center"]


def build_design() -> dict[str, Any]:
    """Draw the builder; return the design as `Design.to_dict` would (not yet checked)."""
    ss = st.session_state
    st.markdown("**Who is measured**")
    c1, c2, c3 = st.columns(3)
    kind = c1.radio(
        "Units",
        UNITS,
        key="md_units_kind",
        horizontal=True,
        help="Subjects, or units nested in others (pupils in classes in schools).",
    )
    out: dict[str, Any] = {}
    if kind == UNITS[0]:
        out["subjects"] = int(
            c2.number_input(
                "Subjects",
                min_value=1,
                step=1,
                key="md_subjects",
                help="How many people (or other units) take part.",
            )
        )
        out["subject_col"] = c3.text_input(
            "Subject column", key="md_subject_col", help="The name of the subject ID column."
        )
    else:
        text = c2.text_input(
            "Nesting, top level first",
            key="md_nested_text",
            help="Names and counts per parent, e.g. 'school 10, class 4, pupil 25': 10 "
            "schools, 4 classes in each, 25 pupils in each class. The last level plays the "
            "subject.",
        )
        out["nested"] = parse_nested(text)
    c1, c2, c3 = st.columns(3)
    has_items = c1.checkbox(
        "Items (crossed with the units)",
        key="md_has_items",
        help="Stimuli every unit responds to (words, faces); leave off for none.",
    )
    if has_items:
        out["items"] = int(
            c2.number_input("Items", min_value=1, step=1, key="md_items", help="How many stimuli.")
        )
        out["item_col"] = c3.text_input(
            "Item column", key="md_item_col", help="The name of the item ID column."
        )
    st.markdown("**Factors** (experimental conditions)")
    factors = []
    for i in range(int(ss.get("md_nfactors", 0))):
        cols = st.columns([2, 3, 3, 3, 1])
        name = cols[0].text_input("Name", key=f"md_f{i}_name", help="A column name, e.g. cond.")
        levels = cols[1].text_input(
            "Levels",
            key=f"md_f{i}_levels",
            help="Level names separated by commas; the first is the reference level.",
        )
        varies = cols[2].selectbox(
            "Varies",
            VARIES,
            key=f"md_f{i}_varies",
            format_func=VARIES_LABELS.get,
            help="Within: each subject (item) sees every level. Between: each subject "
            "(item) sees one.",
        )
        coding = cols[3].selectbox(
            "Coding",
            CODINGS,
            key=f"md_f{i}_coding",
            format_func=CODING_LABELS.get,
            help="How levels become numbers; deviation coding makes the intercept the grand "
            "mean and the effect 'second level minus first'.",
        )
        cols[4].button(
            "Remove",
            key=f"md_f{i}_remove",
            on_click=_remove,
            args=("f", "md_nfactors", i, _FACTOR_FIELDS),
        )
        entry: dict[str, Any] = {
            "name": name.strip(),
            "levels": [lv.strip() for lv in levels.split(",") if lv.strip()],
            "varies": varies,
            "coding": coding,
        }
        if kind == UNITS[1] and varies in ("between_subject", "between"):
            at = st.text_input(
                f"Assigned at which level ({name})",
                key=f"md_f{i}_at",
                help="For nested designs: the level whose units get one condition each "
                "(e.g. class); empty for the lowest level.",
            )
            entry["at"] = at.strip() or None
        factors.append(entry)
    if int(ss.get("md_nfactors", 0)) < MAX_FACTORS:
        st.button("Add a factor", key="md_add_factor", on_click=_add_factor)
    out["factors"] = factors

    st.markdown("**Covariates** (continuous predictors drawn at random)")
    covs = []
    for i in range(int(ss.get("md_ncov", 0))):
        cols = st.columns([2, 2, 2, 2, 2, 1, 1])
        dist = cols[1].selectbox(
            "Distribution",
            DISTRIBUTIONS,
            key=f"md_c{i}_dist",
            help="How the covariate's values are drawn: normal (mean, SD) or uniform (low, high).",
        )
        labels = ("mean", "SD") if dist == "normal" else ("low", "high")
        covs.append(
            {
                "name": cols[0]
                .text_input("Name", key=f"md_c{i}_name", help="A column name, e.g. age.")
                .strip(),
                "distribution": dist,
                "params": [
                    float(
                        cols[2].number_input(
                            labels[0],
                            key=f"md_c{i}_p1",
                            format="%.4g",
                            help="The distribution's first parameter.",
                        )
                    ),
                    float(
                        cols[3].number_input(
                            labels[1],
                            key=f"md_c{i}_p2",
                            format="%.4g",
                            help="The distribution's second parameter.",
                        )
                    ),
                ],
                "per": cols[4]
                .text_input(
                    "Per",
                    key=f"md_c{i}_per",
                    help="row, subject, item, or a nesting level: one value per what.",
                )
                .strip(),
                "center": cols[5].checkbox(
                    "Centre",
                    key=f"md_c{i}_center",
                    help="Subtract the mean of the drawn values, so 0 is the average.",
                ),
            }
        )
        cols[6].button(
            "Remove", key=f"md_c{i}_remove", on_click=_remove, args=("c", "md_ncov", i, _COV_FIELDS)
        )
    if int(ss.get("md_ncov", 0)) < MAX_COVARIATES:
        st.button("Add a covariate", key="md_add_cov", on_click=_add_covariate)
    out["covariates"] = covs

    c1, c2, c3 = st.columns(3)
    out["trials"] = int(
        c1.number_input(
            "Trials per cell",
            min_value=1,
            step=1,
            key="md_trials",
            help="Repetitions of every combination of unit, item and condition.",
        )
    )
    out["counterbalance"] = bool(
        c2.checkbox(
            "Counterbalance (Latin square)",
            key="md_counterbalance",
            help="Each subject sees each item once, items rotating through the within "
            "conditions across subjects.",
        )
    )
    out["missing"] = (
        float(
            c3.number_input(
                "Missing rows (%)",
                min_value=0.0,
                max_value=99.0,
                step=5.0,
                key="md_missing",
                help="A random share of rows dropped, as in real data.",
            )
        )
        / 100
    )
    return out
