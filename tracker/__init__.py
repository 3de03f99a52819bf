"""DeepSORT face tracker with ArcFace appearance. Depends on numpy and scipy only."""
from tracker.detections import Detections

__all__ = ["Detections"]
