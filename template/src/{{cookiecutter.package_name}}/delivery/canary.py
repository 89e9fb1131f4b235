"""`canary-verdict`: the canary against the stable model, from Prometheus.

The service labels every /predict request and score with its `role` (serving/canary.py), so
one instant query a figure, grouped by role, gives both sides over the window (PromQL's
`increase` and `rate`): requests, the 5xx share, the p99 latency from the latency histogram,
and the `prediction_score` histogram's buckets, from which the PSI of the canary's scores
against the stable model's is computed here (bins as the buckets, shares clamped at 1e-4 as
monitoring/alerts.yml does). Thresholds: params.yaml `delivery.canary`.

Prometheus is read with the standard library (this runs in CI/CD, not in the service). An
unreachable Prometheus or an answer that is not Prometheus's is an error, never a promote.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from pydantic import ValidationError

from ..config import CanaryParams

ROLES = ("stable", "canary")
_SHARE_FLOOR = 1e-4


class VerdictError(RuntimeError):
    """Prometheus cannot be read, or answered something that is not a query result."""


class Outcome(IntEnum):
    """The command's exit code."""

    PROMOTE = 0
    ROLLBACK = 3
    NO_DECISION = 4


@dataclass
class Side:
    versions: list[str] = field(default_factory=list)
    requests: float = 0.0
    errors: float = 0.0
    p99_seconds: float = math.nan
    # Cumulative counts of the score histogram by upper bound (`le`).
    score_buckets: dict[float, float] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else math.nan


@dataclass
class Verdict:
    outcome: Outcome
    sides: dict[str, Side]
    psi: float
    reasons: list[str]


class Prometheus:
    def __init__(self, url: str, at: str | None = None, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise VerdictError(f"--prometheus {url!r}: not an http(s) URL")
        self.url = url.rstrip("/")
        self.at = at
        self.timeout = timeout

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of `promql`: [{"metric": {...}, "value": [time, "value"]}]."""
        arguments = {"query": promql, **({"time": self.at} if self.at is not None else {})}
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode(arguments)}"
        try:
            # The scheme was checked in __init__: http(s) only.
            with urllib.request.urlopen(address, timeout=self.timeout) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise VerdictError(
                f"{self.url} answered HTTP {exc.code} to {promql!r}: {_error_of(exc.read())}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise VerdictError(f"cannot reach Prometheus at {self.url}: {reason}") from None
        try:
            answer = json.loads(body)
            if answer["status"] != "success" or answer["data"]["resultType"] != "vector":
                raise ValueError(answer.get("error", answer["data"]["resultType"]))
            result: list[dict[str, Any]] = answer["data"]["result"]
            for sample in result:
                float(sample["value"][1])
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise VerdictError(
                f"{self.url} did not answer {promql!r} like Prometheus's query API: {exc}"
            ) from None
        return result


def _error_of(body: bytes) -> str:
    """Prometheus's own reason for refusing a query (a bad time, a bad expression)."""
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode(errors="replace")


def with_window(limits: CanaryParams, window: str) -> CanaryParams:
    """`limits` over another window (--window), checked by the rule params.yaml's obeys."""
    try:
        return CanaryParams.model_validate({**limits.model_dump(), "window": window})
    except ValidationError:
        raise VerdictError(f"--window {window!r}: not a Prometheus duration such as 10m") from None


def decide(prometheus: Prometheus, limits: CanaryParams, job: str | None) -> Verdict:
    """Compare the roles over `limits.window` and decide."""
    window = limits.window
    sides = _read(prometheus, window, job)
    stable, canary = sides["stable"], sides["canary"]
    short = [
        f"{role} {side.requests:.0f}"
        for role, side in sides.items()
        if side.requests < limits.min_requests
    ]
    if short:
        reason = (
            f"not enough requests in the last {window}: {', '.join(short)}; "
            f"{limits.min_requests} needed on each side"
        )
        return Verdict(Outcome.NO_DECISION, sides, math.nan, [reason])
    psi = population_stability(stable.score_buckets, canary.score_buckets)
    reasons = []
    increase = canary.error_rate - stable.error_rate
    if increase > limits.max_error_rate_increase:
        reasons.append(
            f"error rate {canary.error_rate:.2%} against {stable.error_rate:.2%} "
            f"(+{increase:.2%}, at most +{limits.max_error_rate_increase:.2%})"
        )
    ratio = canary.p99_seconds / stable.p99_seconds if stable.p99_seconds > 0 else math.nan
    if not ratio <= limits.max_p99_ratio:  # NaN too: a canary whose latency cannot be read
        reasons.append(
            f"p99 latency {_ms(canary.p99_seconds)} against {_ms(stable.p99_seconds)} "
            f"(x{ratio:.2f}, at most x{limits.max_p99_ratio:g})"
        )
    if not psi <= limits.max_psi:
        reasons.append(
            f"prediction PSI {psi:.3f} against the stable model's scores (at most "
            f"{limits.max_psi:g})"
        )
    return Verdict(Outcome.ROLLBACK if reasons else Outcome.PROMOTE, sides, psi, reasons)


def decide_in_time(
    prometheus: Prometheus,
    limits: CanaryParams,
    job: str | None,
    *,
    attempts: int,
    wait: float,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """`decide` after `wait` seconds, asked again (at most `attempts` times in all, `wait`
    apart) while too few requests came in: CD asks as soon as the canary is up, before it has
    had the traffic a decision needs."""
    sleep(wait)
    verdict = decide(prometheus, limits, job)
    for attempt in range(1, attempts):
        if verdict.outcome is not Outcome.NO_DECISION:
            break
        say(f"no decision yet (attempt {attempt} of {attempts}): {'; '.join(verdict.reasons)}")
        sleep(wait)
        verdict = decide(prometheus, limits, job)
    return verdict


def _read(prometheus: Prometheus, window: str, job: str | None) -> dict[str, Side]:
    of_job = [f"job={json.dumps(job)}"] if job else []
    predict = ['route="/predict"', *of_job]
    sides = {role: Side() for role in ROLES}
    requests = f"increase({_select('http_requests_total', predict)}[{window}])"
    for sample in prometheus.query(f"sum by (role, model_version) ({requests}) > 0"):
        side = _side(sides, sample)
        if side is not None:
            side.versions.append(sample["metric"].get("model_version", "?"))
            side.requests += _value(sample)
    failed = _select("http_requests_total", [*predict, 'status=~"5.."'])
    for sample in prometheus.query(f"sum by (role) (increase({failed}[{window}]))"):
        if (side := _side(sides, sample)) is not None:
            side.errors = _value(sample)
    latency = f"rate({_select('http_request_duration_seconds_bucket', predict)}[{window}])"
    for sample in prometheus.query(f"histogram_quantile(0.99, sum by (role, le) ({latency}))"):
        if (side := _side(sides, sample)) is not None:
            side.p99_seconds = _value(sample)
    scores = f"increase({_select('prediction_score_bucket', of_job)}[{window}])"
    for sample in prometheus.query(f"sum by (role, le) ({scores})"):
        if (side := _side(sides, sample)) is not None:
            side.score_buckets[float(sample["metric"].get("le", "nan"))] = _value(sample)
    return sides


def _select(metric: str, matchers: list[str]) -> str:
    # Joined, not an f-string: this file is also a Jinja template, where two braces open a tag.
    return metric + "{" + ", ".join(matchers) + "}"


def _side(sides: dict[str, Side], sample: dict[str, Any]) -> Side | None:
    return sides.get(sample["metric"].get("role", ""))


def _value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def population_stability(expected: dict[float, float], actual: dict[float, float]) -> float:
    """PSI of two cumulative histograms over the same bucket bounds; NaN if either is empty."""
    bounds = sorted(set(expected) | set(actual))
    shares = []
    for cumulative in (expected, actual):
        counts = [cumulative.get(b, 0.0) for b in bounds]
        per_bin = [high - low for low, high in zip([0.0, *counts], counts, strict=False)]
        total = sum(per_bin)
        if total <= 0:
            return math.nan
        shares.append([max(count / total, _SHARE_FLOOR) for count in per_bin])
    before, after = shares
    return math.fsum((a - e) * math.log(a / e) for e, a in zip(before, after, strict=True))


def report(verdict: Verdict, window: str) -> str:
    """The table and the verdict line, as the command prints them."""
    stable, canary = verdict.sides["stable"], verdict.sides["canary"]
    rows = [
        (f"last {window}", "stable", "canary"),
        ("model version", _versions(stable), _versions(canary)),
        ("requests", f"{stable.requests:,.0f}", f"{canary.requests:,.0f}"),
        ("error rate (5xx)", _percent(stable.error_rate), _percent(canary.error_rate)),
        ("p99 latency", _ms(stable.p99_seconds), _ms(canary.p99_seconds)),
        ("prediction PSI", "", "-" if math.isnan(verdict.psi) else f"{verdict.psi:.3f}"),
    ]
    lines = [f"{name:<18}{left:>12}{right:>12}" for name, left, right in rows]
    verdict_line = {
        Outcome.PROMOTE: "verdict: promote",
        Outcome.ROLLBACK: f"verdict: rollback ({'; '.join(verdict.reasons)})",
        Outcome.NO_DECISION: f"verdict: no decision ({'; '.join(verdict.reasons)})",
    }[verdict.outcome]
    return "\n".join([*lines, verdict_line])


def _versions(side: Side) -> str:
    return ",".join(sorted(side.versions)) or "-"


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2%}"


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"
