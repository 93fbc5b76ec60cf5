"""Reading users' data files safely, and repairing columns that mix numbers and text.

`read_csv` takes the bytes of an uploaded file and returns a DataFrame with notes on how it
was read: the delimiter is detected (comma, semicolon, tab or bar), UTF-8 is expected and
Windows-1252/Latin-1 files are read with a note, decimal commas are recognised, and every
size is checked before pandas parses anything. `numeric_text` finds columns that mix
numbers and text (a ``-`` typed into a column of numbers), and `coerce_numeric` turns such
values into missing values when the user says so.

Example:
    >>> data, notes = read_csv(b"rt;subj\\n1,5;a\\n2,25;b\\n")
    >>> data["rt"].tolist()
    [1.5, 2.25]
    >>> print(*notes, sep=" / ")
    Read with ';' between values. / Read decimal commas in: rt.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lmmcore.errors import DataError
from lmmcore.limits import MAX_CELLS

__all__ = ["MAX_COLUMNS", "MAX_FILE_BYTES", "coerce_numeric", "numeric_text", "read_csv"]

#: Largest file `read_csv` reads (the app's upload limit is the same).
MAX_FILE_BYTES = 20_000_000
#: Columns in one data file.
MAX_COLUMNS = 500
_DELIMITERS = ",;\t|"
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d+,\d+\s*")
_NAMES = {",": "','", ";": "';'", "\t": "a tab", "|": "'|'"}


def _decode(raw: bytes) -> tuple[str, list[str]]:
    if b"\x00" in raw[:65536]:
        raise DataError(
            "This file holds NUL bytes, so it is not a text (CSV) file; for a spreadsheet, "
            "save it as 'CSV UTF-8' first."
        )
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    for enc, label in (("cp1252", "Windows-1252"), ("latin-1", "Latin-1")):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        return text, [
            f"The file is not UTF-8; it was read as {label}. If accented letters look wrong, "
            "save the file as UTF-8 ('CSV UTF-8' in a spreadsheet) and upload it again."
        ]
    raise DataError("The file could not be read as text; save it as UTF-8 and try again.")


def _delimiter(text: str) -> str:
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in _DELIMITERS}
        best = max(counts, key=counts.__getitem__)
        return best if counts[best] else ","


def read_csv(raw: bytes, max_bytes: int = MAX_FILE_BYTES) -> tuple[pd.DataFrame, list[str]]:
    """Parse CSV bytes into a DataFrame, checking sizes first; also returns notes.

    Raises:
        DataError: too large, not text, no header or rows, repeated column names, ragged.
    """
    if len(raw) > max_bytes:
        raise DataError(
            f"The file is {len(raw) / 1e6:.1f} MB, more than the limit of {max_bytes / 1e6:.0f} "
            "MB. Keep only the columns the model needs, or use lmmcore in Python."
        )
    text, notes = _decode(raw)
    if not text.strip():
        raise DataError("The file is empty.")
    sep = _delimiter(text)
    if sep != ",":
        notes.append(f"Read with {_NAMES[sep]} between values.")
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=sep), [])
    if len(header) > MAX_COLUMNS:
        raise DataError(
            f"The file has {len(header):,} columns, more than the limit of {MAX_COLUMNS}; keep "
            "only the columns the model needs."
        )
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(
            f"The file has more than one column named {', '.join(map(repr, dupes))}; give each "
            "column its own name in the header row."
        )
    rows = text.count("\n") + 1
    if rows * max(1, len(names)) > MAX_CELLS:
        raise DataError(
            f"The file has about {rows:,} rows x {len(names)} columns, more than the limit of "
            f"{MAX_CELLS:,} values."
        )
    try:
        data = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataError(
            f"The file could not be read as a table with {_NAMES[sep]} between values: "
            f"{str(exc).strip()}. Check that every row has as many values as the header."
        ) from None
    data.columns = [str(c).strip() for c in data.columns]
    if data.empty:
        raise DataError("The file has a header row but no data rows.")
    if sep != ",":
        fixed = []
        for c in data.columns:
            s = data[c]
            vals = s.dropna()
            if (
                not pd.api.types.is_numeric_dtype(s.dtype)
                and len(vals)
                and vals.map(
                    lambda v: isinstance(v, str) and _DECIMAL_COMMA.fullmatch(v) is not None
                ).all()
            ):
                data[c] = pd.to_numeric(s.str.replace(",", ".", regex=False))
                fixed.append(c)
        if fixed:
            notes.append(f"Read decimal commas in: {', '.join(fixed)}.")
    return data, notes


def numeric_text(data: pd.DataFrame) -> dict[str, list[str]]:
    """Columns that hold mostly numbers and some text, with their text values.

    Example:
        >>> numeric_text(pd.DataFrame({"days": ["1", "2", "-"], "f": ["a", "b", "c"]}))
        {'days': ['-']}
    """
    out = {}
    for c in data.columns:
        s = data[c]
        if pd.api.types.is_numeric_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
            continue
        vals = s.dropna()
        if vals.empty:
            continue
        num = pd.to_numeric(vals.astype(str), errors="coerce")
        ok = num.notna().to_numpy()
        if ok.mean() >= 0.5 and not ok.all():
            out[str(c)] = list(dict.fromkeys(vals[~ok].astype(str)))
    return out


def coerce_numeric(data: pd.DataFrame, columns: str | Sequence[str]) -> pd.DataFrame:
    """A copy of ``data`` with ``columns`` as numbers; values that are not numbers become
    missing (NaN), so a fit drops those rows (and says how many).

    Example:
        >>> coerce_numeric(pd.DataFrame({"days": ["1", "2", "-"]}), "days")["days"].tolist()
        [1.0, 2.0, nan]
    """
    cols = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise DataError(f"The data has no column(s) {', '.join(map(repr, missing))}.")
    out = data.copy()
    for c in cols:
        out[c] = pd.to_numeric(
            out[c]
            .astype(object)
            .where(out[c].notna(), np.nan)
            .map(lambda v: v if not isinstance(v, str) else v.strip()),
            errors="coerce",
        ).astype(float)
    return out
