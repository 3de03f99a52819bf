"""The broadcast preset of the simulator: wide shots full of small faces.

Real wide shots (a studio audience, a panel, a stage) show many faces 15 to
50 px tall; the default simulator never draws one under 40 px. This preset
plans sequences of that regime, drawn the way a camera makes them:

* faces 14 to 40 px tall (log-uniform per appearance, a slow zoom of
  0.85-1.15 on top, clipped to the range), each sprite scaled down from its
  photo with ``cv2.INTER_AREA`` (area averaging, as a sensor integrates);
* 4 to 8 people per shot, each in a slot of the frame's width so that a
  wide shot's cast stands side by side; about a third of them people who are
  not enrolled (the ``_unknown`` photos and every face of the crowd photos,
  :func:`crowd_people`); the first two walk towards each other and cross;
* turned, rolled and bowed heads on about 60 % of the appearances, made
  from the frontal photos (:func:`evaluation.sprites.posed_sprite`):
  horizontal squeeze down to 0.6 for yaw, vertical squeeze down to 0.8 for a
  bowed head, in-plane rotation up to 15 degrees; these are approximations
  (no occluded half face, no profile), documented as such. Every photo of a
  person is a sprite, so the photos' own poses are used as they are;
* the finished video encoded as H.264 at about 3 Mbit/s at 1280x720
  (:mod:`evaluation.video`), which smears what little detail 20 px faces
  have, as a broadcast stream does.

Planning is pure numpy, deterministic for a seed, and draws from its own
generator (``default_rng([seed, 1879])``), so the default sequences of
:func:`evaluation.synth.plan_sequence` are untouched.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .synth import (Appearance, Person, Scenario, Shot, _check_plan_keywords, _plan_defocus, _plan_lighting,
                    _plan_path, _plan_shot_frames)

#: The preset's name for :func:`evaluation.synth.plan_sequence` and ``python -m evaluation synth --preset``.
PRESET_NAMES = ("broadcast",)
#: Crowd photos (every face a person who is not enrolled) under ``../shared/data``, when present.
DEFAULT_CROWD_PHOTOS = ("probe/_group/dlib_bald_guys.jpg",)


@dataclass(frozen=True)
class BroadcastPreset:
    """The broadcast preset's parameters (see the module docstring).

    Attributes
    ----------
    min_face, max_face : float
        Face-box heights in pixels, whatever the frame size.
    cast : (int, int)
        People per shot, inclusive (capped by the people available).
    unknown_share : float
        Expected fraction of a shot's cast who are not enrolled.
    shot_frames : (int, int)
        Shot lengths in frames.
    num_cameras : int
        Backgrounds.
    zoom : (float, float)
        Range of the linear zoom over a shot (end height / start height).
    posed_share : float
        Fraction of appearances whose head turns, rolls and bows.
    max_roll_deg, min_squeeze_x, min_squeeze_y : float
        Pose limits (:func:`evaluation.sprites.posed_sprite`).
    bitrate_720p : int
        H.264 bits per second at 1280x720 (scaled by the pixel count).
    """

    min_face: float = 14.0
    max_face: float = 40.0
    cast: Tuple[int, int] = (4, 8)
    unknown_share: float = 0.35
    shot_frames: Tuple[int, int] = (90, 240)
    num_cameras: int = 4
    zoom: Tuple[float, float] = (0.85, 1.15)
    posed_share: float = 0.6
    max_roll_deg: float = 15.0
    min_squeeze_x: float = 0.6
    min_squeeze_y: float = 0.8
    bitrate_720p: int = 3_000_000

    def __post_init__(self) -> None:
        if not 0 < self.min_face <= self.max_face:
            raise ValueError(f"need 0 < min_face <= max_face, got {self.min_face}, {self.max_face}")
        if not 1 <= self.cast[0] <= self.cast[1]:
            raise ValueError(f"cast must be (min, max) with 1 <= min <= max, got {self.cast}")
        if not 0 <= self.unknown_share <= 1 or not 0 <= self.posed_share <= 1:
            raise ValueError("unknown_share and posed_share must be in [0, 1]")
        if not (0 < self.min_squeeze_x <= 1 and 0 < self.min_squeeze_y <= 1):
            raise ValueError("min_squeeze_x and min_squeeze_y must be in (0, 1]")


#: The broadcast preset.
BROADCAST = BroadcastPreset()


def resolve_preset(preset) -> BroadcastPreset:
    """``"broadcast"`` -> :data:`BROADCAST`; a :class:`BroadcastPreset` as it is; else ``ValueError``."""
    if isinstance(preset, BroadcastPreset):
        return preset
    if preset == "broadcast":
        return BROADCAST
    raise ValueError(f"preset must be one of {PRESET_NAMES} or a BroadcastPreset, got {preset!r}")


def plan_broadcast(people: Sequence[Person], *, seed: int = 0, num_frames: int = 2000, width: int = 1280,
                   height: int = 720, fps: float = 30.0, preset: BroadcastPreset = BROADCAST, lighting: bool = True,
                   blur: bool = True) -> Scenario:
    """Plan a broadcast-preset sequence (see the module docstring).

    Parameters are those of :func:`evaluation.synth.plan_sequence`; the
    cast, sizes, shots and poses come from ``preset``. A person's gt id is
    their index + 1, the same in every shot.
    """
    _check_plan_keywords(people, num_frames=num_frames, width=width, height=height, fps=fps, faces_per_frame=1,
                         min_face=preset.min_face, num_cameras=preset.num_cameras, shot_frames=preset.shot_frames)
    rng = np.random.default_rng([seed, 1879])
    shots: List[Shot] = []
    ids: Dict[int, Tuple[str, bool]] = {}
    start, prev_cam = 0, -1
    while start < num_frames:
        length, camera = _plan_shot_frames(rng, start, num_frames, preset.shot_frames, preset.num_cameras, prev_cam)
        prev_cam = camera
        gain, tint = _plan_lighting(rng, length, lighting)
        shot = Shot(start, start + length, camera, gain, tint, _plan_defocus(rng, length, blur))
        _plan_wide_cast(rng, shot, people, ids, width=width, height=height, preset=preset)
        shots.append(shot)
        start += length
    return Scenario(width, height, fps, num_frames, seed, shots, ids, motion_blur=blur)


def draw_broadcast_cast(rng, people: Sequence[Person], preset: BroadcastPreset) -> List[int]:
    """Person indices of one shot: ``preset.cast`` people, each not enrolled
    with probability ``unknown_share`` (as far as there are such people), in
    a random order."""
    enrolled = [i for i, p in enumerate(people) if p.enrolled]
    others = [i for i, p in enumerate(people) if not p.enrolled]
    k = min(int(rng.integers(preset.cast[0], preset.cast[1] + 1)), len(people))
    n_other = min(int(rng.binomial(k, preset.unknown_share)) if others else 0, len(others))
    n_other = max(n_other, k - len(enrolled))
    picked = list(rng.choice(others, size=n_other, replace=False)) if n_other else []
    if k - n_other:
        picked += list(rng.choice(enrolled, size=k - n_other, replace=False))
    return [int(i) for i in rng.permutation(picked)]


def _plan_wide_cast(rng, shot: Shot, people: Sequence[Person], ids: Dict[int, Tuple[str, bool]], *, width: int,
                    height: int, preset: BroadcastPreset) -> None:
    """A shot's cast side by side: actor ``j`` of ``k`` keeps its waypoints in
    the ``j``-th of ``k`` vertical slots of the frame (the first two are the
    crossing pair of :func:`evaluation.synth._plan_path`); sizes and poses
    per :func:`_plan_heights` and :func:`plan_pose`."""
    length = shot.end - shot.start
    cast = draw_broadcast_cast(rng, people, preset)
    k = len(cast)
    z_order = rng.permutation(k)
    cross_y = rng.uniform(0.35 * height, 0.65 * height)
    cross_span = int(rng.uniform(0.5, 0.9) * length)
    for j, p in enumerate(cast):
        h0 = float(np.exp(rng.uniform(np.log(preset.min_face), np.log(preset.max_face))))
        lo = np.array([(0.05 + 0.9 * j / k) * width, 0.2 * height])
        hi = np.array([(0.05 + 0.9 * (j + 1) / k) * width, 0.8 * height])
        crossing = (cross_y, cross_span) if k >= 2 and j < 2 else None
        kind, xy = _plan_path(rng, length, width, height, h0, lo, hi, crossing=crossing,
                              direction=1 if j == 0 else -1)
        heights = _plan_heights(rng, length, h0, preset)
        ids[p + 1] = (people[p].name, people[p].enrolled)
        roll, sx, sy = plan_pose(rng, length, preset)
        shot.appearances.append(Appearance(p + 1, p, int(rng.integers(len(people[p].sprites))), shot.start,
                                           xy[:, 0], xy[:, 1], heights, int(z_order[j]), kind, roll, sx, sy))


def _plan_heights(rng, length: int, h0: float, preset: BroadcastPreset) -> np.ndarray:
    """``(length,)`` face heights: ``h0`` zoomed linearly by a factor in
    ``preset.zoom`` over the shot, clipped to ``[min_face, max_face]``."""
    ratio = rng.uniform(*preset.zoom)
    return np.clip(h0 * np.linspace(1.0, ratio, length), preset.min_face, preset.max_face)


def plan_pose(rng, length: int, preset: BroadcastPreset):
    """``(roll, squeeze_x, squeeze_y)``, each ``(length,)``, or three Nones
    for a frontal appearance (probability ``1 - posed_share``).

    A posed head rolls about a random offset with a slow sway, turns away
    and back (``squeeze_x``: ``1 - depth * (1 - cos) / 2`` with a period of
    2 to 6 s at 30 fps) and bows now and then (``squeeze_y``, likewise).
    """
    if rng.random() >= preset.posed_share:
        return None, None, None
    t = np.arange(length)
    r0, r1 = rng.uniform(-0.6, 0.6) * preset.max_roll_deg, rng.uniform(0, 0.4) * preset.max_roll_deg
    roll = np.clip(r0 + r1 * np.sin(2 * np.pi * t / rng.uniform(60, 180) + rng.uniform(0, 2 * np.pi)),
                   -preset.max_roll_deg, preset.max_roll_deg)
    turn = rng.uniform(0, 1) * (1 - np.cos(2 * np.pi * t / rng.uniform(60, 180) + rng.uniform(0, 2 * np.pi))) / 2
    bow = rng.uniform(0, 1) * (1 - np.cos(2 * np.pi * t / rng.uniform(60, 180) + rng.uniform(0, 2 * np.pi))) / 2
    squeeze_x = 1 - (1 - preset.min_squeeze_x) * turn
    squeeze_y = 1 - (1 - preset.min_squeeze_y) * bow
    return roll, squeeze_x, squeeze_y


def crowd_people(photos: Sequence[Path], detect, *, min_face: int = 24) -> List[Person]:
    """People who are not enrolled, one per face found in each crowd photo
    (:func:`evaluation.sprites.sprites_of_every_face`), named
    ``_crowd/<photo stem>-<i>`` left to right."""
    from .sprites import sprites_of_every_face

    out = []
    for photo in photos:
        for i, sprite in enumerate(sprites_of_every_face(Path(photo), detect, min_face=min_face)):
            out.append(Person(f"_crowd/{Path(photo).stem}-{i}", False, [sprite]))
    return out


def height_distribution(heights: np.ndarray, edges: Sequence[float] = (0, 14, 20, 25, 30, 35, 40.5, np.inf)) -> list:
    """``[(lo, hi, count, share), ...]`` of face heights over ``edges`` (for the docs and the CLI)."""
    heights = np.asarray(heights, float)
    counts, _ = np.histogram(heights, bins=np.asarray(edges, float))
    n = max(len(heights), 1)
    return [(float(lo), float(hi), int(c), c / n) for lo, hi, c in zip(edges[:-1], edges[1:], counts)]
