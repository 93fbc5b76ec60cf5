"""Formula algebra: a formula's syntax tree -> its model terms, as R's ``terms.formula``.

``a * b`` is ``a + b + a:b``, ``(a + b + c)^2`` every interaction of up to two of them,
``a / b`` is ``a + a:b``, ``- x`` removes a term, ``0``/``-1`` the intercept. Terms are
ordered by degree (main effects first), in order of appearance within a degree, and the
variables of an interaction in the order in which they first appear in the formula, so
labels and coefficient names are R's. The number of terms is checked *while* expanding,
so that ``(a + b + ... + l)^12`` is refused before thousands of terms are built.

Example:
    >>> from lmmcore.formula import parse_formula
    >>> t = expand(parse_formula("y ~ b + a * c + (1 | g)").fixed_node, "")
    >>> t.labels, t.intercept
    (['b', 'a', 'c', 'a:c'], True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lmmcore.errors import FormulaError
from lmmcore.formula import BinOp, Call, Name, Node, Num, Paren, Unary, _literal, deparse
from lmmcore.limits import MAX_TERMS

__all__ = ["Terms", "Variable", "expand"]


@dataclass(frozen=True)
class Variable:
    """One variable of a formula: a column or a transform of one, keyed by its R label."""

    key: str
    node: Node


@dataclass(frozen=True)
class Terms:
    """The expanded terms of one model formula (a fixed part or a random term's left side).

    ``terms`` are tuples of indices into ``variables``; ``()`` never appears (the
    intercept is the flag).
    """

    intercept: bool
    variables: tuple[Variable, ...]
    terms: tuple[tuple[int, ...], ...]

    @property
    def labels(self) -> list[str]:
        return [":".join(self.variables[i].key for i in t) for t in self.terms]


@dataclass
class _Set:
    terms: list[frozenset[str]]
    intercept: bool | None = None  # None: this part says nothing about the intercept


class _Expander:
    def __init__(self, text: str):
        self.text = text
        self.variables: dict[str, Variable] = {}

    def fail(self, msg: str) -> FormulaError:
        where = f" in {self.text!r}" if self.text else ""
        return FormulaError(msg + where + ".")

    def check(self, n: int, what: str) -> None:
        if n > MAX_TERMS:
            raise self.fail(
                f"{what} expands to {n:,} terms, more than the limit of {MAX_TERMS}; write "
                "the interactions you need explicitly"
            )

    def no_number(self, s: _Set, node: Node, op: str) -> None:
        if s.intercept is not None:
            raise self.fail(
                f"The number in {deparse(node)!r} cannot take part in {op!r}; only 0 and 1 "
                "(the intercept) may stand alone, and constants go in I(...)"
            )

    def expand(self, node: Node) -> _Set:
        if isinstance(node, Num):
            if node.value in (0.0, 1.0):
                return _Set([], node.value == 1.0)
            raise self.fail(
                f"The number {deparse(node)} cannot stand alone in a formula; only 0 and 1 "
                f"(the intercept) can. For a constant column write I({deparse(node)})"
            )
        if isinstance(node, Name | Call):
            key = deparse(node)
            self.variables.setdefault(key, Variable(key, node))
            return _Set([frozenset([key])])
        if isinstance(node, Paren):
            return self.expand(node.inner)
        if isinstance(node, Unary):
            inner = self.expand(node.operand)
            if node.op == "+":
                return inner
            return self.minus(_Set([]), inner)
        assert isinstance(node, BinOp)
        op = node.op
        if op in ("|", "||", "~"):
            raise self.fail(f"{op!r} cannot be used here ({deparse(node)!r})")
        left = self.expand(node.left)
        if op == "^":
            return self.power(left, node)
        right = self.expand(node.right)
        if op == "+":
            self.check(len(left.terms) + len(right.terms), f"{deparse(node)!r}")
            terms = left.terms + [t for t in right.terms if t not in left.terms]
            icpt = right.intercept if right.intercept is not None else left.intercept
            return _Set(terms, icpt)
        if op == "-":
            return self.minus(left, right)
        self.no_number(left, node.left, op)
        self.no_number(right, node.right, op)
        if op == ":":
            self.check(len(left.terms) * len(right.terms), f"{deparse(node)!r}")
            return _Set(self.product(left.terms, right.terms))
        if op == "*":
            a, b = len(left.terms), len(right.terms)
            self.check(a + b + a * b, f"{deparse(node)!r}")
            both = left.terms + [t for t in right.terms if t not in left.terms]
            return _Set(self.union(both, self.product(left.terms, right.terms)))
        if op == "/":
            self.check(len(left.terms) + len(right.terms), f"{deparse(node)!r}")
            outer = frozenset().union(*left.terms) if left.terms else frozenset()
            nested = [outer | t for t in right.terms]
            return _Set(self.union(left.terms, nested))
        raise self.fail(f"Unexpected operator {op!r}")

    def minus(self, left: _Set, right: _Set) -> _Set:
        terms = [t for t in left.terms if t not in right.terms]
        icpt = left.intercept
        if right.intercept is True:
            icpt = False
        elif right.intercept is False:
            icpt = True
        return _Set(terms, icpt)

    def power(self, base: _Set, node: BinOp) -> _Set:
        self.no_number(base, node.left, "^")
        k = _literal(node.right)
        if k is None or k != int(k) or k < 1:
            raise self.fail(
                f"The exponent in {deparse(node)!r} must be a positive whole number, as in "
                "(a + b + c)^2"
            )
        m = len(base.terms)
        k = int(min(k, max(m, 1)))
        total = sum(math.comb(m, i) for i in range(1, k + 1))
        self.check(total, f"{deparse(node)!r}")
        result = list(base.terms)
        for _ in range(k - 1):
            result = self.union(result, self.product(result, base.terms))
        return _Set(result)

    @staticmethod
    def product(a: list[frozenset[str]], b: list[frozenset[str]]) -> list[frozenset[str]]:
        out: list[frozenset[str]] = []
        for tb in b:
            for ta in a:
                t = ta | tb
                if t not in out:
                    out.append(t)
        return out

    @staticmethod
    def union(a: list[frozenset[str]], b: list[frozenset[str]]) -> list[frozenset[str]]:
        return a + [t for t in b if t not in a]


def expand(node: Node | None, text: str) -> Terms:
    """The terms of a model formula's right-hand side (``None``: intercept only).

    Raises FormulaError for numbers in interactions, exponents that are not small whole
    numbers, and expansions beyond `MAX_TERMS` terms.
    """
    ex = _Expander(text)
    s = _Set([]) if node is None else ex.expand(node)
    order = list(ex.variables)
    index = {k: i for i, k in enumerate(order)}
    ordered = sorted(s.terms, key=len)  # stable: appearance order within a degree
    terms = tuple(tuple(sorted(index[k] for k in t)) for t in ordered)
    return Terms(
        intercept=True if s.intercept is None else s.intercept,
        variables=tuple(ex.variables[k] for k in order),
        terms=terms,
    )
