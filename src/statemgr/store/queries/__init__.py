"""Named SQL queries, one .sql file per repository.

A file holds queries each headed by `-- name: <query_name>`; `load("tenants")` returns them by name. SQL stays SQL:
no string building, parameters by name (`%(tenant_id)s`).
"""

from __future__ import annotations

import importlib.resources
import re
from typing import LiteralString, cast

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load(repository: str) -> dict[str, LiteralString]:
    """The queries of `<repository>.sql`, keyed by name."""
    text = importlib.resources.files(__package__).joinpath(f"{repository}.sql").read_text()
    parts = _HEADER.split(text)[1:]
    queries = {name: cast(LiteralString, body.strip()) for name, body in zip(parts[::2], parts[1::2], strict=True)}
    if len(queries) != len(parts) // 2:
        raise ValueError(f"{repository}.sql names a query twice")
    return queries
