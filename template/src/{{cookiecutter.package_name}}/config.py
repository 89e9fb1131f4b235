"""Pipeline parameters: `params.yaml` loaded into strict, typed models.

An unknown key, a wrong type or an out-of-range value fails at load time with the key named,
before any stage does work.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import {% if cookiecutter.include_monitoring %}AnyHttpUrl, {% endif %}BaseModel, ConfigDict, Field, model_validator

from .schema import TaskKind
from .yaml_model import load_yaml_model

DEFAULT_PARAMS = Path("params.yaml")

# Metric names each task kind produces (see evaluate.py); lower is better for LOWER_IS_BETTER.
METRICS_BY_KIND: dict[TaskKind, frozenset[str]] = {
    TaskKind.BINARY: frozenset({"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy"}),
    TaskKind.MULTICLASS: frozenset(
        {"f1_macro", "precision_macro", "recall_macro", "roc_auc_ovr", "accuracy", "log_loss"}
    ),
    TaskKind.REGRESSION: frozenset({"rmse", "mae", "r2"}),
}
LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss"})


def worse_by(metric: str, new: float, old: float) -> float:
    """How much worse `new` is than `old` (negative: better): the promotion gate's rule, which
    the CI's baseline check (compare.py) applies too."""
    return new - old if metric in LOWER_IS_BETTER else old - new


class ConfigError(ValueError):
    """params.yaml is missing or breaks a rule; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Strict):
    contract: Path = Path("schema.yaml")
    raw: Path
    processed_dir: Path


class SampleParams(_Strict):
    rows: int = Field(gt=0)
    seed: int


class ValidationParams(_Strict):
    min_rows: int = Field(ge=1)
    max_null_fraction: float = Field(ge=0, le=1)
    mean_bounds: dict[str, tuple[float, float]] = {}

    @model_validator(mode="after")
    def _bounds_are_ordered(self) -> Self:
        for column, (low, high) in self.mean_bounds.items():
            if low > high:
                raise ValueError(f"mean_bounds.{column}: low {low} is above high {high}")
        return self


class SplitParams(_Strict):
    test_size: float = Field(gt=0, lt=1)
    seed: int


class ModelType(StrEnum):
    HIST_GRADIENT_BOOSTING = "hist_gradient_boosting"
    LINEAR = "linear"


class HistGradientBoostingParams(_Strict):
    max_iter: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    max_leaf_nodes: int = Field(ge=2)
    l2_regularization: float = Field(ge=0)


class LinearParams(_Strict):
    regularization: float = Field(gt=0)
    max_iter: int = Field(gt=0)


class ModelParams(_Strict):
    type: ModelType
    seed: int
    hist_gradient_boosting: HistGradientBoostingParams
    linear: LinearParams


class EvaluateParams(_Strict):
    threshold: float = Field(gt=0, lt=1)


class FairnessParams(_Strict):
    min_group_size: int = Field(ge=1)
    max_gap: dict[str, float]


class GateParams(_Strict):
    primary_metric: str
    min: dict[str, float] = {}
    max: dict[str, float] = {}


class PromotionParams(_Strict):
    tolerance: float = Field(ge=0)
    binary: GateParams
    multiclass: GateParams
    regression: GateParams

    @model_validator(mode="after")
    def _metrics_exist(self) -> Self:
        for kind in TaskKind:
            gate: GateParams = getattr(self, kind.value)
            known = METRICS_BY_KIND[kind]
            for name in (gate.primary_metric, *gate.min, *gate.max):
                if name not in known:
                    raise ValueError(
                        f"{kind.value}: unknown metric {name!r} (one of {', '.join(sorted(known))})"
                    )
        return self

    def gate(self, kind: TaskKind) -> GateParams:
        gate: GateParams = getattr(self, kind.value)
        return gate


class RegistryParams(_Strict):
    model_name: str = Field(min_length=1)


class TrackingParams(_Strict):
    experiment_name: str = Field(min_length=1)


{%- if cookiecutter.include_serving %}


class UnknownCategories(StrEnum):
    REJECT = "reject"  # 422 naming the field and the allowed values
    IGNORE = "ignore"  # accepted and encoded as missing, like at training time


class LogDurability(StrEnum):
    """When a request's prediction log line is safe (serving/prediction_log.py)."""

    QUEUED = "queued"  # queued for a writer thread: a killed process loses the queue
    PROCESS = "process"  # written (no fsync) before the answer: survives a killed process
    MACHINE = "machine"  # fsynced (group commit) before the answer: survives a power cut


class LogFailure(StrEnum):
    """What the service does while it cannot write a prediction's line."""

    SERVE = "serve"  # answer anyway; the loss is counted (prediction_log_dropped_total)
    REFUSE = "refuse"  # 503: an answer off the record is worse than none


class ServingParams(_Strict):
    """The service's policy, reviewed with the code; each key is also an env var (upper case)."""

    unknown_categories: UnknownCategories = UnknownCategories.REJECT
    max_batch_rows: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Types beyond the built-in allow-list that this deployment reviewed and trusts.
    trusted_types: tuple[str, ...] = ()
    prediction_log_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # Rotated JSONL segments kept, the oldest deleted beyond; 0 keeps every one (monitoring's
    # `compact-log` turns them into Parquet and applies `monitoring.log.retention_days`).
    prediction_log_backups: int = Field(default={% if cookiecutter.include_monitoring %}0{% else %}10{% endif %}, ge=0)
    prediction_log_queue_size: int = Field(default=10_000, ge=1)
    # What each level costs, measured by `make bench`: docs/serving.md.
    prediction_log_durability: LogDurability = LogDurability.PROCESS
    prediction_log_on_failure: LogFailure = LogFailure.SERVE
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_needs_the_write_first(self) -> Self:
        if (
            self.prediction_log_on_failure is LogFailure.REFUSE
            and self.prediction_log_durability is LogDurability.QUEUED
        ):
            raise ValueError(
                "prediction_log_on_failure: refuse needs prediction_log_durability process "
                "or machine (at queued the answer leaves before its line is written)"
            )
        return self


class CanaryParams(_Strict):
    """`canary-verdict`: how much worse than stable the canary may be over the window, and
    the requests each side needs before anything is decided."""

    window: str = Field(default="10m", pattern=r"^[0-9]+[smhdw]$")  # a Prometheus duration
    min_requests: int = Field(default=500, ge=1)
    max_error_rate_increase: float = Field(default=0.01, ge=0, le=1)
    max_p99_ratio: float = Field(default=1.5, gt=0)
    max_psi: float = Field(default=0.2, gt=0)


class DeliveryParams(_Strict):
    """What CI/CD decides with against a deployed service. It does not change a model."""

    canary: CanaryParams = CanaryParams()
{%- endif %}
{%- if cookiecutter.include_monitoring %}


class NumericTest(StrEnum):
    PSI = "psi"
    KS = "ks"
    WASSERSTEIN = "wasserstein"


class CategoricalTest(StrEnum):
    PSI = "psi"
    CHI2 = "chi2"
    JENSEN_SHANNON = "jensen_shannon"


class DriftParams(_Strict):
    """`make monitor`: the window, the thresholds of each check and which one decides.

    PSI decides by default for both kinds of column: it measures how far the distribution
    moved, not how sure we are that it moved, so a million-row window does not flag a shift
    nobody would act on (KS and chi-square p-values shrink with the row count and do). KS,
    Wasserstein, chi-square and Jensen-Shannon are still computed and judged, for reading.
    """

    window_hours: float = Field(default=24, gt=0)
    min_rows: int = Field(default=100, ge=1)
    numeric_test: NumericTest = NumericTest.PSI
    categorical_test: CategoricalTest = CategoricalTest.PSI
    psi_bins: int = Field(default=10, ge=2)
    psi: float = Field(default=0.2, gt=0)
    ks_p_value: float = Field(default=0.05, gt=0, lt=1)
    wasserstein: float = Field(default=0.1, gt=0)
    chi2_p_value: float = Field(default=0.05, gt=0, lt=1)
    jensen_shannon: float = Field(default=0.1, gt=0, le=1)
    unseen_share: float = Field(default=0.01, ge=0, le=1)
    missing_rate_change: float = Field(default=0.1, gt=0, le=1)
    confidence_change: float = Field(default=0.05, gt=0, le=1)
    metric_drop: float = Field(default=0.05, gt=0)


class LogParams(_Strict):
    """The prediction log's compaction and retention (monitoring/log_store.py)."""

    directory: Path = Path("logs/predictions")  # where the service writes: PREDICTION_LOG_DIR
    retention_days: int = Field(default=90, ge=1)  # compacted rows older than this are deleted


class RetrainParams(_Strict):
    """`make retrain` and its webhook (monitoring/retrain.py)."""

    # New labelled rows (CSV or Parquet, the contract's columns) wait here.
    inbox: Path = Path("data/inbox")
    # Where a promoted champion is exported: the folder the service reloads (its MODEL_DIR).
    model_dir: Path = Path("models/champion")
    # The running service to hot-swap (env SERVICE_URL wins; empty: export only).
    service_url: AnyHttpUrl | None = None
    reload_timeout: float = Field(default=60, gt=0)  # seconds the service may take to reload


class MonitoringParams(_Strict):
    """The loop after serving: drift, the log it reads, retraining. It does not change a model,
    so no pipeline stage depends on it."""

    drift: DriftParams = DriftParams()
    log: LogParams = LogParams()
    retrain: RetrainParams = RetrainParams()
{%- endif %}


class Params(_Strict):
    data: DataParams
    sample: SampleParams
    validation: ValidationParams
    split: SplitParams
    model: ModelParams
    evaluate: EvaluateParams
    fairness: FairnessParams
    promotion: PromotionParams
    registry: RegistryParams
    tracking: TrackingParams
{%- if cookiecutter.include_serving %}
    serving: ServingParams = ServingParams()
{%- if cookiecutter.include_monitoring %}
    monitoring: MonitoringParams = MonitoringParams()
{%- endif %}
    delivery: DeliveryParams = DeliveryParams()

    def digest(self) -> str:
        """A stable hash of every training parameter, recorded with each model version
        (serving, monitoring and delivery policy are left out: they do not change the model)."""
        canonical = json.dumps(
            self.model_dump(mode="json", exclude={"serving", "monitoring", "delivery"}),
            sort_keys=True,
        )
{%- else %}

    def digest(self) -> str:
        """A stable hash of every parameter, recorded with each model version."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
{%- endif %}
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    return load_yaml_model(path, Params, ConfigError, "parameters file")
