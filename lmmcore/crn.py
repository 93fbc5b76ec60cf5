"""Common random numbers across the design points of a power curve.

Replicate ``i`` of every point reads its random effects and residuals from one draw of the
*largest* design (without its missing rows): the ``i``-th stream draws that design's z_u
(all its levels) and e (all its rows), and a smaller design takes the draws of the units
it has in common with it. Then the points of a curve differ by their design, not by the
luck of their draws, and the curve is smooth; each point on its own is still an exact
simulation of its own design (its rows, covariates and missing rows are those
``power(spec, design, seed=...)`` analyses).

Which units a smaller design shares: its subjects are the first n_g of each group of the
between-subject factors (the groups are consecutive blocks of subjects; for nested designs
the same rule at every level, within each parent), its items the first m_g of each item
group, its trials the first trials of each cell. Design.conditions numbers subjects in
groups, so subject 3 of a 20-subject design need not be subject 3 of a 100-subject one;
`subject_map` and `item_map` give the correspondence.

Example:
    >>> from lmmcore import Design, Factor
    >>> d = Design(8, 4, [Factor("g", ["a", "b"], varies="between_subject")])
    >>> subject_map(d.with_size(subjects=4), d).tolist()  # 2 of group a, 2 of group b
    [0, 1, 4, 5]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from lmmcore.design import Design
from lmmcore.errors import PowerError
from lmmcore.spec import ModelSpec
from lmmcore.structure import ModelStructure

__all__ = ["SharedDraws", "item_map", "shared_draws", "subject_map"]


@dataclass(frozen=True, eq=False)
class SharedDraws:
    """Where one design point finds its draws in a larger design's (see the module doc).

    ``q`` and ``n``: normals per replicate for the larger design's random effects and
    residuals; ``index[b]``: per block of the point's structure, the positions of its
    levels' effects in those q normals, shape (levels, terms); ``rows``: per row of the
    point, its row in the larger design.
    """

    q: int
    n: int
    index: tuple[np.ndarray, ...]
    rows: np.ndarray


def _sizes(design: Design) -> dict:
    sizes: dict = {"items": design.items, "trials": design.trials}
    if design.nested is None:
        sizes["subjects"] = design.subjects
    else:
        sizes["nested"] = dict(design.nested)
    return {k: v for k, v in sizes.items() if v is not None}


def _check_nested_in(small: Design, big: Design) -> None:
    counts = [c for _, c in small.hierarchy] + [small.items or 0, small.trials]
    big_counts = [c for _, c in big.hierarchy] + [big.items or 0, big.trials]
    same = len(counts) == len(big_counts) and big.with_size(**_sizes(small)) == small
    if not same or any(c > b for c, b in zip(counts, big_counts, strict=True)):
        raise PowerError(
            "draws_from must be the same design with at least as many subjects (units at "
            f"every nesting level), items and trials; got {big.summary()!r} for "
            f"{small.summary()!r}."
        )


def subject_map(small: Design, big: Design) -> np.ndarray:
    """For each subject of ``small``, the subject of ``big`` whose draws it shares.

    At each level of the hierarchy the units of a parent are split into consecutive
    blocks, one per cell of the between factors assigned there; unit j of block g in
    ``small`` is unit j of block g in ``big``.
    """
    out = np.zeros(int(small.subjects or 0), dtype=np.int64)
    s = np.arange(out.size)
    below_s = below_b = 1
    for (level, cs), (_, cb) in zip(
        reversed(small.hierarchy), reversed(big.hierarchy), strict=True
    ):
        within = (s // below_s) % cs
        cells = small._cells(small._subject_factors_at(level))
        bs, bb = cs // cells, cb // cells
        out += ((within // bs) * bb + within % bs) * below_b
        below_s *= cs
        below_b *= cb
    return out


def item_map(small: Design, big: Design) -> np.ndarray:
    """For each item of ``small``, the item of ``big`` whose draws it shares (item j of
    item group g is item j of group g; groups are the cells of the factors that vary
    between items)."""
    groups = small._cells(small._factors("between", "within_subject"))
    bs, bb = int(small.items or 0) // groups, int(big.items or 0) // groups
    i = np.arange(int(small.items or 0))
    return (i // bs) * bb + i % bs


def _keys(
    units: dict[str, np.ndarray], subjects: np.ndarray, items: np.ndarray | None, big: Design
) -> np.ndarray:
    """One integer per row naming the observation in ``big``: (subject, item, slot).

    The slot is the row's place among the rows of its subject-item pair: cell and
    repetition, or the repetition alone when counterbalanced (a pair is then in one cell,
    which for nested designs can differ between sizes: the Latin square counts subjects
    across parents).
    """
    trials = big.trials
    if big.counterbalance:
        slots, slot = trials, units["rep"]
    else:
        slots = big._cells(big._factors("within")) * trials
        slot = units["cell"] * trials + units["rep"]
    key = subjects[units["subject"]]
    if items is not None:
        key = key * int(big.items or 0) + items[units["item"]]
    return key * slots + slot


def shared_draws(
    spec: ModelSpec,
    design: Design,
    units: dict[str, np.ndarray],
    structure: ModelStructure,
    big: Design,
    seed: np.random.SeedSequence,
) -> SharedDraws:
    """How ``structure`` (built on ``design``'s conditions, whose rows are ``units``) reads
    the draws of ``big`` without its missing rows (its conditions from ``seed``).

    Raises:
        PowerError: ``big`` is not ``design`` with sizes at least as large, or a
            random-effect level of ``design`` does not correspond to one level of ``big``
            (a grouping factor that is not made of design units).
    """
    _check_nested_in(design, big)
    full = dataclasses.replace(big, missing=0.0)
    frame, big_units = full.conditions_units(np.random.default_rng(seed))
    big_s = spec.structure(frame)
    ident_s = np.arange(int(full.subjects or 0))
    ident_i = None if full.items is None else np.arange(full.items)
    big_keys = _keys(big_units, ident_s, ident_i, full)
    imap = None if design.items is None else item_map(design, full)
    keys = _keys(units, subject_map(design, full), imap, full)
    order = np.argsort(big_keys, kind="stable")
    pos = np.minimum(np.searchsorted(big_keys, keys, sorter=order), order.size - 1)
    rows = order[pos]
    if not np.array_equal(big_keys[rows], keys):  # pragma: no cover - a design invariant
        raise PowerError("Internal error: a row of the design has no row in draws_from.")
    by_name = {b.name: (b, off) for b, off in zip(big_s.blocks, _offsets(big_s), strict=True)}
    index = []
    for b in structure.blocks:
        B, off = by_name[b.name]
        big_codes = B.codes[rows]
        level = np.full(b.nlevels, -1, dtype=np.int64)
        level[b.codes] = big_codes
        if not np.array_equal(level[b.codes], big_codes) or np.unique(level).size != b.nlevels:
            raise PowerError(
                f"Common random numbers need each level of {b.group!r} to be one set of "
                "design units (subjects, items, cells); this grouping factor is not, so "
                "the draws cannot be shared. Use common_draws=False."
            )
        index.append(off + level[:, None] * b.k + np.arange(b.k)[None, :])
    return SharedDraws(big_s.q, big_s.n, tuple(index), rows)


def _offsets(s: ModelStructure) -> list[int]:
    return list(np.cumsum([0, *(b.q for b in s.blocks)])[:-1])
