"""Probes: what parity asks each provider, and what it concludes from the answers.

Each probe plans a list of `Request`s per provider (pure, deterministic, keyed so a resumed
run can skip what is stored) and analyses stored exchanges into results.
"""
