"""The checks a rendered manifest must pass, offline. Each returns messages that name the
object and the field: Kubernetes' own schemas (kubernetes-validate, strict: an unknown field
fails), the KServe SDK's typed models for the InferenceService and its ServingRuntime, and
the policies a reviewer asks for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import kubernetes_validate

# The oldest Kubernetes the manifests promise to run on, and the kubectl (kustomize) they are
# rendered with here. A field added in a later version fails against it; newer clusters serve
# the same GA APIs (apps/v1, autoscaling/v2, policy/v1, networking.k8s.io/v1). Pinned, so a
# kubernetes-validate upgrade (its default is its newest schema) cannot change the result.
KUBERNETES_VERSION = "1.32"

Document = dict[str, Any]


def named(document: Document) -> str:
    return f"{document['kind']}/{document['metadata']['name']}"


def schema_errors(document: Document) -> list[str]:
    """kubernetes-validate, strict; a custom resource goes to its own check."""
    if document["apiVersion"].startswith("serving.kserve.io/"):
        return kserve_errors(document)
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return [f"{named(document)}: {path}: {error.message}"]
    return []


_LIST = re.compile(r"(?:list|List)\[(?P<item>.+)\]")
_MAP = re.compile(r"(?:dict\(str, (?P<a>.+)\)|Dict\[str, (?P<b>.+)\])")
_SCALARS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "object": (object,),  # int-or-string fields (probe ports, intstr)
    "ResourceQuantity": (str, int, float),
    "datetime": (str,),
    "date": (str,),
}


# KServe's kinds, as the SDK's models name them.
KSERVE_MODELS = {
    "InferenceService": "V1beta1InferenceService",
    "ServingRuntime": "V1alpha1ServingRuntime",
}


def kserve_errors(document: Document) -> list[str]:
    """A KServe object walked through the KServe SDK's own models: each key must be in its
    model's `attribute_map`, each value of the type `openapi_types` gives it."""
    errors = _walk(document, KSERVE_MODELS[document["kind"]], "")
    return [f"{named(document)}: {error}" for error in errors]


def _walk(value: Any, type_name: str, path: str) -> Iterator[str]:
    if match := _LIST.fullmatch(type_name):
        if not isinstance(value, list):
            yield f"{path}: expected a list, got {type(value).__name__}"
            return
        for index, item in enumerate(value):
            yield from _walk(item, match["item"], f"{path}[{index}]")
    elif match := _MAP.fullmatch(type_name):
        if not isinstance(value, dict):
            yield f"{path}: expected a mapping, got {type(value).__name__}"
            return
        for key, item in value.items():
            yield from _walk(item, match["a"] or match["b"], f"{path}.{key}")
    elif type_name in _SCALARS:
        # bool is an int in Python, not in Kubernetes.
        wrong_bool = isinstance(value, bool) and bool not in _SCALARS[type_name]
        if wrong_bool or not isinstance(value, _SCALARS[type_name]):
            yield f"{path}: expected {type_name}, got {type(value).__name__}"
    else:
        model = _model(type_name)
        if not isinstance(value, dict):
            yield f"{path}: expected an object ({type_name}), got {type(value).__name__}"
            return
        fields = {key: attribute for attribute, key in model.attribute_map.items()}
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key not in fields:
                yield f"{where}: unknown field"
            else:
                yield from _walk(item, model.openapi_types[fields[key]], where)


def _model(type_name: str) -> Any:
    """KServe's model of that name, or the Kubernetes client's (which KServe's models use)."""
    import kubernetes.client
    from kserve import models

    model = getattr(models, type_name, None) or getattr(kubernetes.client, type_name, None)
    if model is None:
        raise LookupError(f"{type_name}: neither kserve.models nor kubernetes.client has it")
    return model


def policy_errors(document: Document) -> list[str]:
    """Every pod: no service-account token; every container: non-root, read-only root file
    system, no privilege escalation, no capabilities, seccomp, requests and limits, both
    probes, and a pinned image."""
    pod = pod_spec(document)
    if pod is None:
        return []
    errors = []
    # A runtime's pod is the InferenceService's: the setting is there.
    if (
        document["kind"] != "ServingRuntime"
        and pod.get("automountServiceAccountToken") is not False
    ):
        errors.append(f"{named(document)}: automountServiceAccountToken is not false")
    for container in pod.get("containers", []):
        where = f"{named(document)}: container {container['name']}"
        own = container.get("securityContext", {})
        effective = {**pod.get("securityContext", {}), **own}  # the container's own wins
        expected = {
            "runAsNonRoot": effective.get("runAsNonRoot") is True,
            "readOnlyRootFilesystem": own.get("readOnlyRootFilesystem") is True,
            "allowPrivilegeEscalation: false": own.get("allowPrivilegeEscalation") is False,
            "capabilities.drop ALL": "ALL" in own.get("capabilities", {}).get("drop", []),
            "seccompProfile RuntimeDefault": (
                effective.get("seccompProfile", {}).get("type") == "RuntimeDefault"
            ),
        }
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                expected[f"resources.{kind}.{resource}"] = resource in resources.get(kind, {})
        for probe in ("livenessProbe", "readinessProbe"):
            expected[probe] = probe in container
        errors += [f"{where}: {rule}: missing or wrong" for rule, ok in expected.items() if not ok]
        image = container["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if "@" not in image and tag in ("", "latest"):
            errors.append(f"{where}: image {image}: no tag or `latest`, so no one build")
    return errors


def pod_spec(document: Document) -> Document | None:
    if document["kind"] == "Deployment":
        spec: Document = document["spec"]["template"]["spec"]
        return spec
    if document["kind"] == "InferenceService":
        predictor: Document = document["spec"]["predictor"]
        return predictor
    if document["kind"] == "ServingRuntime":
        runtime: Document = document["spec"]
        return runtime
    return None
