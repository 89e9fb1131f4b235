"""Delivery: what CI/CD and operators run against a deployed service.

The commands (cli.py) are merged into the project's CLI: smoke-test, canary-verdict, consume.
"""
