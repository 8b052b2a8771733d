"""Benchmark harness of statemgr: the floor measured in the same run, and the statemgr scenarios against it.

Run from the repository root with ``python -m bench``; see bench/README.md.
"""
