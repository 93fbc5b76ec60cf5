"""Parse lme4 model formulas with lmmcore's own parser, into a small syntax tree.

A formula such as ``rt ~ cond + (1 + cond | subj) + (1 | item)`` is read into a response,
a fixed part and random terms (each a term expression and a grouping factor). Formulas
come from web users, so nothing in them is ever handed to another parser or evaluator:
`lmmcore.terms` expands the tree into model terms, `lmmcore.model_frame` evaluates the few
transforms (``I``, ``log``, ``scale``, ...) itself with numpy, and exported scripts write
names from the tree with their own quoting. The grammar is R's, restricted to formulas:
column names (in backticks when they hold other characters, with R's ``\\``` and ``\\\\``
escapes), numbers, the operators ``~ + - * / : ^ | ||``, parentheses and the transforms in
`ALLOWED_FUNCTIONS`. Exponents inside transforms must be small literal numbers.

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
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from lmmcore.errors import FormulaError
from lmmcore.limits import MAX_EXPONENT, MAX_FORMULA_DEPTH, MAX_FORMULA_LENGTH

__all__ = [
    "ALLOWED_FUNCTIONS",
    "CONTRASTS",
    "BinOp",
    "Call",
    "Name",
    "Node",
    "Num",
    "Paren",
    "ParsedFormula",
    "RandomTerm",
    "Unary",
    "check_columns",
    "deparse",
    "parse_formula",
    "r_name",
]

#: Numeric transforms a formula may call, and ``C(column, contrast)``.
NUMERIC_FUNCTIONS: frozenset[str] = frozenset(
    {"I", "log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "center", "scale"}
)
ALLOWED_FUNCTIONS: frozenset[str] = NUMERIC_FUNCTIONS | {"C"}

#: Contrast names accepted in ``C(column, contrast)`` and ``contrasts=``, with R's spelling.
CONTRASTS: dict[str, str] = {
    "treatment": "contr.treatment",
    "sum": "contr.sum",
    "helmert": "contr.helmert",
    "poly": "contr.poly",
    "diff": "contr.sdif",
}

#: R words that are not column names unless written in backticks.
_RESERVED = frozenset(
    "if else repeat while function for next break in TRUE FALSE NULL NA NaN Inf "
    "NA_integer_ NA_real_ NA_character_".split()
)
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z][A-Za-z0-9_.]*)
  | (?P<bq>`(?:[^`\\]|\\.)*`)
  | (?P<op>%in%|\|\||\*\*|[~+\-*/:^(),|])
    """,
    re.VERBOSE | re.DOTALL,
)
_SYNTACTIC = re.compile(r"(?:[A-Za-z]|\.[A-Za-z._]?)[A-Za-z0-9._]*")


# ----------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class Num:
    """A number written in the formula."""

    value: float


@dataclass(frozen=True)
class Name:
    """A column name."""

    name: str


@dataclass(frozen=True)
class Call:
    """A transform: ``func(args)``, ``func`` one of `ALLOWED_FUNCTIONS`."""

    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class BinOp:
    """``left op right`` for op in ``~ | || + - * / : ^``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary:
    """``-x`` or ``+x``."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Paren:
    """``(inner)``, kept so that names read as the user wrote them."""

    inner: Node


Node = Num | Name | Call | BinOp | Unary | Paren

# R's binding powers (left, right); ^ is right-associative. Unary minus binds tighter than
# ':' and looser than '^' (R: -a:b is (-a):b, -x^2 is -(x^2)).
_BINARY = {
    "~": (10, 11),
    "|": (20, 21),
    "||": (20, 21),
    "+": (30, 31),
    "-": (30, 31),
    "*": (40, 41),
    "/": (40, 41),
    ":": (60, 61),
    "^": (81, 80),
}
_PREFIX = 70
_SPACED = {"~", "|", "||", "+", "-", "*"}


def r_name(name: str) -> str:
    """A column name as R writes it in formulas and coefficient names (backticks if needed).

    Example:
        >>> r_name("rt"), r_name("my var"), r_name("a`b")
        ('rt', '`my var`', '`a\\\\`b`')
    """
    if _SYNTACTIC.fullmatch(name) and name not in _RESERVED:
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _r_number(v: float) -> str:
    """A number as R's deparse writes it (15 significant digits, fixed unless sci is shorter)."""
    if v == 0:
        return "0"
    mant, exp = f"{v:.14e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    e = int(exp)
    sci = f"{mant}e{'+' if e >= 0 else '-'}{abs(e):02d}"
    fixed = f"{v:.{max(0, 14 - e)}f}"
    if "." in fixed:
        fixed = fixed.rstrip("0").rstrip(".")
    return fixed if len(fixed) <= len(sci) else sci


def deparse(node: Node, name: Callable[[str], str] = r_name) -> str:
    """The node as R's ``deparse`` writes it: the label of a variable or term.

    ``name`` writes a column name (default `r_name`; exports pass their own quoting).

    Example:
        >>> deparse(parse_formula("y ~ I(x^2/3*4 - 1) + log(x+1) + (1 | g)").fixed_node)
        'I(x^2/3 * 4 - 1) + log(x + 1)'
    """
    if isinstance(node, Num):
        return _r_number(node.value)
    if isinstance(node, Name):
        return name(node.name)
    if isinstance(node, Call):
        return f"{node.func}({', '.join(deparse(a, name) for a in node.args)})"
    if isinstance(node, Paren):
        return f"({deparse(node.inner, name)})"
    if isinstance(node, Unary):
        return f"{node.op}{deparse(node.operand, name)}"
    sep = f" {node.op} " if node.op in _SPACED else node.op
    return f"{deparse(node.left, name)}{sep}{deparse(node.right, name)}"


def walk(node: Node) -> Iterable[Node]:
    """Every node of the tree, parents before children."""
    yield node
    if isinstance(node, Call):
        for a in node.args:
            yield from walk(a)
    elif isinstance(node, Paren):
        yield from walk(node.inner)
    elif isinstance(node, Unary):
        yield from walk(node.operand)
    elif isinstance(node, BinOp):
        yield from walk(node.left)
        yield from walk(node.right)


def contrast_key(node: Node, text: str) -> str:
    """The `CONTRASTS` key of the second argument of ``C()``."""
    if isinstance(node, Name):
        key = node.name.lower().removeprefix("contr.")
        if key in CONTRASTS:
            return key
    raise FormulaError(
        f"Unknown contrast {deparse(node)!r} in C(...) in {text!r}. Use one of: "
        + ", ".join(sorted(CONTRASTS))
        + " (e.g. C(cond, sum))."
    )


# ----------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op", "end"
    text: str
    pos: int


def _unexpected(ch: str, pos: int, text: str) -> FormulaError:
    if ch == "_":
        return FormulaError(
            f"A name at position {pos} in {text!r} starts with an underscore; write such a "
            "column name in backticks, e.g. `_id`."
        )
    if ch == "`":
        return FormulaError(
            f"The backtick at position {pos} in {text!r} starts a name that never ends; close "
            "it with another backtick (inside one, write \\` for a backtick and \\\\ for a "
            "backslash)."
        )
    what = "a space" if ch.isspace() else repr(ch)
    hint = ""
    if ch.isalpha() or ch.isdigit() or ch == "_":
        hint = " Put names with other characters in backticks, e.g. `größe` or `2nd`."
    return FormulaError(
        f"Unexpected character {what} at position {pos} in formula {text!r}. A formula may "
        "contain column names, numbers, the operators + - * / : ^ | ~ and parentheses, and "
        "the transforms " + ", ".join(sorted(ALLOWED_FUNCTIONS)) + "." + hint
    )


def _check_name(name: str, text: str, pos: int) -> None:
    folded = unicodedata.normalize("NFKC", name)
    if not name.strip():
        raise FormulaError(f"The name at position {pos} in {text!r} is empty.")
    if "__" in folded:
        raise FormulaError(
            f"The name {name!r} at position {pos} in {text!r} is not allowed: names may not "
            "contain a double underscore (compared after Unicode NFKC normalisation). Rename "
            "the column."
        )
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise FormulaError(
            f"The name {name!r} at position {pos} in {text!r} contains a control character "
            "(a line break or tab, say); rename the column."
        )


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, refusing any character a formula cannot contain."""
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(
            f"The formula is {len(text):,} characters long; the limit is {MAX_FORMULA_LENGTH:,}."
        )
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _unexpected(text[pos], pos, text)
        kind = m.lastgroup or ""
        if kind == "bq":
            raw = m.group()[1:-1]
            bad = re.search(r"\\[^\\`]", raw)
            if bad:
                raise FormulaError(
                    f"The backtick name at position {pos} in {text!r} has the escape "
                    f"{bad.group()!r}; inside backticks only \\` (a backtick) and \\\\ (a "
                    "backslash) are escapes."
                )
            name = re.sub(r"\\(.)", r"\1", raw)
            _check_name(name, text, pos)
            tokens.append(Token("name", name, pos))
        elif kind == "name":
            if m.group() in _RESERVED:
                raise FormulaError(
                    f"{m.group()!r} at position {pos} in {text!r} is an R keyword, not a "
                    f"column; write `{m.group()}` in backticks if it is a column name."
                )
            _check_name(m.group(), text, pos)
            tokens.append(Token("name", m.group(), pos))
        elif kind == "number":
            tokens.append(Token("number", m.group(), pos))
        elif kind == "op":
            op = "^" if m.group() == "**" else m.group()
            if op == "%in%":
                raise FormulaError(
                    f"'%in%' (position {pos} in {text!r}) is not supported; write the "
                    "interaction a:b or the nesting a/b."
                )
            tokens.append(Token("op", op, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# ----------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def fail(self, msg: str) -> FormulaError:
        return FormulaError(f"{msg} in formula {self.text!r}.")

    def expr(self, min_bp: int, depth: int, after: str | None) -> Node:
        if depth > MAX_FORMULA_DEPTH:
            raise self.fail(f"The formula is nested more than {MAX_FORMULA_DEPTH} levels deep")
        t = self.take()
        left: Node
        if t.kind == "number":
            left = Num(float(t.text))
        elif t.kind == "name":
            if self.peek().text == "(":
                left = self.call(t, depth)
            else:
                left = Name(t.text)
        elif t.text == "(":
            inner = self.expr(0, depth + 1, "(")
            if self.peek().text != ")":
                raise self.closing_error()
            self.take()
            left = Paren(inner)
        elif t.text in ("-", "+"):
            left = Unary(t.text, self.expr(_PREFIX, depth + 1, t.text))
        elif t.text == "~" and after is None:
            raise FormulaError(f"The formula {self.text!r} has no response on the left of '~'.")
        elif t.text in ("|", "||") and after == "(":
            raise FormulaError(
                f"A random term in {self.text!r} has nothing before '{t.text}'; write (1 | g)."
            )
        elif t.kind == "end" and after == "~":
            raise FormulaError(f"The formula {self.text!r} has nothing on the right of '~'.")
        elif t.kind == "end" or t.text in (")", ","):
            if after in ("|", "||"):
                raise FormulaError(f"A random term in {self.text!r} has nothing after '{after}'.")
            what = "the end" if t.kind == "end" else repr(t.text)
            where = f" after {after!r}" if after else ""
            raise self.fail(f"Something is missing{where} before {what} (position {t.pos})")
        else:
            raise self.fail(f"Unexpected {t.text!r} at position {t.pos}")
        while True:
            t = self.peek()
            if t.kind == "end" or t.text in (")", ","):
                return left
            if t.kind != "op" or t.text not in _BINARY:
                prev = deparse(left)
                raise self.fail(
                    f"An operator such as + is missing between {prev!r} and {t.text!r} "
                    f"(position {t.pos})"
                )
            lbp, rbp = _BINARY[t.text]
            if lbp < min_bp:
                return left
            self.take()
            right = self.expr(rbp, depth + 1, t.text)
            left = BinOp(t.text, left, right)

    def call(self, name: Token, depth: int) -> Node:
        func = name.text
        if func not in ALLOWED_FUNCTIONS:
            raise FormulaError(
                f"The function {func!r} is not allowed in a formula. Allowed transforms: "
                f"{', '.join(sorted(ALLOWED_FUNCTIONS))}."
            )
        self.take()  # "("
        args: list[Node] = []
        while True:
            if self.peek().text == ")" and not args:
                break
            args.append(self.expr(0, depth + 1, "("))
            if self.peek().text == ",":
                self.take()
                continue
            break
        if self.peek().text != ")":
            raise self.closing_error()
        self.take()
        if func == "C":
            if len(args) not in (1, 2) or not isinstance(args[0], Name):
                raise FormulaError(
                    f"C() takes a column name and optionally a contrast, e.g. C(cond, sum); "
                    f"got C({', '.join(deparse(a) for a in args)}) in {self.text!r}."
                )
            if len(args) == 2:
                contrast_key(args[1], self.text)
        elif len(args) != 1:
            raise FormulaError(
                f"{func}() takes exactly one argument, got {len(args)} in {self.text!r}"
                + (" (use log2 or log10 for other bases)." if func == "log" else ".")
            )
        else:
            _check_arithmetic(args[0], self.text)
        return Call(func, tuple(args))

    def closing_error(self) -> FormulaError:
        t = self.peek()
        if t.kind == "end":
            return FormulaError(
                f"Unbalanced parentheses in formula {self.text!r}: a ')' is missing."
            )
        return self.fail(f"Expected ')' at position {t.pos} but found {t.text!r}")


def _check_arithmetic(node: Node, text: str) -> None:
    """Inside a transform only arithmetic on columns and numbers is allowed; exponents are
    literal numbers no larger than `MAX_EXPONENT` (so nothing can be made arbitrarily
    expensive)."""
    for n in walk(node):
        if isinstance(n, BinOp):
            if n.op not in ("+", "-", "*", "/", "^"):
                raise FormulaError(
                    f"{n.op!r} cannot be used inside a transform in {text!r}; inside I(), log() "
                    "etc. only + - * / ^ are arithmetic (use * for a product)."
                )
            if n.op == "^":
                e = _literal(n.right)
                if e is None or abs(e) > MAX_EXPONENT:
                    raise FormulaError(
                        f"The exponent in {deparse(n)!r} in {text!r} must be a number written "
                        f"in the formula, between -{MAX_EXPONENT} and {MAX_EXPONENT} (e.g. "
                        "I(x^2)); powers of columns or of large exponents are not evaluated."
                    )
        elif isinstance(n, Call) and n.func == "C":
            raise FormulaError(f"C() cannot be used inside a transform in {text!r}.")


def _literal(node: Node) -> float | None:
    """The value of a literal number (possibly signed or parenthesised), else None."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Paren):
        return _literal(node.inner)
    if isinstance(node, Unary):
        v = _literal(node.operand)
        return None if v is None else (-v if node.op == "-" else v)
    return None


# ----------------------------------------------------------------------------- formula


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(lhs | group)`` after lme4's expansions.

    ``lhs`` is the term's model formula (an intercept is implied unless it says ``0`` or
    ``-1``, as in lme4), ``expr`` its text; ``factors`` are the columns whose interaction
    forms the grouping factor, named ``group_name`` as lme4 names it.
    """

    lhs: Node
    factors: tuple[str, ...]
    group_name: str
    correlated: bool = True

    @property
    def expr(self) -> str:
        return deparse(self.lhs)

    @property
    def has_intercept(self) -> bool:
        from lmmcore.terms import expand

        return expand(self.lhs, "").intercept


@dataclass(frozen=True)
class ParsedFormula:
    """A parsed lme4 formula: response, fixed part and random terms, as syntax trees."""

    formula: str
    response_node: Node
    fixed_node: Node | None
    random: tuple[RandomTerm, ...]
    columns: frozenset[str]

    @property
    def response(self) -> str:
        return deparse(self.response_node)

    @property
    def fixed(self) -> str:
        return "1" if self.fixed_node is None else deparse(self.fixed_node)

    @property
    def grouping_factors(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for t in self.random:
            for f in t.factors:
                seen.setdefault(f, None)
        return tuple(seen)

    def to_r(self, name: Callable[[str], str] = r_name) -> str:
        """The formula as R code, written from the tree (names quoted by ``name``).

        Example:
            >>> parse_formula("y ~ `a b` + (x || g)").to_r()
            'y ~ `a b` + (1 | g) + (0 + x | g)'
        """
        parts = ["1" if self.fixed_node is None else deparse(self.fixed_node, name)]
        for t in self.random:
            group = ":".join(name(f) for f in t.factors)
            parts.append(f"({deparse(t.lhs, name)} | {group})")
        return f"{deparse(self.response_node, name)} ~ {' + '.join(parts)}"


def _top_terms(node: Node) -> list[tuple[str, Node]]:
    """The top-level +/- chain of the right-hand side as (sign, node) pairs."""
    if isinstance(node, BinOp) and node.op in ("+", "-"):
        return [*_top_terms(node.left), (node.op, node.right)]
    if isinstance(node, Unary) and node.op == "-":
        return [("-", node.operand)]
    return [("+", node)]


def _bar(node: Node) -> BinOp | None:
    if isinstance(node, Paren):
        inner = node.inner
        while isinstance(inner, Paren):
            inner = inner.inner
        if isinstance(inner, BinOp) and inner.op in ("|", "||"):
            return inner
    return None


def _group_levels(node: Node, text: str) -> list[list[str]]:
    """``a/b/c`` -> [[a], [b], [c]]; ``a:b`` -> [[a, b]]."""
    if isinstance(node, Paren):
        return _group_levels(node.inner, text)
    if isinstance(node, BinOp) and node.op == "/":
        return [*_group_levels(node.left, text), *_group_levels(node.right, text)]
    names: list[str] = []

    def colon(n: Node) -> None:
        if isinstance(n, BinOp) and n.op == ":":
            colon(n.left)
            colon(n.right)
        elif isinstance(n, Name):
            names.append(n.name)
        else:
            raise FormulaError(
                f"The grouping factor {deparse(node)!r} in {text!r} must be a column name, an "
                "interaction a:b, or a nesting a/b."
            )

    colon(node)
    return [names]


def _expand_group(node: Node, text: str) -> list[tuple[tuple[str, ...], str]]:
    """Grouping part of a random term -> list of (factors, lme4 name)."""
    out: list[tuple[tuple[str, ...], str]] = []
    acc: list[str] = []
    for cols in _group_levels(node, text):
        acc = cols + acc  # lme4 names b within a as "b:a"
        out.append((tuple(acc), ":".join(acc)))
    return out


def _double_bar_parts(lhs: Node) -> list[Node]:
    """lme4's expandDoubleVerts: (x + z || g) -> (1 | g) + (0 + x | g) + (0 + z | g)."""
    from lmmcore.terms import expand

    terms = expand(lhs, "")
    out: list[Node] = [Num(1.0)] if terms.intercept else []
    for term in terms.terms:
        node: Node = terms.variables[term[0]].node
        for i in term[1:]:
            node = BinOp(":", node, terms.variables[i].node)
        out.append(BinOp("+", Num(0.0), node))
    return out


def _check_group_name(g: object) -> str:
    if not isinstance(g, str) or not g:
        raise FormulaError(f"groups must be a column name or a list of column names, got {g!r}.")
    _check_name(g, g, 0)
    return g


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
    p = _Parser(formula)
    if not any(t.text == "~" for t in p.tokens):
        raise FormulaError(
            f"The formula {formula!r} needs exactly one '~' with the response on its left, "
            "e.g. 'rt ~ cond + (1 | subj)'."
        )
    tree = p.expr(0, 0, None)
    if p.peek().kind != "end":
        t = p.peek()
        if t.text == ")":
            raise FormulaError(f"Unbalanced parentheses in formula {formula!r}: extra ')'.")
        raise p.fail(f"Unexpected {t.text!r} at position {t.pos}")
    if not (isinstance(tree, BinOp) and tree.op == "~"):
        raise FormulaError(
            f"The formula {formula!r} needs exactly one '~' with the response on its left, "
            "e.g. 'rt ~ cond + (1 | subj)'."
        )
    lhs, rhs = tree.left, tree.right
    for n in [*walk(lhs), *walk(rhs)]:
        if isinstance(n, BinOp) and n.op == "~":
            raise FormulaError(f"The formula {formula!r} has more than one '~'.")
    for n in walk(lhs):
        if isinstance(n, BinOp) and n.op not in ("+", "-", "*", "/", "^"):
            raise FormulaError(
                f"The response {deparse(lhs)!r} of {formula!r} must be a column or a transform "
                "of one, such as log(rt)."
            )
    _check_arithmetic(lhs, formula)

    fixed: list[tuple[str, Node]] = []
    random: list[RandomTerm] = []
    for sign, node in _top_terms(rhs):
        bar = _bar(node)
        if bar is None:
            fixed.append((sign, node))
            continue
        if sign == "-":
            raise FormulaError(f"A random term cannot be subtracted in {formula!r}.")
        double = bar.op == "||"
        for n in walk(bar.left):
            if isinstance(n, BinOp) and n.op in ("|", "||"):
                raise FormulaError(f"A random term in {formula!r} has more than one '|'.")
        parts = _double_bar_parts(bar.left) if double else [bar.left]
        for factors, gname in _expand_group(bar.right, formula):
            for lhs_node in parts:
                random.append(RandomTerm(lhs_node, factors, gname, not double))
    for _, node in fixed:
        for n in walk(node):
            if isinstance(n, BinOp) and n.op in ("|", "||"):
                raise FormulaError(
                    f"The random term {deparse(n)!r} in {formula!r} must stand in parentheses "
                    "and be added at the top level, e.g. 'y ~ x + (1 + x | g)'."
                )
    fixed_node: Node | None = None
    for sign, node in fixed:
        if fixed_node is None:
            fixed_node = node if sign == "+" else Unary("-", node)
        else:
            fixed_node = BinOp(sign, fixed_node, node)

    used: dict[str, None] = {}
    contrast_args = set()
    for root in [lhs, rhs]:
        for n in walk(root):
            if isinstance(n, Call) and n.func == "C" and len(n.args) == 2:
                contrast_args.add(id(n.args[1]))
    for root in [lhs, rhs]:
        for n in walk(root):
            if isinstance(n, Name) and id(n) not in contrast_args:
                used.setdefault(n.name, None)
    if isinstance(groups, str):
        groups = [groups]
    if groups is not None and not isinstance(groups, Sequence):
        raise FormulaError(
            f"groups must be a column name or a list of column names, got {groups!r}."
        )
    for g in groups or ():
        g = _check_group_name(g)
        random.append(RandomTerm(Num(1.0), (g,), g, True))
        used.setdefault(g, None)
    text = formula
    if groups:
        text = formula + "".join(f" + (1 | {r_name(g)})" for g in groups)
    parsed = ParsedFormula(text, lhs, fixed_node, tuple(random), frozenset(used))
    # expand now, so that a formula too large to expand is refused when it is typed
    from lmmcore.terms import expand

    expand(fixed_node, formula)
    if columns is not None:
        check_columns(used, columns, formula)
    return parsed


def check_columns(used: Iterable[str], columns: Iterable[str], formula: str) -> None:
    """Raise FormulaError naming any column the formula uses that the data lacks."""
    available = [str(c) for c in columns]
    missing = [m for m in dict.fromkeys(used) if m not in set(available)]
    if missing:
        folded = {unicodedata.normalize("NFKC", c): c for c in available}
        hints = []
        for m in missing:
            close = difflib.get_close_matches(m, available, n=1)
            same = folded.get(unicodedata.normalize("NFKC", m))
            if same is not None:
                hints.append(f"{m!r} (the data has {same!r}, which differs in Unicode form)")
            elif close:
                hints.append(f"{m!r} (did you mean {close[0]!r}?)")
            else:
                hints.append(repr(m))
        shown = ", ".join(available[:50]) + (" ..." if len(available) > 50 else "")
        raise FormulaError(
            f"The formula {formula!r} uses column(s) {', '.join(hints)} that the data does not "
            f"have. Available columns: {shown}."
        )
