"""The scene-linking step of the pipeline: shots into scenes, tracks into identities.

:class:`SceneLinking` composes the three parts the pipeline needs after the
identifier has named tracks by their faces: the shot threader
(:class:`~pipeline.scenes.SceneThreader`), the torso describer
(:class:`~models.torso.TorsoDescriber`) and the linker
(:class:`~pipeline.scene_links.SceneLinker`). The pipeline tells it about
every shot cut and, on detection frames, the shown tracks with their boxes
and face names; it answers with the names to show and the identity ids.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np

from models.torso import TorsoDescriber
from pipeline.scene_links import FaceEmbeddingOf, SceneLinker, SceneLinks
from pipeline.scenes import SceneThreader

#: ``histogram(frame_bgr) -> ndarray``: the shot-cut detector's frame histogram.
FrameHistogram = Callable[[np.ndarray], np.ndarray]


class SceneLinking:
    """Scenes and identities for the pipeline.

    Parameters
    ----------
    threader : SceneThreader or None
        Groups shots into scenes; None puts every shot of the run in one scene.
    histogram : callable or None
        ``histogram(frame_bgr)`` of a shot's first frame for the threader
        (the cut detector's :meth:`~pipeline.scene_cut.HistogramSceneCutDetector.histogram`).
    linker : SceneLinker
        Decides the links (default: :class:`SceneLinker` with its defaults).
    describer : TorsoDescriber
        The clothing cue (default: :class:`TorsoDescriber` with its defaults).
    """

    def __init__(self, threader: Optional[SceneThreader] = None, histogram: Optional[FrameHistogram] = None,
                 linker: Optional[SceneLinker] = None, describer: Optional[TorsoDescriber] = None) -> None:
        if (threader is None) != (histogram is None):
            raise ValueError("threader and histogram go together (both or neither)")
        self.threader = threader
        self.histogram = histogram
        self.linker = linker if linker is not None else SceneLinker()
        self.describer = describer if describer is not None else TorsoDescriber()
        self._shot = -1

    @property
    def scene(self) -> int:
        """The current scene id (-1 before the first frame)."""
        if self.threader is None:
            return 0 if self._shot >= 0 else -1
        return self.threader.scene

    def frame(self, frame_bgr: np.ndarray, cut: bool) -> None:
        """Every frame, before the others: a cut (or the first frame) starts a shot."""
        if self._shot >= 0 and not cut:
            return
        if self.threader is None:
            self._shot = 0
        else:
            self._shot = self.threader.new_shot(self.histogram(frame_bgr))

    def detected(self, frame_bgr: np.ndarray, track_ids: Sequence[int], xyxy: np.ndarray,
                 face_names: List[Optional[str]], face_embedding: Optional[FaceEmbeddingOf]) -> SceneLinks:
        """A detection frame's shown tracks (``(N, 4)`` boxes, face names): observe, link, and answer."""
        cue = self.describer.describe(frame_bgr, xyxy) if len(track_ids) else None
        self.linker.observe(track_ids, self._shot, face_names,
                            None if cue is None else cue.descriptor, None if cue is None else cue.valid)
        return self.linker.link(track_ids, self._same_scene, face_embedding)

    def predicted(self, track_ids: Sequence[int]) -> SceneLinks:
        """A frame without detection: the links as they stand."""
        return self.linker.shown(track_ids)

    def reset(self) -> None:
        """Forget every shot and track (a new source)."""
        if self.threader is not None:
            self.threader.reset()
        self.linker.reset()
        self._shot = -1

    def _same_scene(self, shot_a: int, shot_b: int) -> bool:
        if self.threader is None:
            return True
        return self.threader.same_scene(shot_a, shot_b)
