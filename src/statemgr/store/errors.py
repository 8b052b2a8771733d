"""Translation of psycopg errors into domain errors, by constraint name."""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors


def constraint_of(exc: psycopg.Error) -> str:
    """The name of the constraint an integrity error is about, or ''."""
    diag = exc.diag
    return diag.constraint_name or ""


def is_unique_violation(exc: BaseException, constraint: str | None = None) -> bool:
    """Whether exc is a unique violation (of `constraint`, when given)."""
    if not isinstance(exc, pg_errors.UniqueViolation):
        return False
    return constraint is None or constraint_of(exc) == constraint
