"""Model serving: the prediction API, its model loading, and the prediction log.

Run it with `make serve` (`python -m {{ cookiecutter.package_name }}.serving.server`: uvicorn, TLS 1.2+).
Only the project's own dependencies and the `serve` group are needed: no mlflow, no pandas.

Modules:
    app               the app factory: settings, model, state, routers, OpenAPI document
    routes            the routers (ops, scrape, model, admin), the body limit
    auth              API keys with roles (predict, admin, metrics): the one credential check
    server            the entry point: uvicorn, TLS 1.2 at least, a warning for plain HTTP
    contract_models   request/response models generated from schema.yaml at start-up
    model_store       load the export folder (treelite checkpoint, else skops + type
                      allow-list) or a registry URI
    predict           POST /predict from body bytes to response bytes
    runtime           the served model slot (atomic hot swap) and the shadow scorer
    canary            the canary split: which model answers a request, and its role
    prediction_log    the JSONL prediction log through stdlib logging (record format there)
    middleware        observes only: request id, metrics, access log
    metrics, logs     Prometheus metrics (multiprocess-aware) and JSON logging
    settings          pydantic-settings: defaults < params.yaml `serving:` < env vars
    batch             `{{ cookiecutter.project_slug }} predict IN OUT` (training env: pandas, pyarrow)

Routes: POST /predict, GET /model, GET /health, GET /ready, GET /metrics, POST /admin/reload,
PUT /admin/canary, and the OpenAPI page at /docs.
"""
