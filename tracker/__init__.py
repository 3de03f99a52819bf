"""DeepSORT face tracker with ArcFace appearance. Depends on numpy and scipy only."""
from tracker.appearance import AppearanceMetric, NearestNeighborDistanceMetric
from tracker.detections import Detections
from tracker.ids import IdCounter
from tracker.kalman_filter import KalmanFilter
from tracker.lost_buffer import LostBuffer
from tracker.track import Track, TrackState
from tracker.tracker import Tracker, TrackerUpdate

__all__ = [
    "AppearanceMetric",
    "Detections",
    "IdCounter",
    "KalmanFilter",
    "LostBuffer",
    "NearestNeighborDistanceMetric",
    "Track",
    "TrackState",
    "Tracker",
    "TrackerUpdate",
]
