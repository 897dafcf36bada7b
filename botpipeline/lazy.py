"""Modules imported on first use, so loading the code location stays cheap.

``np = lazy("numpy")`` binds a stand-in whose first attribute access imports the module through
``importlib.import_module``, which waits while another thread is still initialising it (reading
``sys.modules`` directly would hand out a half-initialised module), and keeps it. Use it
for heavy libraries that a module needs only inside functions; annotations stay free with
``from __future__ import annotations``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class lazy:  # noqa: N801 - reads like the import it stands for
    __slots__ = ("_name", "_module")

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:  # import_module returns only once the module is whole
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
