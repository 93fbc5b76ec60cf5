"""Pilot data as a design: extend along its units (simr's extend, without its pitfalls)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore import DataError, extend

SLEEP = lmmcore.load_dataset("sleepstudy")


def test_copies_keep_each_units_rows_and_conditions():
    big = extend(SLEEP, "Subject", 40)
    assert big["Subject"].nunique() == 40 and len(big) == 400
    first = lmmcore.pilot.units(SLEEP, "Subject")[0]
    copy = big[big["Subject"] == f"{first}_1"]
    orig = SLEEP[SLEEP["Subject"] == first]
    np.testing.assert_array_equal(copy["Days"].to_numpy(), orig["Days"].to_numpy())


def test_row_order_does_not_matter():
    shuffled = SLEEP.sample(frac=1.0, random_state=3).reset_index(drop=True)
    a = extend(SLEEP, "Subject", 25).sort_values(["Subject", "Days"]).reset_index(drop=True)
    b = extend(shuffled, "Subject", 25).sort_values(["Subject", "Days"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_missing_rows_and_imbalance_are_kept():
    holes = SLEEP.drop(index=[0, 1, 2, 15]).reset_index(drop=True)  # subject 1 lost 3 days
    big = extend(holes, "Subject", 36)
    sizes = big.groupby("Subject", observed=True).size()
    assert sorted(sizes.unique().tolist()) == [7, 9, 10]
    assert len(big) == 2 * len(holes)


def test_fewer_units_keeps_the_first_ones():
    small = extend(SLEEP, "Subject", 5)
    assert small["Subject"].nunique() == 5
    assert set(small["Subject"]) == set(lmmcore.pilot.units(SLEEP, "Subject")[:5])


def test_power_on_extended_pilot_data_equals_the_direct_call():
    fit = lmmcore.fit("Reaction ~ Days + (Days | Subject)", SLEEP)
    spec = lmmcore.ModelSpec.from_fit(fit)
    res = lmmcore.power(spec, extend(SLEEP, "Subject", 24), nsim=20, test="wald", seed=1)
    again = lmmcore.power(spec, extend(SLEEP, "Subject", 24), nsim=20, test="wald", seed=1)
    np.testing.assert_array_equal(res.est, again.est)
    assert res.table.loc["Days", "n_valid"] == 20


@pytest.mark.parametrize(
    "along, n, message",
    [
        ("Nope", 5, "no column 'Nope'"),
        ("Subject", 0, "positive whole number"),
        ("Subject", 10**7, "more than the limit"),
    ],
)
def test_bad_requests(along, n, message):
    with pytest.raises(DataError, match=message):
        extend(SLEEP, along, n)


def test_power_curve_and_its_approximation_take_pilot_data():
    fit = lmmcore.fit("Reaction ~ Days + (Days | Subject)", SLEEP)
    spec = lmmcore.ModelSpec.from_fit(fit)
    curve = lmmcore.power_curve(
        spec, SLEEP, {"Subject": [12, 24]}, nsim=15, test="wald", seed=2, effects=["Days"]
    )
    for n in (12, 24):
        direct = lmmcore.power(
            spec, extend(SLEEP, "Subject", n), nsim=15, test="wald", seed=2, effects=["Days"]
        )
        row = curve[curve["Subject"] == n].iloc[0]
        assert row["power_rejections"] == direct.power("Days")
        assert row["power"] == direct.table.loc["Days", "power_cmc"]
        assert row["mean_estimate"] == direct.table.loc["Days", "mean_estimate"]
    approx = lmmcore.approx_power_curve(spec, SLEEP, {"Subject": [12, 24]}, effects="Days")
    assert approx["Subject"].tolist() == [12, 24]
    assert (approx["se"].diff().dropna() < 0).all()  # more subjects, smaller SE
    with pytest.raises(lmmcore.PowerError, match="not one of"):
        lmmcore.power_curve(spec, SLEEP, {"subjects": [10]}, nsim=2)
