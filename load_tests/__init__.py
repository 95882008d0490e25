"""Load tests, benchmarks and fault runs of the routing service (see BENCHMARKS.md).

- ``generator``: the bounded closed/open-loop HTTP load generator (``python -m load_tests.generator``).
"""
