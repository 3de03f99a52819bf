"""A full-frame detection at a chosen detector input side, for detectors that may not take one."""
from __future__ import annotations

import inspect
from typing import Optional

import numpy as np


def detect_at(detector, frame: np.ndarray, side: Optional[int]):
    """``detector.detect(frame)`` at input side ``side`` (None or the detector's own ``input_size``: plain call)."""
    if side is None or int(side) == int(getattr(detector, "input_size", 640)):
        return detector.detect(frame)
    return detector.detect(frame, input_size=int(side))


def takes_keyword(function, name: str) -> bool:
    """Whether ``function`` can be called with the keyword ``name``."""
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
