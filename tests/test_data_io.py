"""Reading uploaded CSV files, and repairing columns that mix numbers and text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore import DataError, coerce_numeric, numeric_text, read_csv

SLEEP = lmmcore.load_dataset("sleepstudy")


@pytest.mark.parametrize("sep, note", [(",", None), (";", "';'"), ("\t", "a tab"), ("|", "'|'")])
def test_delimiters_are_detected_and_named(sep, note):
    raw = SLEEP.to_csv(index=False, sep=sep).encode()
    data, notes = read_csv(raw)
    pd.testing.assert_frame_equal(data, SLEEP.astype({"Subject": data["Subject"].dtype}))
    assert (note is None and notes == []) or any(note in n for n in notes)


def test_latin1_is_read_with_a_note_saying_save_as_utf8():
    raw = "Name,rt\nJosé,1.5\nZoë,2.5\n".encode("latin-1")
    data, notes = read_csv(raw)
    assert data["Name"].tolist() == ["José", "Zoë"]
    assert "save the file as UTF-8" in notes[0]


def test_decimal_commas_in_a_semicolon_file():
    data, notes = read_csv(b"rt;subj\n1,5;a\n-2,25;b\n")
    assert data["rt"].tolist() == [1.5, -2.25]
    assert "decimal commas in: rt" in notes[-1]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "empty"),
        (b"x,y\n", "no data rows"),
        (b"x,x\n1,2\n", "more than one column named 'x'"),
        (b"a,b\x00c\n1,2\n", "NUL bytes"),
        (b"a,b\n1,2\n3,4,5,6\n", "as many values as the header"),
        (("," * 600 + "\n").encode(), "more than the limit of 500"),
    ],
)
def test_bad_files_get_a_clear_message(raw, message):
    with pytest.raises(DataError, match=message):
        read_csv(raw)


def test_size_is_checked_before_parsing():
    with pytest.raises(DataError, match="more than the limit of 1 MB"):
        read_csv(b"x\n" + b"1\n" * 600_000, max_bytes=1_000_000)


def test_numeric_text_finds_the_stray_text_and_coerce_turns_it_missing():
    df = SLEEP.astype({"Days": object})
    df.loc[[3, 50], "Days"] = ["-", "three"]
    assert numeric_text(df) == {"Days": ["-", "three"]}
    with pytest.raises(DataError, match=r"Column 'Days' holds numbers and text: 2 of 180"):
        lmmcore.fit("Reaction ~ Days + (1 | Subject)", df)
    fixed = coerce_numeric(df, "Days")
    assert fixed["Days"].isna().sum() == 2 and fixed["Days"].dtype == float
    with pytest.warns(lmmcore.DataWarning, match="Dropped 2 of 180 rows"):
        res = lmmcore.fit("Reaction ~ Days + (1 | Subject)", fixed)
    assert res.nobs == 178
    np.testing.assert_allclose(
        res.fe_params,
        lmmcore.fit("Reaction ~ Days + (1 | Subject)", SLEEP.drop(index=[3, 50])).fe_params,
    )
