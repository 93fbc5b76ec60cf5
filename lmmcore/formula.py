"""Parse lme4 model formulas safely.

A formula such as ``rt ~ cond + (1 + cond | subj) + (1 | item)`` is split into a response,
a fixed part (handed to formulaic to build X) and random terms (each a term expression and a
grouping factor). Formulas come from web users, so every token is checked against a
whitelist *before* anything is evaluated: only column names, numbers, formula operators and
a few transforms (``C``, ``I``, ``log``, ``exp``, ``sqrt``, ``center``, ``scale``, ...) pass.

Example:
    >>> p = parse_formula("rt ~ cond + (1 + cond | subj) + (1 | item)")
    >>> p.response, p.fixed
    ('rt', 'cond')
    >>> [(t.expr, t.group_name) for t in p.random]
    [('1 + cond', 'subj'), ('1', 'item')]
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lmmcore.errors import FormulaError

#: Transforms a formula may call. Anything else followed by "(" is refused.
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    {"C", "I", "log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "center", "scale"}
)

#: Contrast names accepted as the second argument of ``C(...)``, mapped to formulaic's names.
CONTRASTS: dict[str, str] = {
    "treatment": "contr.treatment",
    "sum": "contr.sum",
    "helmert": "contr.helmert",
    "poly": "contr.poly",
    "diff": "contr.diff",
}

MAX_FORMULA_LENGTH = 2000

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z][A-Za-z0-9_.]*)
  | (?P<bq>`[^`]*`)
  | (?P<op>\|\||\*\*|[~+\-*/:^(),|])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op"
    text: str
    pos: int


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)`` after lme4's expansions.

    ``expr`` is a formulaic right-hand side for the term's model matrix (an intercept is
    implied unless it says ``0`` or ``-1``, as in lme4); ``factors`` are the columns whose
    interaction forms the grouping factor, named ``group_name`` as lme4 names it.
    """

    expr: str
    factors: tuple[str, ...]
    group_name: str
    correlated: bool = True

    @property
    def has_intercept(self) -> bool:
        return _expr_has_intercept(self.expr)


@dataclass(frozen=True)
class ParsedFormula:
    """A parsed lme4 formula: response, fixed part and random terms."""

    formula: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...]
    columns: frozenset[str]

    @property
    def grouping_factors(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for t in self.random:
            for f in t.factors:
                seen.setdefault(f, None)
        return tuple(seen)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, refusing any character a formula cannot contain."""
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(
            f"The formula is {len(text)} characters long; the limit is {MAX_FORMULA_LENGTH}."
        )
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            raise FormulaError(
                f"Unexpected character {ch!r} at position {pos} in formula {text!r}. "
                "A formula may contain column names, numbers, the operators + - * / : ^ | "
                "~ and parentheses, and the transforms "
                + ", ".join(sorted(ALLOWED_FUNCTIONS))
                + "."
            )
        kind = m.lastgroup or ""
        if kind == "bq":
            name = m.group()[1:-1]
            _check_name(name, text, pos)
            tokens.append(Token("name", name, pos))
        elif kind != "ws":
            if kind == "name":
                _check_name(m.group(), text, pos)
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    return tokens


def _check_name(name: str, text: str, pos: int) -> None:
    if not name or name.startswith("_") or "__" in name or name.startswith("."):
        raise FormulaError(
            f"The name {name!r} at position {pos} in {text!r} is not allowed: names may not "
            "start with an underscore or contain '__'."
        )
    if name in {"lambda", "import", "exec", "eval", "open", "globals", "locals"}:
        raise FormulaError(f"{name!r} is not allowed in a formula.")


def _split_top(tokens: Sequence[Token], ops: Iterable[str]) -> list[list[Token]]:
    """Split tokens at depth-0 occurrences of any operator in ``ops``."""
    ops = set(ops)
    parts: list[list[Token]] = [[]]
    depth = 0
    for t in tokens:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        if depth == 0 and t.kind == "op" and t.text in ops:
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def _matching_paren(tokens: Sequence[Token], i: int, text: str) -> int:
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].text == "(":
            depth += 1
        elif tokens[j].text == ")":
            depth -= 1
            if depth == 0:
                return j
    raise FormulaError(f"Unbalanced parentheses in formula {text!r}: a ')' is missing.")


def _join(tokens: Sequence[Token]) -> str:
    out: list[str] = []
    for t in tokens:
        text = t.text
        if t.kind == "name" and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
            if text not in CONTRASTS.values():
                text = f"`{text}`"
        out.append(text)
    s = " ".join(out)
    s = re.sub(r"\( ", "(", s)
    s = re.sub(r" \)", ")", s)
    s = re.sub(r" , ", ", ", s)
    s = re.sub(r"(\w|`) \(", r"\1(", s)
    s = s.replace(" : ", ":")
    return s


def _validate(tokens: Sequence[Token], text: str) -> set[str]:
    """Check calls, contrasts and parentheses; return the column names used."""
    columns: set[str] = set()
    depth = 0
    # stack of open calls: (function name or None, depth at which it opened)
    calls: list[tuple[str | None, int]] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if t.text == "(":
            depth += 1
            calls.append((None, depth))
        elif t.text == ")":
            depth -= 1
            if depth < 0:
                raise FormulaError(f"Unbalanced parentheses in formula {text!r}: extra ')'.")
            calls.pop()
        elif t.kind == "name":
            if nxt is not None and nxt.text == "(":
                if t.text not in ALLOWED_FUNCTIONS:
                    raise FormulaError(
                        f"The function {t.text!r} is not allowed in a formula. Allowed "
                        f"transforms: {', '.join(sorted(ALLOWED_FUNCTIONS))}."
                    )
                depth += 1
                calls.append((t.text, depth))
                i += 2
                continue
            in_call = calls[-1][0] if calls else None
            prev = tokens[i - 1] if i > 0 else None
            if in_call == "C" and prev is not None and prev.text == ",":
                key = t.text.lower().removeprefix("contr.")
                if key not in CONTRASTS:
                    raise FormulaError(
                        f"Unknown contrast {t.text!r} in C(...). Use one of: "
                        + ", ".join(sorted(CONTRASTS))
                        + "."
                    )
            else:
                columns.add(t.text)
        elif t.text == ",":
            if not calls or calls[-1][0] != "C":
                raise FormulaError(
                    f"Unexpected ',' at position {t.pos} in {text!r}: only C(column, contrast) "
                    "takes two arguments."
                )
        elif t.text == "~":
            raise FormulaError(f"The formula {text!r} has more than one '~'.")
        i += 1
    if depth != 0:
        raise FormulaError(f"Unbalanced parentheses in formula {text!r}: a ')' is missing.")
    return columns


def _normalise(tokens: list[Token]) -> list[Token]:
    """Contrast names to formulaic's spelling; R's ``^`` inside ``I()`` to Python's ``**``."""
    out = []
    i_depth: list[int] = []  # paren depths at which an I( call opened
    depth = 0
    for i, t in enumerate(tokens):
        if t.text == "(":
            depth += 1
            if i > 0 and tokens[i - 1].text == "I":
                i_depth.append(depth)
        elif t.text == ")":
            if i_depth and i_depth[-1] == depth:
                i_depth.pop()
            depth -= 1
        elif t.text == "^" and i_depth:
            t = Token("op", "**", t.pos)
        if t.kind == "name" and i > 0 and tokens[i - 1].text == ",":
            key = t.text.lower().removeprefix("contr.")
            if key in CONTRASTS:
                t = Token("name", CONTRASTS[key], t.pos)
        out.append(t)
    return out


def _expr_has_intercept(expr: str) -> bool:
    parts = [p.strip() for p in re.split(r"(?<![*^/])\+", expr)]
    if "0" in parts or re.search(r"-\s*1\b", expr):
        return False
    return True


def _expand_group(tokens: Sequence[Token], text: str) -> list[tuple[tuple[str, ...], str]]:
    """Grouping part of a random term -> list of (factors, lme4 name)."""
    if not tokens:
        raise FormulaError(f"A random term in {text!r} has nothing after '|'.")
    nested = _split_top(tokens, ["/"])
    levels: list[list[str]] = []
    for part in nested:
        names = _split_top(part, [":"])
        cols = []
        for n in names:
            if len(n) != 1 or n[0].kind != "name":
                raise FormulaError(
                    f"The grouping factor {_join(tokens)!r} in {text!r} must be a column name, "
                    "an interaction a:b, or a nesting a/b."
                )
            cols.append(n[0].text)
        levels.append(cols)
    out: list[tuple[tuple[str, ...], str]] = []
    acc: list[str] = []
    for cols in levels:
        acc = cols + acc  # lme4 names b within a as "b:a"
        out.append((tuple(acc), ":".join(acc)))
    return out


def _random_parts(left: list[Token], text: str) -> list[list[Token]]:
    """For ``||``: split the term expression into independent parts, as lme4 does."""
    parts = [p for p in _split_top(left, ["+"]) if p]
    has_int = _expr_has_intercept(_join(left))
    out: list[list[Token]] = []
    if has_int:
        out.append([Token("number", "1", 0)])
    for p in parts:
        if len(p) == 1 and p[0].text in {"0", "1"}:
            continue
        if p and p[0].text == "-":
            continue
        out.append([Token("number", "0", 0), Token("op", "+", 0), *p])
    return out


def parse_formula(
    formula: str,
    columns: Iterable[str] | None = None,
    groups: Sequence[str] | None = None,
) -> ParsedFormula:
    """Parse an lme4 formula into response, fixed part and random terms.

    Args:
        formula: e.g. ``"Reaction ~ Days + (Days | Subject)"``.
        columns: if given, every name the formula uses must be one of these.
        groups: interlace's convenience: crossed random intercepts ``(1 | g)`` for each.

    Raises:
        FormulaError: syntax errors, unknown columns, forbidden calls or names.

    Example:
        >>> [t.group_name for t in parse_formula("y ~ 1 + (1 | batch/cask)").random]
        ['batch', 'cask:batch']
        >>> [t.expr for t in parse_formula("y ~ x + (x || g)").random]
        ['1', '0 + x']
    """
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaError("The formula is empty. Write it as 'response ~ predictors'.")
    tokens = tokenize(formula)
    sides = _split_top(tokens, ["~"])
    if len(sides) != 2:
        raise FormulaError(
            f"The formula {formula!r} needs exactly one '~' with the response on its left, "
            "e.g. 'rt ~ cond + (1 | subj)'."
        )
    lhs, rhs = sides
    if not lhs:
        raise FormulaError(f"The formula {formula!r} has no response on the left of '~'.")
    if not rhs:
        raise FormulaError(f"The formula {formula!r} has nothing on the right of '~'.")
    used = _validate(lhs, formula) | _validate(rhs, formula)
    lhs = _normalise(lhs)
    rhs = _normalise(rhs)

    # Pull the random terms (parenthesised groups with a bar) out of the right-hand side.
    fixed: list[Token] = []
    random: list[RandomTerm] = []
    i = 0
    while i < len(rhs):
        t = rhs[i]
        prev_name = i > 0 and rhs[i - 1].kind == "name"
        if t.text == "(" and not prev_name:
            j = _matching_paren(rhs, i, formula)
            inner = rhs[i + 1 : j]
            bars = [k for k, u in enumerate(inner) if u.text in {"|", "||"}]
            if bars:
                if len(bars) > 1:
                    raise FormulaError(f"A random term in {formula!r} has more than one '|'.")
                b = bars[0]
                double = inner[b].text == "||"
                left, right = list(inner[:b]), list(inner[b + 1 :])
                if not left:
                    raise FormulaError(
                        f"A random term in {formula!r} has nothing before '|'; write (1 | g)."
                    )
                if fixed and fixed[-1].text == "-":
                    raise FormulaError(f"A random term cannot be subtracted in {formula!r}.")
                if fixed and fixed[-1].text == "+":
                    fixed.pop()
                exprs = _random_parts(left, formula) if double else [left]
                for factors, gname in _expand_group(right, formula):
                    for e in exprs:
                        random.append(RandomTerm(_join(e), factors, gname, not double))
                i = j + 1
                continue
        fixed.append(t)
        i += 1
    while fixed and fixed[0].text == "+":
        fixed.pop(0)
    while fixed and fixed[-1].text in {"+", "-"}:
        fixed.pop()
    fixed_str = _join(fixed) if fixed else "1"
    for g in groups or ():
        if not isinstance(g, str) or not g:
            raise FormulaError(f"groups must be a list of column names, got {g!r}.")
        _check_name(g, g, 0)
        random.append(RandomTerm("1", (g,), g, True))
        used.add(g)
    if columns is not None:
        check_columns(used, columns, formula)
    if groups:
        formula = formula + "".join(f" + (1 | {g})" for g in groups)
    return ParsedFormula(formula, _join(lhs), fixed_str, tuple(random), frozenset(used))


def check_columns(used: Iterable[str], columns: Iterable[str], formula: str) -> None:
    """Raise FormulaError naming any column the formula uses that the data lacks."""
    available = [str(c) for c in columns]
    missing = sorted(set(used) - set(available))
    if missing:
        hints = []
        for m in missing:
            close = difflib.get_close_matches(m, available, n=1)
            hints.append(f"{m!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise FormulaError(
            f"The formula {formula!r} uses column(s) {', '.join(hints)} that the data does not "
            f"have. Available columns: {', '.join(available)}."
        )
