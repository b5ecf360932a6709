"""Import `kubernetes_asyncio.client` without importing all of it.

The package's `__init__` modules import every one of its ~770 models and 65 API classes at
once: imported (by kopf, which always does, and by us) they cost ~45 MiB of an operator's
memory and most of its start-up, for the dozen classes an operator uses. `install()` makes the
three package modules that do this — `kubernetes_asyncio.client`, `.client.models` and
`.client.api` — lazy: each name they export is read from the `from … import …` lines of the
package's own `__init__` source and imported on first use (a module `__getattr__`, PEP 562).
Everything else of the package is what it was: the same classes, from the same modules.

`agent_sessions/__init__.py` calls `install()`, so it is in place before anything of ours, or
kopf, imports the client. Where the client was imported before (another program embedding us),
it changes nothing. `tests/test_lazy_client.py` checks that every name the real package exports
is the same object through the lazy one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

LAZY_PACKAGES = frozenset({
    "kubernetes_asyncio.client",
    "kubernetes_asyncio.client.models",
    "kubernetes_asyncio.client.api",
})

_IMPORT_LINE = re.compile(r"^from[ \t]+([\w.]+)[ \t]+import[ \t]+(\w+)(?:[ \t]+as[ \t]+(\w+))?[ \t]*(?:#.*)?$", re.M)


def exported_names(source: str) -> dict[str, tuple[str, str]]:
    """`name → (module, attribute)` for every single-line `from module import attribute [as name]`
    of a package `__init__`'s `source`."""
    return {alias or attribute: (module, attribute) for module, attribute, alias in _IMPORT_LINE.findall(source)}


class _LazyPackageLoader(importlib.abc.Loader):
    """Runs a package `__init__` without its `from … import …` lines; their names resolve on use."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        source = Path(self.origin).read_text(encoding="utf-8")
        names = exported_names(source)
        rest = _IMPORT_LINE.sub("", source)  # the docstring, `__version__`, `__all__`
        exec(compile(rest, self.origin, "exec"), module.__dict__)  # noqa: S102 - the package's own code

        def __getattr__(name: str) -> Any:  # noqa: N807 - PEP 562
            try:
                module_name, attribute = names[name]
            except KeyError:
                raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}") from None
            value = getattr(importlib.import_module(module_name), attribute)
            setattr(module, name, value)  # once: the next lookup is a plain attribute
            return value

        def __dir__() -> list[str]:  # noqa: N807
            return sorted({*module.__dict__, *names})

        module.__getattr__ = __getattr__  # type: ignore[attr-defined]
        module.__dir__ = __dir__  # type: ignore[method-assign]


class _LazyPackageFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LAZY_PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not spec.origin.endswith("__init__.py"):
            return None  # not the package as we know it: import it as it is
        spec.loader = _LazyPackageLoader(spec.origin)
        return spec


_FINDER = _LazyPackageFinder()


def install() -> None:
    """Make the client packages lazy for every later import (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
