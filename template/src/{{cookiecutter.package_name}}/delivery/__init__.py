"""Delivery: what CI/CD and operators run against a deployed service.

The commands (cli.py) are merged into the project's CLI: smoke-test and canary-verdict for a
rollout, consume for event-driven scoring
{%- if cookiecutter.deployment == "kubernetes" %}, render-manifests and idle-slot for the cluster{% endif %}.
"""
