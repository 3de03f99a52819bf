"""Snapshots of appearances: a crop of each new track's face, kept beside the events file.

:class:`Snapshots` wraps a pipeline (anything with ``process``) and, on the
frame where a track is first shown, writes a crop of its face (with a margin)
as ``<folder>/<track_id>-<frame>.jpg`` -- the name
:func:`web.timeline.snapshot_name` looks for, since that frame is the
appearance's ``first_frame``. Files are written atomically, mode ``0600``
(faces are biometric data).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from web.timeline import snapshot_name
from web.uploads import write_private

logger = logging.getLogger(__name__)


class Snapshots:
    """A pipeline that also keeps the first face crop of each appearance.

    Parameters
    ----------
    pipeline
        Anything with ``process(image, index, timestamp, **kw) -> FrameResult``.
    folder : Path
        Where the crops go (created ``0700``).
    margin : float
        Crop margin around the box, as a fraction of its size on each side.
    """

    def __init__(self, pipeline, folder: Path, *, margin: float = 0.3) -> None:
        self.pipeline = pipeline
        self.folder = Path(folder)
        self.margin = float(margin)
        self._shown: set = set()

    def process(self, image: np.ndarray, frame_index: int, timestamp: float, **kw):
        result = self.pipeline.process(image, frame_index, timestamp, **kw)
        gone = {int(t) for t in list(result.lost_ids) + list(result.ended_ids)}
        shown = {int(t) for t in result.track_ids}
        for track_id, box in zip(result.track_ids, result.xyxy):
            if int(track_id) not in self._shown:
                self._write(image, int(track_id), int(result.frame_index), box)
        self._shown = (self._shown - gone) | shown
        return result

    def _write(self, image: np.ndarray, track_id: int, frame_index: int, box) -> None:
        import cv2

        x1, y1, x2, y2 = (float(v) for v in box)
        mx, my = (x2 - x1) * self.margin, (y2 - y1) * self.margin
        h, w = image.shape[:2]
        crop = image[max(0, int(y1 - my)):min(h, int(y2 + my)), max(0, int(x1 - mx)):min(w, int(x2 + mx))]
        if crop.size == 0:
            return
        ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if ok:
            write_private(self.folder / snapshot_name(track_id, frame_index), data.tobytes())

    def __getattr__(self, name):
        return getattr(self.pipeline, name)
