"""Conformance: one module per family of checks; `registry.CHECKS` lists them all."""
