"""Deferred imports: a module object whose code runs on first attribute access.

The Functions host imports `function_app` on every cold start, and pydantic alone costs about as
much as azure.functions itself. Blueprints therefore reach their models through a lazy module:
the first request pays for the import, the host's indexing does not.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """`name` as a module that is imported when first used (at once if already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
