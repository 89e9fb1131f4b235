"""The loop after serving: the prediction log read back, drift against the champion's own
training data, alerts, and retraining through the same gate.

    log_store.py  the prediction log's segments, compacted to Parquet, read in bounded memory
    drift.py      the checks (SciPy and NumPy), per feature, prediction and concept
    reference.py  the champion's training data, found through its lineage
    monitor.py    one `monitor` run: the reference against a window of the log, read once
    report.py     JSON, Markdown and one self-contained HTML page
    trigger.py    what starts a retrain (reason, drift report, alerts) and its one-at-a-time lock
    retrain.py    new labelled data -> the contract -> dvc repro -> the gate -> hot swap
    webhook.py    Alertmanager's webhook receiver, which starts a retrain
    cli.py        the commands (`monitor`, `compact-log`, `retrain`, `webhook`)
"""
