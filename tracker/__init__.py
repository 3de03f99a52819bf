"""DeepSORT face tracker with ArcFace appearance. Depends on numpy and scipy only."""
from tracker.appearance import NearestNeighborDistanceMetric
from tracker.detections import Detections
from tracker.ids import IdCounter
from tracker.kalman_filter import KalmanFilter
from tracker.track import Track, TrackState
from tracker.tracker import Tracker

__all__ = [
    "Detections",
    "IdCounter",
    "KalmanFilter",
    "NearestNeighborDistanceMetric",
    "Track",
    "TrackState",
    "Tracker",
]
