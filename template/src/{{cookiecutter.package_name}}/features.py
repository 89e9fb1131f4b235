"""The split stage and the feature transformer.

Every model's input is the contract's encoded float matrix (`Contract.encode`): categories
are their index in the contract, missing values and unknown categories NaN. Tree models read
it as is; linear models put the transformer below in front. Serving feeds the same matrix and
never needs pandas.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from .data import read_table, write_table
from .schema import ColumnType, Contract

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

TRAIN_FILE = "train.parquet"
TEST_FILE = "test.parquet"


def split_table(
    table: pd.DataFrame, contract: Contract, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded train/test split.

    With an id column, each row's side is a function of its id alone, so it never changes as
    the table grows: the gate scores the champion on the new test split, and a row the champion
    trained on must not land there (it would flatter the champion and block every retrain).
    Without one, a random split stratified on the target for classification.
    The contract's `other` columns (personal data among them) are left out: training and its
    checks never read them.
    """
    table = table.drop(columns=[c.name for c in contract.other], errors="ignore")
    if contract.id is not None:
        ids = table[contract.id].astype(str)
        key = hashlib.sha256(str(seed).encode()).hexdigest()[:16]
        hashes = pd.util.hash_pandas_object(ids, index=False, hash_key=key).to_numpy()
        in_test = hashes / 2.0**64 < test_size
        return table[~in_test].reset_index(drop=True), table[in_test].reset_index(drop=True)
    # Imported here: scikit-learn takes a second to import, and a split by id never needs it.
    from sklearn.model_selection import train_test_split

    stratify = table[contract.target.name] if contract.target.is_classification else None
    train, test = train_test_split(
        table, test_size=test_size, random_state=seed, shuffle=True, stratify=stratify
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def write_split(train: pd.DataFrame, test: pd.DataFrame, directory: Path) -> None:
    write_table(train, directory / TRAIN_FILE)
    write_table(test, directory / TEST_FILE)


def read_split(directory: Path, name: str) -> pd.DataFrame:
    return read_table(directory / name)


def features_and_target(table: pd.DataFrame, contract: Contract) -> tuple[np.ndarray, np.ndarray]:
    """The model's input matrix and the target, as the pipeline and serving see them."""
    # A DataFrame is the column mapping `encode` reads, though not typed as a Mapping.
    features = contract.encode(cast(Mapping[str, Any], table))
    return features, table[contract.target.name].to_numpy()


def categorical_indices(contract: Contract) -> list[int]:
    """Positions of the categorical columns in the encoded matrix."""
    return [i for i, c in enumerate(contract.features) if c.type is ColumnType.CATEGORICAL]


def build_preprocessor(contract: Contract) -> ColumnTransformer:
    """For linear models: impute and scale numbers, impute and one-hot encode category codes."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric, categorical, boolean = [], [], []
    category_codes = []
    for index, column in enumerate(contract.features):
        if column.type in (ColumnType.NUMERIC, ColumnType.INTEGER):
            numeric.append(index)
        elif column.type is ColumnType.CATEGORICAL:
            assert column.categories is not None
            categorical.append(index)
            category_codes.append([float(code) for code in range(len(column.categories))])
        else:
            boolean.append(index)
    transformers = []
    if numeric:
        numeric_steps = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        transformers.append(("numeric", numeric_steps, numeric))
    if categorical:
        categorical_steps = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                (
                    "one_hot",
                    OneHotEncoder(
                        categories=category_codes, handle_unknown="ignore", sparse_output=False
                    ),
                ),
            ]
        )
        transformers.append(("categorical", categorical_steps, categorical))
    if boolean:
        transformers.append(("boolean", SimpleImputer(strategy="most_frequent"), boolean))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
