"""Model serving: the prediction API, its model loading, and the prediction log.

Run it with `make serve` (uvicorn, `--factory {{ cookiecutter.package_name }}.serving.app:create_app`).
Only the project's own dependencies and the `serve` group are needed: no mlflow, no pandas.

Modules:
    app               the FastAPI app factory and its routes
    contract_models   request/response models generated from schema.yaml at start-up
    model_store       load the export folder (treelite checkpoint, else skops + type
                      allow-list) or a registry URI
    predict           POST /predict from body bytes to response bytes (fast path and route)
    runtime           the served model slot (atomic hot swap) and the shadow scorer
    prediction_log    non-blocking JSONL prediction log (record format documented there)
    middleware        request id, body size limit, metrics and access log
    metrics, logs     Prometheus metrics and JSON logging
    settings          configuration: defaults < params.yaml `serving:` < env vars
    batch             `{{ cookiecutter.project_slug }} predict IN OUT` (training env: pandas, pyarrow)

Routes: POST /predict, GET /model, GET /health, GET /ready, GET /metrics, POST /admin/reload,
and the OpenAPI page at /docs.
"""
