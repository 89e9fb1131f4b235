"""The drift reference: training rows into bins that the service reproduces exactly."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.drift_bins import MISSING, UNKNOWN, assign, profile
from {{ cookiecutter.package_name }}.schema import ColumnType, Contract


def test_every_feature_and_the_score_get_bins_whose_shares_add_up(contract: Contract) -> None:
    table = make_sample(contract, 500, seed=3)
    matrix = contract.encode(cast(Any, table))
    scores = np.linspace(0, 1, len(matrix))
    reference = profile(matrix, contract, scores)
    assert reference["rows"] == 500
    for column in contract.features:
        bins = reference["features"][column.name]
        assert len(bins["shares"]) == len(bins["bins"])
        assert abs(sum(bins["shares"]) - 1) < 1e-9
        assert MISSING in bins["bins"]
        if column.type is ColumnType.CATEGORICAL:
            assert bins["bins"] == [*(column.categories or ()), MISSING, UNKNOWN]
            assert bins["shares"][-1] == 0  # the training data has no unknown category
        elif column.type is ColumnType.BOOLEAN:
            assert bins["bins"] == ["false", "true", MISSING]
        else:
            assert len(bins["edges"]) == 9
    # Deciles of the score: a tenth of the rows in each bin.
    assert np.allclose(reference["score"]["shares"], 0.1, atol=0.005)


def test_a_value_on_an_edge_falls_in_the_lower_bin() -> None:
    edges = np.array([1.0, 2.0])
    assert assign(edges, np.array([0.5, 1.0, 1.5, 2.0, 9.0])).tolist() == [0, 0, 1, 1, 2]


def test_a_column_never_seen_in_training_keeps_its_bins(contract: Contract) -> None:
    matrix = contract.encode(cast(Any, make_sample(contract, 50, seed=1)))
    index = next(i for i, c in enumerate(contract.features) if c.type is ColumnType.NUMERIC)
    matrix[:, index] = np.nan
    bins = profile(matrix, contract, np.zeros(len(matrix)))["features"]
    column = bins[contract.features[index].name]
    assert column["edges"] == []
    assert column["shares"][-1] == 1.0  # all missing
