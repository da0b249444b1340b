"""Compatibility name: the LAQ settings live in `serlaq.laq_config` (base layer, no torch)."""

from serlaq.laq_config import DEFAULT_BUDGET_BITS, DEFAULT_MODE, LaqConfig, LaqSettings, QatConfig

__all__ = ["DEFAULT_BUDGET_BITS", "DEFAULT_MODE", "LaqConfig", "LaqSettings", "QatConfig"]
