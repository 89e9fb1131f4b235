from __future__ import annotations

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.config import ModelType, Params
from {{ cookiecutter.package_name }}.data import make_sample
from {{ cookiecutter.package_name }}.features import (
    build_preprocessor,
    categorical_indices,
    features_and_target,
    split_table,
)
from {{ cookiecutter.package_name }}.schema import Contract
from {{ cookiecutter.package_name }}.train import build_model


def test_split_by_id_is_seeded_and_balanced(binary_contract: Contract) -> None:
    table = make_sample(binary_contract, 4000, seed=1)
    train, test = split_table(table, binary_contract, test_size=0.25, seed=3)
    again, _ = split_table(table, binary_contract, test_size=0.25, seed=3)
    other, _ = split_table(table, binary_contract, test_size=0.25, seed=4)
    pd.testing.assert_frame_equal(train, again)
    assert not train["applicant_id"].equals(other["applicant_id"])
    assert set(train["applicant_id"]).isdisjoint(test["applicant_id"])
    assert len(train) + len(test) == 4000
    assert abs(len(test) / 4000 - 0.25) < 0.03
    assert abs(train["default"].mean() - test["default"].mean()) < 0.03


def test_a_row_keeps_its_side_as_the_table_grows(binary_contract: Contract) -> None:
    table = make_sample(binary_contract, 2000, seed=1)
    grown = pd.concat([table, make_sample(binary_contract, 500, seed=2, first_id=2001)])
    train, test = split_table(table, binary_contract, test_size=0.2, seed=3)
    grown_train, grown_test = split_table(grown, binary_contract, test_size=0.2, seed=3)
    assert set(train["applicant_id"]) <= set(grown_train["applicant_id"])
    assert set(test["applicant_id"]) <= set(grown_test["applicant_id"])


def test_without_an_id_the_split_is_random_and_stratified(binary_contract: Contract) -> None:
    contract = binary_contract.model_copy(update={"id": None})
    table = make_sample(contract, 1000, seed=1)
    train, test = split_table(table, contract, test_size=0.25, seed=3)
    assert len(test) == 250
    assert abs(train["default"].mean() - test["default"].mean()) < 0.01


def test_the_linear_preprocessor_imputes_scales_and_one_hot_encodes(contract: Contract) -> None:
    table = make_sample(contract, 400, seed=2)
    features, _ = features_and_target(table, contract)
    transformed = build_preprocessor(contract).fit_transform(features)
    categories = len(contract.column("employment_type").categories or ())
    numeric = sum(c.type.value in ("numeric", "integer") for c in contract.features)
    assert transformed.shape == (400, numeric + categories + 1)
    assert not np.isnan(transformed).any()
    assert abs(transformed[:, :numeric].mean(axis=0)).max() < 1e-9


def test_unknown_category_and_missing_values_are_accepted(contract: Contract) -> None:
    table = make_sample(contract, 200, seed=3)
    preprocessor = build_preprocessor(contract).fit(contract.encode(table))
    odd = table.head(1).assign(employment_type="astronaut", annual_income=np.nan)
    row = preprocessor.transform(contract.encode(odd))
    assert not np.isnan(row).any()


def test_boosting_reads_the_encoded_matrix_as_is(contract: Contract, params: Params) -> None:
    boosting = params.model.model_copy(update={"type": ModelType.HIST_GRADIENT_BOOSTING})
    model = build_model(contract, boosting)
    assert list(model.categorical_features) == categorical_indices(contract)
    assert categorical_indices(contract) == [contract.feature_names.index("employment_type")]
    table = make_sample(contract, 300, seed=5)
    features, target = features_and_target(table, contract)
    assert np.isnan(features).any()  # no imputer in front: the trees route missing values
    model.fit(features, target)
    assert model.is_categorical_.tolist() == [
        c.type.value == "categorical" for c in contract.features
    ]
