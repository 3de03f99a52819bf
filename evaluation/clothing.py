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

``dress(scenario, people, scenes=3)`` returns the re-cast scenario and a
:class:`Wardrobe` to pass to :func:`evaluation.synth.render` (``dress=``).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

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


def dress(scenario: Scenario, people: Sequence, *, scenes: int = 3, seed: int = 0,
          close_up: Tuple[float, float] = (3.0, 110.0)) -> Tuple[Scenario, Wardrobe]:
    """Make the scenario's shots ``scenes`` scenes with a cast, two set-ups and clothes of their own.

    The shots keep their order and lengths. In scene ``k`` the cast is the
    people of its first shot; its shots alternate between a wide set-up
    (camera ``2k``: the whole cast, on the paths the plan drew) and a
    close-up set-up (camera ``2k + 1``: two of the cast, in turn, their faces
    ``close_up[0]`` times larger up to ``close_up[1]`` pixels), so the editor
    cuts back and forth as in a sitcom scene and the wide shots' small faces
    can be named from the close-ups' large ones. A set-up keeps the lighting
    of its first shot in the scene.
    """
    if scenes < 1:
        raise ValueError(f"scenes must be >= 1, got {scenes}")
    rng = np.random.default_rng([seed, 15485863])
    n = len(scenario.shots)
    bounds = np.linspace(0, n, min(scenes, n) + 1).round().astype(int)
    shots: List[Shot] = []
    scene_of_shot: Dict[int, int] = {}
    ids = dict(scenario.ids)
    for k in range(len(bounds) - 1):
        group = scenario.shots[bounds[k]:bounds[k + 1]]
        cast = sorted({a.person for a in group[0].appearances})
        for j, shot in enumerate(group):
            recast = _recast(shot, j, k, cast, people, close_up)
            if j >= 2:            # a set-up keeps its lighting within the scene (the shot two before is the same one)
                lit = shots[-2]
                recast = dataclasses.replace(recast, tint=lit.tint, gain=np.resize(lit.gain, len(shot.gain)))
            shots.append(recast)
            scene_of_shot[shot.start] = k
        for p in cast:
            ids[p + 1] = (people[p].name, people[p].enrolled)
    garments: Dict[Tuple[int, int], Garment] = {}
    for k in range(len(bounds) - 1):
        for gid in sorted(ids):
            up, low = rng.integers(0, len(PALETTE), 2)
            garments[(k, gid)] = Garment(PALETTE[int(up)], PALETTE[int(low)], width=float(rng.uniform(1.6, 2.8)),
                                         gap=float(rng.uniform(0.15, 0.55)), length=float(rng.uniform(1.6, 3.0)),
                                         split=float(rng.uniform(0.45, 0.75)))
    return (dataclasses.replace(scenario, shots=shots, ids=ids),
            Wardrobe(scene_of_shot, garments, seed))


def _recast(shot: Shot, j: int, scene: int, cast: List[int], people: Sequence, close_up) -> Shot:
    """Shot ``j`` of a scene with the scene's ``cast``: wide (even ``j``) or a close-up of two (odd ``j``)."""
    wide = j % 2 == 0
    paths = shot.appearances[:len(cast)] if wide else shot.appearances[:2]
    first = (j // 2 * 2) % len(cast)
    who = cast if wide else [cast[(first + i) % len(cast)] for i in range(min(2, len(cast)))]
    appearances = []
    for a, p in zip(paths, who):
        height = a.height if wide else np.minimum(a.height * close_up[0], close_up[1])
        appearances.append(dataclasses.replace(a, gt_id=p + 1, person=p, sprite=a.sprite % len(people[p].sprites),
                                               height=height))
    return dataclasses.replace(shot, camera=2 * scene + (0 if wide else 1), appearances=appearances)
