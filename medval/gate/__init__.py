"""Specs, criteria, verdicts (criteria and JUnit XML arrive with the release gate)."""

from medval.gate._spec import SCHEMA, Spec, check_spec, read_spec

__all__ = ["SCHEMA", "Spec", "check_spec", "read_spec"]
