"""infoprobe: information-theoretic analysis of neural networks, layer by layer.

Heavy parts (estimators, the recorder, the analysis) are imported on first use, so
``import infoprobe`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from infoprobe.errors import InfoprobeError

__version__ = "0.1.0"

__all__ = [
    "InfoprobeError",
    "__version__",
    "analyze",
    "entropy",
    "entropy_change",
    "kl_divergence",
    "load_dataset",
    "mutual_information",
    "record",
]

# public name -> module that defines it; imported lazily by __getattr__
_LAZY = {
    "analyze": "infoprobe.analysis",
    "entropy": "infoprobe.estimators",
    "entropy_change": "infoprobe.exact",
    "kl_divergence": "infoprobe.estimators",
    "mutual_information": "infoprobe.estimators",
    "record": "infoprobe.recording",
    "load_dataset": "infoprobe.data",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'infoprobe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
