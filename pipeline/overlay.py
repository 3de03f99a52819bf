"""Drawing tracked, named faces and an FPS readout onto frames.

The annotator takes its style in the constructor and the data per call
(``annotate(scene, result)``), like supervision's annotators. Sizes scale
with the frame's short side, so labels read the same on 480p and 4K, and
every label is kept inside the frame.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from tracker.checks import check_bool, check_int, check_number

Color = Tuple[int, int, int]

#: Short side (pixels) at which ``font_scale`` and ``line_thickness`` apply unscaled.
REFERENCE_SHORT_SIDE = 720.0


def _check_color(name: str, value) -> Color:
    try:
        color = tuple(int(c) for c in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three 0-255 integers (B, G, R), got {value!r}") from None
    if len(color) != 3 or not all(0 <= c <= 255 for c in color):
        raise ValueError(f"{name} must be three 0-255 integers (B, G, R), got {value!r}")
    return color  # type: ignore[return-value]


class Overlay:
    """Draw boxes with ``#id name score`` labels and an FPS readout.

    Parameters
    ----------
    known_color : sequence of 3 int
        BGR colour of boxes and labels of named people.
    unknown_color : sequence of 3 int
        BGR colour of people the gallery does not know.
    text_color : sequence of 3 int
        BGR colour of label text.
    unknown_label : str
        Label shown for people not in the gallery.
    font_scale : float
        OpenCV font scale at a 720-pixel short side (> 0); scaled with the frame.
    line_thickness : int
        Box line width in pixels at a 720-pixel short side (>= 1); scaled with the frame.
    show_track_id, show_score, show_fps : bool
        Which parts of the labels to draw (``show_fps``: :meth:`draw_fps` draws the readout).
    burn_fps : bool
        Draw the FPS readout into every output (video files, re-streams), not only into the live
        window; the run loop reads it (``--burn-fps``).
    """

    def __init__(
        self,
        *,
        known_color: Sequence[int] = (60, 200, 60),
        unknown_color: Sequence[int] = (40, 140, 255),
        text_color: Sequence[int] = (255, 255, 255),
        unknown_label: str = "Unknown",
        font_scale: float = 0.6,
        line_thickness: int = 2,
        show_track_id: bool = True,
        show_score: bool = True,
        show_fps: bool = True,
        burn_fps: bool = False,
    ) -> None:
        self.known_color = _check_color("known_color", known_color)
        self.unknown_color = _check_color("unknown_color", unknown_color)
        self.text_color = _check_color("text_color", text_color)
        if not isinstance(unknown_label, str):
            raise ValueError(f"unknown_label must be a string, got {unknown_label!r}")
        self.unknown_label = unknown_label
        self.font_scale = check_number("font_scale", font_scale, 0, low_open=True)
        self.line_thickness = check_int("line_thickness", line_thickness, 1)
        self.show_track_id = check_bool("show_track_id", show_track_id)
        self.show_score = check_bool("show_score", show_score)
        self.show_fps = check_bool("show_fps", show_fps)
        self.burn_fps = check_bool("burn_fps", burn_fps)
        self.font = cv2.FONT_HERSHEY_SIMPLEX

    def _scale(self, scene: np.ndarray) -> float:
        return min(scene.shape[:2]) / REFERENCE_SHORT_SIDE

    def label(self, track_id: int, name: Optional[str], score: float) -> str:
        """The text drawn for one track."""
        parts = []
        if self.show_track_id:
            parts.append(f"#{int(track_id)}")
        parts.append(name if name else self.unknown_label)
        if self.show_score and name and np.isfinite(score):
            parts.append(f"{score:.2f}")
        return " ".join(parts)

    def draw_label(self, scene: np.ndarray, text: str, anchor_xy: Tuple[float, float], color: Color,
                   above: bool = True) -> Tuple[int, int, int, int]:
        """Draw ``text`` on a filled background at ``anchor_xy``, kept inside the frame.

        The label sits above the anchor when ``above`` and there is room,
        otherwise below it; it is shifted left, right, up or down as needed
        and shrunk if it is wider than the frame. Returns the label's
        background rectangle ``(x1, y1, x2, y2)``.
        """
        h, w = scene.shape[:2]
        s = self._scale(scene)
        scale = max(0.35, self.font_scale * s)
        thickness = max(1, int(round(s * 1.5)))
        (tw, th), base = cv2.getTextSize(text, self.font, scale, thickness)
        pad = max(2, int(round(3 * s)))
        if tw + 2 * pad > w:  # shrink to fit the frame's width
            scale *= (w - 2 * pad) / float(tw + 2 * pad)
            (tw, th), base = cv2.getTextSize(text, self.font, scale, thickness)
        box_w, box_h = tw + 2 * pad, th + base + 2 * pad
        x = int(round(anchor_xy[0]))
        y = int(round(anchor_xy[1]))
        top = y - box_h if above else y
        if top < 0:
            top = y if above else top
        top = int(np.clip(top, 0, max(0, h - box_h)))
        left = int(np.clip(x, 0, max(0, w - box_w)))
        right, bottom = min(w, left + box_w), min(h, top + box_h)
        cv2.rectangle(scene, (left, top), (right - 1, bottom - 1), color, thickness=-1)
        cv2.putText(scene, text, (left + pad, top + pad + th), self.font, scale, self.text_color, thickness,
                    cv2.LINE_AA)
        return left, top, right, bottom

    def annotate(self, scene: np.ndarray, result) -> np.ndarray:
        """Draw the tracks of one frame on ``scene`` (in place) and return it.

        Parameters
        ----------
        scene : ndarray
            An ``(H, W, 3)`` uint8 BGR frame.
        result : FrameResult
            Anything with ``xyxy (N, 4)``, ``track_ids (N,)``, ``names`` (N
            strings or None) and ``scores (N,)``.
        """
        h, w = scene.shape[:2]
        s = self._scale(scene)
        thickness = max(1, int(round(self.line_thickness * s)))
        for box, track_id, name, score in zip(result.xyxy, result.track_ids, result.names, result.scores):
            color = self.known_color if name else self.unknown_color
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            x1, x2 = int(np.clip(x1, 0, w - 1)), int(np.clip(x2, 0, w - 1))
            y1, y2 = int(np.clip(y1, 0, h - 1)), int(np.clip(y2, 0, h - 1))
            cv2.rectangle(scene, (x1, y1), (x2, y2), color, thickness)
            self.draw_label(scene, self.label(track_id, name, float(score)), (x1, y1), color, above=True)
        return scene

    def draw_fps(self, scene: np.ndarray, fps: Optional[float]) -> np.ndarray:
        """Draw an FPS readout in the top-left corner (nothing when ``fps`` is None or ``show_fps`` is off)."""
        if self.show_fps and fps is not None and np.isfinite(fps):
            self.draw_label(scene, f"{fps:.1f} FPS", (0, 0), (40, 40, 40), above=False)
        return scene
