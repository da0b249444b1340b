"""Table 2 of the paper: MLP hidden-layer widths by preset, importable without torch.

Run-config validation (`serlaq.config`) checks `model.hidden` against these names before
anything heavy loads; `serlaq.model` builds the network from them.
"""

from __future__ import annotations

# Table 2 of the paper: hidden-layer widths by number of hidden layers.
PRESETS: dict[str, list[int]] = {
    "2HL": [256, 64],
    "3HL": [256, 512, 64],
    "5HL": [256, 512, 256, 128, 64],
    "7HL": [256, 512, 384, 256, 128, 96, 64],
    "9HL": [256, 512, 384, 256, 192, 128, 96, 72, 64],
}
DEFAULT_PRESET = "3HL"
