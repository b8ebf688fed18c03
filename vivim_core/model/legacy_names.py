"""Renames applied when a checkpoint is loaded, so that files written under older parameter names still load.

    state = upgrade_legacy_names(state)      # {name: tensor} as read from a .safetensors checkpoint

Older checkpoints named the backward and spatial branches' A matrices `A_log_b` and `A_log_s`; the official
Vivim code (and now ours) calls them `A_b_log` and `A_s_log`. Nothing else was renamed. A file that already
uses the current names passes through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")

# (pattern of an old name's last component, its current name)
_RENAMES = [
    (re.compile(r"(^|\.)A_log_b$"), r"\1A_b_log"),
    (re.compile(r"(^|\.)A_log_s$"), r"\1A_s_log"),
]


def current_name(name: str) -> str:
    """The current name of a parameter that may carry an older name."""
    for pattern, replacement in _RENAMES:
        if pattern.search(name):
            return pattern.sub(replacement, name)
    return name


def upgrade_legacy_names(state: Mapping[str, T]) -> dict[str, T]:
    """`state` with every older parameter name replaced by its current one (order kept)."""
    return {current_name(name): value for name, value in state.items()}
