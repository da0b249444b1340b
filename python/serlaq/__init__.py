"""serlaq: lightweight speech emotion recognition with layer-wise adaptive quantization.

The public face is small: `serlaq.load(path)` returns a `LaqModel` (`serlaq.load()`: the
shipped general model). Nothing heavy
(torch, lightning) is imported until it is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serlaq.errors import AudioError, ConfigError, DataError, LaqFormatError, SerlaqError
from serlaq.version import __version__

__all__ = [
    "AudioError",
    "ConfigError",
    "DataError",
    "LaqFormatError",
    "LaqModel",
    "SerlaqError",
    "__version__",
    "load",
]

if TYPE_CHECKING:
    from serlaq.runtime import LaqModel


def load(path: Any = "general") -> "LaqModel":
    """Load a packed `.laq` model for inference (no Lightning needed).

    With no argument (or the name "general") the general model shipped inside serlaq.
    """
    from serlaq.runtime import LaqModel

    return LaqModel.load(path)


def __getattr__(name: str) -> Any:
    if name == "LaqModel":
        from serlaq.runtime import LaqModel

        return LaqModel
    raise AttributeError(f"module 'serlaq' has no attribute {name!r}")
