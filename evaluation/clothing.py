"""Simulator scenes with clothing: a torso under each face, fixed within a scene, changed between scenes.

The scene linker's clothing cue (:mod:`models.torso`) is measured on
simulator sequences whose shots are grouped into ``scenes``. Each scene has
its own camera set-ups (backgrounds), and in each scene every person wears
an upper and a lower garment drawn from a small palette, so different
people often wear the same colours, and the same person changes clothes
between scenes. The garment's shape differs from the region the describer
looks at (its own width, gap below the chin and length per person and
scene, a soft texture and shading), so the cue cannot be satisfied by the
simulator drawing exactly what the describer reads.

``dress(scenario, scenes=3)`` returns the re-camera'd scenario and a
:class:`Wardrobe` to pass to :func:`evaluation.synth.render` (``dress=``).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Tuple

import numpy as np

from .synth import Appearance, Scenario, Shot

#: BGR garment colours; eight, so in a scene of four people two share a colour about half the time.
PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (40, 40, 40), (230, 230, 230), (150, 60, 20), (40, 40, 170), (60, 140, 60), (40, 170, 210),
    (120, 100, 90), (140, 60, 140))


@dataclasses.dataclass(frozen=True)
class Garment:
    """What one person wears in one scene, relative to their face box."""

    upper: Tuple[int, int, int]
    lower: Tuple[int, int, int]
    width: float          # face widths
    gap: float            # face heights between the chin and the shoulders
    length: float         # face heights from the shoulders down
    split: float          # fraction of ``length`` that is the upper garment


class Wardrobe:
    """Draws each appearance's garment under its face (the ``dress`` hook of :func:`evaluation.synth.render`)."""

    def __init__(self, scene_of_shot: Dict[int, int], garments: Dict[Tuple[int, int], Garment], seed: int) -> None:
        self.scene_of_shot = scene_of_shot
        self.garments = garments
        self._texture_rng = np.random.default_rng([seed, 104729])

    def scene(self, shot: Shot) -> int:
        """The scene index of a shot."""
        return self.scene_of_shot[shot.start]

    def __call__(self, frame: np.ndarray, owner: np.ndarray, index: int, shot: Shot, appearance: Appearance,
                 face_xyxy: np.ndarray) -> None:
        g = self.garments[(self.scene(shot), appearance.gt_id)]
        x1, y1, x2, y2 = (float(v) for v in face_xyxy)
        if not np.all(np.isfinite([x1, y1, x2, y2])):
            return
        fw, fh = x2 - x1, y2 - y1
        cx, top = (x1 + x2) / 2, y2 + g.gap * fh
        height, width = frame.shape[:2]
        left, right = int(round(cx - g.width * fw / 2)), int(round(cx + g.width * fw / 2))
        split = int(round(top + g.split * g.length * fh))
        bottom = int(round(top + g.length * fh))
        for colour, ya, yb in ((g.upper, int(round(top)), split), (g.lower, split, bottom)):
            X0, X1, Y0, Y1 = max(left, 0), min(right, width), max(ya, 0), min(yb, height)
            if X1 <= X0 or Y1 <= Y0:
                continue
            shade = np.linspace(1.08, 0.85, Y1 - Y0, dtype=np.float32)[:, None, None]
            noise = self._texture_rng.normal(0, 9, (Y1 - Y0, X1 - X0, 3)).astype(np.float32)
            patch = np.asarray(colour, np.float32)[None, None, :] * shade + noise
            frame[Y0:Y1, X0:X1] = np.clip(patch, 0, 255).astype(np.uint8)
            owner[Y0:Y1, X0:X1] = index


def dress(scenario: Scenario, *, scenes: int = 3, seed: int = 0) -> Tuple[Scenario, Wardrobe]:
    """Group the scenario's shots into ``scenes`` consecutive runs with their own set-ups and clothes.

    The shots keep their order and lengths; shot ``s`` of scene ``k`` uses
    camera ``k * C + camera`` (``C`` the scenario's cameras), so every scene
    is filmed from set-ups of its own.
    """
    if scenes < 1:
        raise ValueError(f"scenes must be >= 1, got {scenes}")
    rng = np.random.default_rng([seed, 15485863])
    n = len(scenario.shots)
    cameras = max(s.camera for s in scenario.shots) + 1
    bounds = np.linspace(0, n, min(scenes, n) + 1).round().astype(int)
    shots: List[Shot] = []
    scene_of_shot: Dict[int, int] = {}
    for k in range(len(bounds) - 1):
        for shot in scenario.shots[bounds[k]:bounds[k + 1]]:
            shots.append(dataclasses.replace(shot, camera=k * cameras + shot.camera))
            scene_of_shot[shot.start] = k
    garments: Dict[Tuple[int, int], Garment] = {}
    for k in range(len(bounds) - 1):
        for gid in sorted(scenario.ids):
            up, low = rng.integers(0, len(PALETTE), 2)
            garments[(k, gid)] = Garment(PALETTE[int(up)], PALETTE[int(low)], width=float(rng.uniform(1.6, 2.8)),
                                         gap=float(rng.uniform(0.15, 0.55)), length=float(rng.uniform(1.6, 3.0)),
                                         split=float(rng.uniform(0.45, 0.75)))
    return dataclasses.replace(scenario, shots=shots), Wardrobe(scene_of_shot, garments, seed)
