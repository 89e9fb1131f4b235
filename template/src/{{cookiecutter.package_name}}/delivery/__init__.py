"""Delivery: what CI/CD and operators run against a deployed service.

    cli         the commands, merged into the project's CLI (smoke-test, canary-verdict,
                consume)
"""
