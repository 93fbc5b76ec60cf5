"""Script generators: a Python script (lmmcore) and an R script (lme4 + lmerTest).

Both rebuild the same design and simulate from the same parameters. The Python script
reproduces the app's data exactly (same seed, same generator); the R script draws its
own random numbers (R's generator), so its data are equivalent, not identical.

Example:
    >>> from lmmcore import PRESETS
    >>> p = PRESETS["P1"]
    >>> "simulate_data" in python_script(p.spec, p.design, 1)
    True
    >>> "lmer(" in r_script(p.spec, p.design, 1)
    True
"""

from __future__ import annotations

import base64
import json
import math
import pprint
import unicodedata
import zlib
from typing import TYPE_CHECKING

from lmmcore.errors import SpecError
from lmmcore.formula import CONTRASTS, deparse, parse_formula, r_name

if TYPE_CHECKING:
    from lmmcore.design import Design, Factor
    from lmmcore.spec import ModelSpec

__all__ = [
    "MAX_LINK",
    "decode_link",
    "encode_link",
    "python_script",
    "r_script",
    "read_spec_design",
    "spec_design_json",
]

#: Longest link parameter `encode_link` makes (browsers and servers accept about 8,000).
MAX_LINK = 4000
#: Largest spec + design JSON `read_spec_design` and `decode_link` accept.
MAX_SPEC_JSON = 1_000_000


def spec_design_json(spec: ModelSpec, design: Design) -> str:
    """``{"spec": spec.to_dict(), "design": design.to_dict()}`` as indented JSON."""
    return json.dumps({"spec": spec.to_dict(), "design": design.to_dict()}, indent=2)


def read_spec_design(text: str | bytes) -> tuple[ModelSpec, Design]:
    """Parse `spec_design_json`'s output (an uploaded file), checking size and fields.

    Raises SpecError / DesignError with the field named.
    """
    from lmmcore.design import Design
    from lmmcore.spec import ModelSpec

    if len(text) > MAX_SPEC_JSON:
        raise SpecError(
            f"The file has {len(text):,} characters, more than the limit of {MAX_SPEC_JSON:,} "
            "for a spec and design."
        )
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise SpecError("The file is not UTF-8 text; save it as UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"The file is not valid JSON: {exc}.") from None
    except (RecursionError, ValueError) as exc:
        raise SpecError(f"The file cannot be read as a spec and design: {exc}.") from None
    if not isinstance(data, dict) or set(data) != {"spec", "design"}:
        raise SpecError(
            'Expected {"spec": {...}, "design": {...}}, as the Export page writes it; found '
            + (f"keys {sorted(map(str, data))}" if isinstance(data, dict) else type(data).__name__)
            + "."
        )
    spec = ModelSpec.from_dict(data["spec"])
    try:
        design = Design.from_dict(data["design"])
    except TypeError as exc:
        raise SpecError(f"field 'design': {exc}") from None
    return spec, design


def encode_link(spec: ModelSpec, design: Design) -> str | None:
    """The spec and design as one URL-safe text (compressed JSON), or None when it would
    be longer than `MAX_LINK` (then share the JSON file instead).

    Example:
        >>> from lmmcore import PRESETS
        >>> p = PRESETS["P3"]
        >>> decode_link(encode_link(p.spec, p.design)) == (p.spec, p.design)
        True
    """
    raw = json.dumps({"spec": spec.to_dict(), "design": design.to_dict()}, separators=(",", ":"))
    text = base64.urlsafe_b64encode(zlib.compress(raw.encode(), 9)).decode().rstrip("=")
    return text if len(text) <= MAX_LINK else None


def decode_link(text: str) -> tuple[ModelSpec, Design]:
    """Invert `encode_link`, with every size bounded (a link is untrusted input)."""
    if not isinstance(text, str) or len(text) > 2 * MAX_LINK:
        raise SpecError("The link's model is too long to be one lmmcore writes.")
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        inflate = zlib.decompressobj()
        raw = inflate.decompress(packed, MAX_SPEC_JSON)
        if inflate.unconsumed_tail:
            raise SpecError("The link's model unpacks to more than the limit; it is not valid.")
    except (ValueError, zlib.error) as exc:
        raise SpecError(f"The link's model cannot be read ({exc}); copy the whole link.") from None
    return read_spec_design(raw)


def python_script(spec: ModelSpec, design: Design, seed: int) -> str:
    """A self-contained Python script that simulates the same data with lmmcore and fits it.

    Run it as ``python script.py [out.csv] [--no-fit]``; it writes the data to ``out.csv``
    (default ``simulated_data.csv``) and prints the fitted model's summary.
    """
    spec_lit = pprint.pformat(spec.to_dict(), indent=1, width=88, sort_dicts=False)
    design_lit = pprint.pformat(design.to_dict(), indent=1, width=88, sort_dicts=False)
    return f'''"""Simulate one dataset from a linear mixed model and fit it (generated by lmmcore).

Usage: python this_script.py [out.csv] [--no-fit]
"""

import sys

import lmmcore

SEED = {int(seed)}
SPEC = {spec_lit}
DESIGN = {design_lit}

spec = lmmcore.ModelSpec.from_dict(SPEC)
design = lmmcore.Design.from_dict(DESIGN)
data = spec.simulate_data(design, seed=SEED)

args = [a for a in sys.argv[1:] if not a.startswith("--")]
out = args[0] if args else "simulated_data.csv"
data.to_csv(out, index=False)
print(f"Wrote {{len(data)}} rows to {{out}}")

if "--no-fit" not in sys.argv:
    result = lmmcore.fit(spec.formula, data)
    print(result.summary())
'''


# ----------------------------------------------------------------------------- R


def r_string(text: str) -> str:
    r"""An R string literal holding exactly ``text`` (quotes, backslashes, control and
    non-ASCII characters escaped, so no text can end the literal early).

    Example:
        >>> print(r_string('a"b\\c\né'))
        "a\"b\\c\U{a}\U{e9}"
    """
    out = ['"']
    for ch in str(text):
        o = ord(ch)
        if o == 0:
            raise SpecError(f"The name {text!r} holds a NUL character, which R cannot store.")
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif o < 32 or o == 127 or o > 126:
            out.append(f"\\U{{{o:x}}}")  # R: no mixing of \x and \U escapes in one string
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def r_symbol(name: str) -> str:
    r"""A column name as R code: bare if syntactic, else in backticks with ` and \\ escaped.

    Example:
        >>> r_symbol("rt"), r_symbol("a`; system('x')")
        ('rt', "`a\\`; system('x')`")
    """
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise SpecError(f"The name {name!r} holds a control character; rename it.")
    return r_name(name)


def _col(name: str) -> str:
    """``dat[["name"]]``: a column of the R data frame, for any name."""
    return f"dat[[{r_string(name)}]]"


def _r_num(x: float) -> str:
    if math.isfinite(x) and float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def _r_vec(xs, fmt=_r_num) -> str:
    return "c(" + ", ".join(fmt(x) for x in xs) + ")"


def _unravel(var: str, cell: str, factors: list[Factor], lines: list[str]) -> None:
    """R lines setting ``{var}${f.name}_idx`` (0-based) from a C-order cell index."""
    sizes = [f.n_levels for f in factors]
    for j, f in enumerate(factors):
        div = math.prod(sizes[j + 1 :])
        lines.append(f"{var}${f.name}_idx <- ({cell} %/% {div}) %% {f.n_levels}")


def _design_r(design: Design) -> list[str]:
    """R code building ``dat``, the design's conditions table, as Design.conditions does."""
    if design.nested is not None:
        return [
            'stop("Nested designs are not exported to R yet; use the Python script.")',
        ]
    subj_side = [f for f in design.factors if f.varies in ("between_subject", "between")]
    item_side = [f for f in design.factors if f.varies in ("between", "within_subject")]
    between = [f for f in design.factors if f.varies == "between"]
    within = [f for f in design.factors if f.varies == "within"]
    k = math.prod(f.n_levels for f in within)
    sc, ic = design.subject_col, design.item_col
    n_s = int(design.subjects)
    L: list[str] = [
        "# ---- the design: one row per trial ----",
        f"n_subj <- {n_s}",
        "subj <- data.frame(s = 0:(n_subj - 1))",
    ]
    cells = math.prod(f.n_levels for f in subj_side)
    if subj_side:
        L.append(f"subj$cell <- subj$s %/% (n_subj / {cells})")
        _unravel("subj", "subj$cell", subj_side, L)
        L.append("subj$list <- ave(subj$s, subj$cell, FUN = seq_along) - 1")
    else:
        L.append("subj$list <- subj$s")
    if design.items is None:
        L += [
            f"dat <- subj[rep(seq_len(n_subj), each = {k}), , drop = FALSE]",
            f"dat$w <- rep(0:{k - 1}, times = n_subj)",
        ]
    else:
        groups = math.prod(f.n_levels for f in item_side)
        L += [
            f"n_items <- {int(design.items)}",
            "item <- data.frame(i = 0:(n_items - 1))",
            f"item$cell <- item$i %/% (n_items / {groups})",
            f"item$local <- item$i - item$cell * (n_items / {groups})",
        ]
        if item_side:
            _unravel("item", "item$cell", item_side, L)
        key = [f"{f.name}_idx" for f in between]
        item_cols = ["i", "local"] + [f"{f.name}_idx" for f in item_side]
        L.append(f"item <- item[, {_r_vec(item_cols, r_string)}, drop = FALSE]")
        if key:
            L.append(f"pairs <- merge(subj, item, by = {_r_vec(key, r_string)})")
        else:
            L.append("pairs <- merge(subj, item, by = NULL)")
        L.append("pairs <- pairs[order(pairs$s, pairs$i), ]")
        if design.counterbalance:
            L += ["dat <- pairs", f"dat$w <- (dat$list + dat$local) %% {k}"]
        else:
            L += [
                f"dat <- pairs[rep(seq_len(nrow(pairs)), each = {k}), ]",
                f"dat$w <- rep(0:{k - 1}, times = nrow(pairs))",
            ]
    if within:
        _unravel("dat", "dat$w", within, L)
    if design.trials > 1:
        L += [
            f"dat <- dat[rep(seq_len(nrow(dat)), each = {design.trials}), ]",
            f"dat$rep <- rep(1:{design.trials}, times = nrow(dat) / {design.trials})",
        ]
    w_s = len(str(n_s))
    L.append(
        f"dat${sc} <- factor(sprintf({r_string(f'{sc}%0{w_s}d')}, dat$s + 1), "
        f"levels = sprintf({r_string(f'{sc}%0{w_s}d')}, 1:n_subj))"
    )
    if design.items is not None:
        w_i = len(str(design.items))
        L.append(
            f"dat${ic} <- factor(sprintf({r_string(f'{ic}%0{w_i}d')}, dat$i + 1), "
            f"levels = sprintf({r_string(f'{ic}%0{w_i}d')}, 1:n_items))"
        )
    for f in design.factors:
        levels = _r_vec(f.levels, r_string)
        idx = f"dat${f.name}_idx + 1"
        if f.coding == "categorical":
            L.append(f"dat${f.name} <- factor({levels}[{idx}], levels = {levels})")
        else:
            m = f.contrasts()
            for j, col in enumerate(f.columns):
                L.append(f"dat${col} <- {_r_vec(m[:, j])}[{idx}]")
        L.append(f"dat${f.label_column} <- factor({levels}[{idx}], levels = {levels})")
    for c in design.covariates:
        a, b = (_r_num(p) for p in c.params)
        draw = "rnorm" if c.distribution == "normal" else "runif"
        per = c.per
        if per in ("subject", sc):
            n_expr, index = "n_subj", "dat$s + 1"
        elif per in ("item", ic) and design.items is not None:
            n_expr, index = "n_items", "dat$i + 1"
        else:
            n_expr, index = "nrow(dat)", None
        L.append(f"v <- {draw}({n_expr}, {a}, {b})")
        if c.center:
            L.append("v <- v - mean(v)")
        L.append(f"dat${c.name} <- v" + (f"[{index}]" if index else ""))
    if design.missing:
        L += [
            f"n_drop <- round({_r_num(design.missing)} * nrow(dat))",
            "if (n_drop > 0) dat <- dat[-sample.int(nrow(dat), n_drop), ]",
        ]
    L.append("rownames(dat) <- NULL")
    return L


def _group_r(factors: tuple[str, ...]) -> str:
    """R code for a grouping factor: a column, or the interaction of columns (nesting)."""
    if len(factors) == 1:
        return f"factor({_col(factors[0])})"
    cols = ", ".join(r_string(f) for f in factors)
    return f'interaction(dat[, c({cols})], sep = ":", drop = TRUE)'


def r_script(spec: ModelSpec, design: Design, seed: int) -> str:
    """An R script (lme4 + lmerTest + MASS) that builds the design, simulates and fits.

    R's random numbers differ from NumPy's, so the data match the app's in distribution,
    not value by value. Every name is written from lmmcore's parse of the formula with R's
    quoting (`r_symbol`, `r_string`), never as the text the user typed.
    """
    parsed = parse_formula(spec.formula)
    resp = parsed.response_node.name  # a spec's response is a column (ModelSpec checks it)
    fixed = "1" if parsed.fixed_node is None else deparse(parsed.fixed_node, r_symbol)
    con = ""
    if spec.contrasts:
        con = ", ".join(
            f"{r_string(k)} = {r_string(CONTRASTS[v])}" for k, v in spec.contrasts.items()
        )
        con = f"list({con})"
    L = [
        "# Simulate one dataset from a linear mixed model and fit it (generated by lmmcore).",
        '# Needs: install.packages(c("lme4", "lmerTest", "MASS"))',
        "library(lmerTest)  # loads lme4; adds Satterthwaite df and p-values",
        "library(MASS)      # mvrnorm",
        "",
        f"set.seed({int(seed) % (2**31 - 1)})",
        "",
        *_design_r(design),
        "",
        "# ---- the model: fixed effects ----",
        f"beta <- {_r_vec(spec.fixed.values())}",
        f"names(beta) <- {_r_vec(spec.fixed.keys(), r_string)}",
        f"X <- model.matrix(~ {fixed}, dat" + (f", contrasts.arg = {con})" if con else ")"),
        "stopifnot(setequal(colnames(X), names(beta)))",
        "eta <- drop(X %*% beta[colnames(X)])",
        "",
        "# ---- random effects: SDs and correlations per grouping factor ----",
    ]
    for gi, (g, entry) in enumerate(spec.random.items()):
        terms = list(entry["sd"])
        sd = [entry["sd"][t] for t in terms]
        kk = len(terms)
        mine = [t for t in parsed.random if t.group_name == g]
        rhs = " + ".join(deparse(t.lhs, r_symbol) for t in mine)
        v = f"re_{gi + 1}"
        L.append(f"# grouping factor {gi + 1}: {r_string(g)}")
        L.append(f"sd_g <- {_r_vec(sd)}")
        if entry["corr"] is None or kk == 1:
            L.append(f"corr_g <- diag({kk})")
        else:
            flat = [x for row in entry["corr"].tolist() for x in row]
            L.append(f"corr_g <- matrix({_r_vec(flat)}, {kk}, {kk}, byrow = TRUE)")
        mm = f"model.matrix(~ {rhs}, dat" + (f", contrasts.arg = {con})" if con else ")")
        L += [
            "Sigma_g <- diag(sd_g, nrow = length(sd_g)) %*% corr_g %*% "
            "diag(sd_g, nrow = length(sd_g))",
            f"grp <- droplevels({_group_r(mine[0].factors)})",
            "lev <- levels(grp)",
            f"{v} <- matrix(mvrnorm(length(lev), rep(0, {kk}), Sigma_g), ncol = {kk})",
            f"colnames({v}) <- {_r_vec(terms, r_string)}",
            f"Z <- {mm}[, colnames({v}), drop = FALSE]",
            f"eta <- eta + rowSums(Z * {v}[match(as.character(grp), lev), , drop = FALSE])",
        ]
    L += [
        "",
        f"{_col(resp)} <- eta + rnorm(nrow(dat), 0, {_r_num(spec.sigma)})",
        'write.csv(dat, "simulated_data_R.csv", row.names = FALSE)',
        "",
        "# ---- fit ----",
        f"m <- lmer({parsed.to_r(r_symbol)}, data = dat, REML = TRUE"
        + (f", contrasts = {con})" if con else ")"),
        "summary(m)",
        "",
    ]
    return "\n".join(L)
