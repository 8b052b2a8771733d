"""Running another module's tests again under different fixtures (a PgBouncer, a Redis Cluster, ...)."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from types import ModuleType
from typing import Any


def rerun(namespace: MutableMapping[str, Any], prefix: str, modules: Iterable[ModuleType], skip: set[str]) -> None:
    """Puts every `test_*` of `modules` into `namespace` (a test module's globals()) as `test_<prefix>_*`, so pytest
    collects them there too, with that module's fixtures overriding the originals'."""
    for module in modules:
        for name in dir(module):
            if name.startswith("test_") and name not in skip and callable(getattr(module, name)):
                namespace[f"test_{prefix}_{name[len('test_') :]}"] = getattr(module, name)
