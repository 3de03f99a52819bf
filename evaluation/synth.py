"""Broadcast simulator: a video of real faces with ground truth we can trust.

The sequence is a run of *shots* separated by hard cuts. Each shot is filmed
by one of a few "cameras" (a textured background, a lighting tint) and shows
a cast drawn afresh from the people, so a cut rearranges everyone. Within a
shot each face follows a path of one kind:

``wander``  smooth cubic path through random waypoints inside the frame;
``abrupt``  piecewise-linear path with sharp turns and a sudden dash;
``walk``    enters from one side, crosses the frame and leaves (the first two
            actors of a shot walk towards each other on the same line, so
            they cross and the one in front occludes the other);
``reenter`` starts inside, walks out of the frame, stays out, comes back.

Faces change scale (slow oscillation or zoom), the lighting drifts and
sometimes jumps, and some shots have a defocus-blur episode; fast faces get
motion blur. The same person keeps the same ground-truth id across cuts and
re-entries (that is what IDF1 rewards).

Ground truth is computed while drawing: the gt box of a face is the face box
of its sprite, scaled and translated exactly as pasted, clipped to the frame;
its visibility is the fraction of the (unclipped) face box whose pixels show
this face, i.e. not covered (alpha >= 0.5) by a face drawn on top and not
outside the frame.

Planning (:func:`plan_sequence`) is pure numpy and deterministic for a seed;
rendering (:func:`render`) turns a plan into frames and gt rows;
:func:`write_sequence` writes a MOTChallenge-style folder.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from tracker.boxes import clip_xyxy, xyxy_to_tlwh

from . import gt as gtio
from .sprites import Sprite

log = logging.getLogger(__name__)

PATH_KINDS = ("wander", "abrupt", "walk", "reenter")
_PATH_P = (0.35, 0.2, 0.25, 0.2)


@dataclass
class Person:
    """Someone who can appear: a name, whether enrolled, sprites to draw."""

    name: str
    enrolled: bool
    sprites: List[Sprite]


@dataclass
class Appearance:
    """One face in one shot, frame by frame (shot-local arrays of length T).

    Attributes
    ----------
    gt_id : int
        Ground-truth id (the same for a person across shots).
    person : int
        Index into the people list.
    sprite : int
        Index into that person's sprites.
    start : int
        0-based global index of the shot's first frame.
    cx, cy : ndarray
        ``(T,)`` face-box centre in pixels (may lie outside the frame).
    height : ndarray
        ``(T,)`` face-box height in pixels.
    z : int
        Drawing order within the shot (higher = in front).
    kind : str
        One of :data:`PATH_KINDS`.
    roll, squeeze_x, squeeze_y : ndarray, optional
        ``(T,)`` head pose of a posed appearance (the broadcast preset,
        :mod:`evaluation.broadcast`): in-plane rotation in degrees and
        horizontal / vertical squeeze factors of the face (approximations of
        a turned and a bowed head, see :func:`evaluation.sprites.posed_sprite`).
        None: the frontal sprite as cut (every default sequence).
    """

    gt_id: int
    person: int
    sprite: int
    start: int
    cx: np.ndarray
    cy: np.ndarray
    height: np.ndarray
    z: int
    kind: str
    roll: Optional[np.ndarray] = None
    squeeze_x: Optional[np.ndarray] = None
    squeeze_y: Optional[np.ndarray] = None


@dataclass
class Shot:
    """A run of frames from one camera: ``[start, end)`` 0-based global."""

    start: int
    end: int
    camera: int
    gain: np.ndarray   # (T,) brightness gain
    tint: np.ndarray   # (3,) BGR offset
    blur: np.ndarray   # (T,) Gaussian sigma of a defocus episode (0 = sharp)
    appearances: List[Appearance] = field(default_factory=list)


@dataclass
class Scenario:
    """A planned sequence (no pixels yet)."""

    width: int
    height: int
    fps: float
    num_frames: int
    seed: int
    shots: List[Shot]
    ids: Dict[int, Tuple[str, bool]]   # gt id -> (person name, enrolled)
    motion_blur: bool = True

    @property
    def cuts(self) -> List[int]:
        """1-based first frames of every shot after the first."""
        return [s.start + 1 for s in self.shots[1:]]


def _check_positive(name: str, value, allow_zero: bool = False) -> None:
    """``ValueError`` naming ``name`` unless ``value`` > 0 (>= 0 with ``allow_zero``)."""
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def face_height_range(width: int, height: int, faces_per_frame: float, *, min_face: int = 40,
                      max_face: Optional[int] = None) -> Tuple[float, float]:
    """Face heights that let ``faces_per_frame`` heads share the frame.

    Each head (about 1.9x the face box) gets at most ~60 % of the frame area
    divided by the number of faces; faces never go under ``min_face`` px.
    """
    top = np.sqrt(0.6 * width * height / max(faces_per_frame, 1)) / 1.9
    top = min(top, 0.3 * height if max_face is None else max_face)
    top = max(top, min_face * 1.25)
    return max(min_face, 0.45 * top), top


def _smooth_path(rng, n_frames, lo, hi, n_points=4):
    """``(n_frames, 2)`` clamped cubic spline through ``n_points`` random
    waypoints in ``[lo, hi]`` (a fixed point for a single frame)."""
    from scipy.interpolate import CubicSpline

    t = np.linspace(0, n_frames - 1, n_points) if n_frames > 1 else np.zeros(1)
    if n_frames <= 1:
        return np.full((n_frames, 2), rng.uniform(lo, hi))
    pts = rng.uniform(lo, hi, size=(n_points, 2))
    return CubicSpline(t, pts, bc_type="clamped")(np.arange(n_frames))


def _abrupt_path(rng, n_frames, lo, hi):
    """``(n_frames, 2)`` piecewise-linear path through 4 to 6 random
    waypoints in ``[lo, hi]``, one of them reached in a three-frame dash."""
    n_points = int(rng.integers(4, 7))
    t = np.sort(rng.choice(np.arange(1, max(n_frames - 1, 2)), size=min(n_points - 2, max(n_frames - 2, 1)),
                           replace=False))
    t = np.concatenate([[0], t, [n_frames - 1]]).astype(float)
    pts = rng.uniform(lo, hi, size=(len(t), 2))
    # A sudden dash: one waypoint reached within three frames of the previous one.
    if len(t) > 2 and n_frames > 8:
        i = int(rng.integers(1, len(t) - 1))
        t[i] = min(t[i - 1] + 3, t[i + 1] - 1)
    frames = np.arange(n_frames)
    return np.stack([np.interp(frames, t, pts[:, 0]), np.interp(frames, t, pts[:, 1])], axis=1)


def _walk_path(rng, n_frames, width, height, size, y=None, direction=None, span=None):
    """``(n_frames, 2)`` walk across the frame from outside to outside at
    height ``y`` (random when None) with a small vertical wobble, in
    ``direction`` (+1: left to right; random when None), lasting ``span``
    frames (random when None; 2 to ``n_frames``) and starting at a random frame."""
    direction = direction if direction is not None else (1 if rng.random() < 0.5 else -1)
    out_x = (-1.2 * size, width + 1.2 * size)
    x0, x1 = (out_x if direction > 0 else out_x[::-1])
    duration = int(span if span is not None else rng.uniform(0.5, 0.95) * n_frames)
    duration = max(2, min(duration, n_frames))
    t0 = int(rng.integers(0, n_frames - duration + 1))
    y = y if y is not None else rng.uniform(0.2 * height, 0.8 * height)
    frames = np.arange(n_frames)
    x = np.interp(frames, [t0, t0 + duration - 1], [x0, x1], left=x0, right=x1)
    wobble = 0.05 * size * np.sin(frames / rng.uniform(6, 14))
    return np.stack([x, y + wobble], axis=1)


def _reenter_path(rng, n_frames, width, height, size, lo, hi):
    """``(n_frames, 2)`` path that starts still inside ``[lo, hi]``, walks out
    of one side, stays out, and comes back to a random point inside."""
    frames = np.arange(n_frames)
    p0 = rng.uniform(lo, hi)
    side = 1 if rng.random() < 0.5 else -1
    out_x = width + 1.3 * size if side > 0 else -1.3 * size
    q = n_frames / 5
    t = np.array([0, q, q * 1.8, q * 1.8 + rng.uniform(0.4, 1.0) * q, n_frames - 1])
    t = np.maximum.accumulate(np.minimum(t, n_frames - 1))
    back = rng.uniform(lo, hi)
    xs = [p0[0], p0[0], out_x, out_x, back[0]]
    ys = [p0[1], p0[1], p0[1], back[1], back[1]]
    return np.stack([np.interp(frames, t, xs), np.interp(frames, t, ys)], axis=1)


def _scale_curve(rng, n_frames, h0):
    """``(n_frames,)`` face heights from ``h0``: a slow oscillation (log
    amplitude 0.05 to 0.25, period 40 to 160 frames) or, as often, a linear
    zoom to 0.6 to 1.6 times ``h0``."""
    frames = np.arange(n_frames)
    if rng.random() < 0.5:
        amp = rng.uniform(0.05, 0.25)
        return h0 * np.exp(amp * np.sin(2 * np.pi * frames / rng.uniform(40, 160) + rng.uniform(0, 2 * np.pi)))
    ratio = rng.uniform(0.6, 1.6)
    return h0 * np.linspace(1.0, ratio, n_frames)


def plan_sequence(people: Sequence[Person], *, seed: int = 0, num_frames: int = 2000,
                  width: int = 1280, height: int = 720, fps: float = 30.0, faces_per_frame: float = 4.0,
                  num_cameras: int = 4, shot_frames: Tuple[int, int] = (90, 300), min_face: int = 40,
                  max_face: Optional[int] = None, lighting: bool = True, blur: bool = True,
                  preset=None) -> Scenario:
    """Plan a sequence: shots, casts, paths, scales, lighting, blur.

    Parameters
    ----------
    people : sequence of Person
        Who may appear; each needs at least one sprite.
    seed : int
        Everything random derives from it (same seed -> same plan).
    num_frames, width, height, fps
        Video length and size.
    faces_per_frame : float
        Cast size per shot (on average; paths that leave the frame make the
        number on screen vary). When it exceeds the number of people, people
        appear more than once (distinct gt ids, same name) -- for scaling
        benchmarks only.
    num_cameras : int
        Distinct backgrounds; consecutive shots use different ones.
    shot_frames : (int, int)
        Range of shot lengths in frames.
    min_face, max_face : int
        Face-box heights in pixels (``max_face`` defaults to what fits).
    lighting, blur : bool
        Enable lighting drift/jumps and defocus/motion blur.
    preset : None, "broadcast" or evaluation.broadcast.BroadcastPreset
        Not None: :func:`evaluation.broadcast.plan_broadcast` plans it (cast, sizes, shots: the preset's).

    Returns
    -------
    Scenario
    """
    if preset is not None:
        return _plan_preset(people, preset, dict(seed=seed, num_frames=num_frames, width=width, height=height,
                                                 fps=fps, lighting=lighting, blur=blur))
    _check_plan_keywords(people, num_frames=num_frames, width=width, height=height, fps=fps,
                         faces_per_frame=faces_per_frame, min_face=min_face, num_cameras=num_cameras,
                         shot_frames=shot_frames)
    # Every random draw comes from this one generator, in a fixed order: per
    # shot, its length and camera, lighting, defocus, cast, then per actor
    # (see _plan_shot); reordering draws changes every sequence of a seed.
    rng = np.random.default_rng(seed)
    h_range = face_height_range(width, height, faces_per_frame, min_face=min_face, max_face=max_face)
    shots: List[Shot] = []
    ids: Dict[int, Tuple[str, bool]] = {}
    start, prev_cam = 0, -1
    while start < num_frames:
        length, camera = _plan_shot_frames(rng, start, num_frames, shot_frames, num_cameras, prev_cam)
        prev_cam = camera
        gain, tint = _plan_lighting(rng, length, lighting)
        sigma = _plan_defocus(rng, length, blur)
        shot = Shot(start, start + length, camera, gain, tint, sigma)
        _plan_cast(rng, shot, people, ids, width=width, height=height, faces_per_frame=faces_per_frame,
                   h_range=h_range, min_face=min_face)
        shots.append(shot)
        start += length
    return Scenario(width, height, fps, num_frames, seed, shots, ids, motion_blur=blur)


def _plan_preset(people: Sequence[Person], preset, keywords: dict) -> Scenario:
    """:func:`evaluation.broadcast.plan_broadcast` of ``preset`` with ``keywords``."""
    from .broadcast import plan_broadcast, resolve_preset

    return plan_broadcast(people, preset=resolve_preset(preset), **keywords)


def _check_plan_keywords(people: Sequence[Person], *, num_frames, width, height, fps, faces_per_frame, min_face,
                         num_cameras, shot_frames) -> None:
    """``ValueError`` naming the first keyword of :func:`plan_sequence` that is out of range."""
    _check_positive("num_frames", num_frames)
    _check_positive("width", width)
    _check_positive("height", height)
    _check_positive("fps", fps)
    _check_positive("faces_per_frame", faces_per_frame)
    _check_positive("min_face", min_face)
    if num_cameras < 1:
        raise ValueError(f"num_cameras must be >= 1, got {num_cameras}")
    if len(shot_frames) != 2 or not 1 <= shot_frames[0] <= shot_frames[1]:
        raise ValueError(f"shot_frames must be (min, max) with 1 <= min <= max, got {shot_frames}")
    if not people or any(not p.sprites for p in people):
        raise ValueError("people must be non-empty and every person needs at least one sprite")


def _plan_shot_frames(rng, start: int, num_frames: int, shot_frames: Tuple[int, int], num_cameras: int,
                      prev_cam: int) -> Tuple[int, int]:
    """Length and camera of the shot starting at frame ``start`` (0-based).

    The length is drawn from ``shot_frames`` (inclusive); when what would
    remain after it is shorter than a shot, the shot runs to the end
    instead. The camera differs from ``prev_cam`` unless there is only one.
    Draws: one integer, one choice.
    """
    length = int(rng.integers(shot_frames[0], shot_frames[1] + 1))
    if num_frames - (start + length) < shot_frames[0]:
        length = num_frames - start  # no stub shot at the end
    cams = [c for c in range(num_cameras) if c != prev_cam] or [0]
    camera = int(rng.choice(cams))
    return length, camera


def _plan_lighting(rng, length: int, lighting: bool) -> Tuple[np.ndarray, np.ndarray]:
    """``(length,)`` brightness gain and ``(3,)`` BGR tint of a shot.

    With ``lighting``: a random level with a slow sinusoidal drift, in 40 %
    of shots longer than 20 frames a step (a light switched on or off), and
    a random tint. Without: gain 1, tint 0, and nothing is drawn.
    """
    if not lighting:
        return np.ones(length), np.zeros(3)
    frames = np.arange(length)
    gain = rng.uniform(0.75, 1.2) * (1 + 0.12 * np.sin(2 * np.pi * frames / rng.uniform(60, 240)))
    if rng.random() < 0.4 and length > 20:  # a light switched on/off
        gain[int(rng.integers(10, length - 5)):] *= rng.uniform(0.75, 1.25)
    tint = rng.uniform(-18, 18, 3)
    return gain, tint


def _plan_defocus(rng, length: int, blur: bool) -> np.ndarray:
    """``(length,)`` Gaussian sigma per frame: 0 (sharp), except, with
    ``blur``, a 15 to 29 frame defocus episode in half of the shots longer
    than 40 frames. Without ``blur`` nothing is drawn."""
    sigma = np.zeros(length)
    if blur and rng.random() < 0.5 and length > 40:
        b0 = int(rng.integers(0, length - 30))
        sigma[b0:b0 + int(rng.integers(15, 30))] = rng.uniform(1.0, 2.5)
    return sigma


def _draw_cast(rng, faces_per_frame: float, n_people: int) -> Tuple[List[int], List[int]]:
    """Who is in a shot: person indices and, per actor, which copy of that person.

    The cast size is ``faces_per_frame`` rounded, varied by -1, 0 or +1 when
    it is at least 3, and at least 1. Up to ``n_people`` actors are distinct
    people (copy 0); beyond that people repeat (copies 1, 2, ...) in a
    random order.
    """
    k = max(1, int(round(faces_per_frame + rng.integers(-1, 2) * (faces_per_frame >= 3))))
    if k <= n_people:
        return list(rng.choice(n_people, size=k, replace=False)), [0] * k
    cast, copies = [], []
    for i in range(k):
        cast.append(i % n_people)
        copies.append(i // n_people)
    order = rng.permutation(k)
    return [cast[i] for i in order], [copies[i] for i in order]


def _plan_cast(rng, shot: Shot, people: Sequence[Person], ids: Dict[int, Tuple[str, bool]], *, width: int,
               height: int, faces_per_frame: float, h_range: Tuple[float, float], min_face: int) -> None:
    """Draw a shot's cast and give each actor a path, a scale curve and a
    sprite: appends to ``shot.appearances`` and records each gt id's
    ``(name, enrolled)`` in ``ids``.

    A person's gt id is ``index + 1``, plus ``copy * len(people)`` for the
    repeated copies. With two actors or more, the first two are the
    crossing pair (:func:`_plan_path`).
    """
    n_people = len(people)
    length = shot.end - shot.start
    cast, copies = _draw_cast(rng, faces_per_frame, n_people)
    k = len(cast)
    z_order = rng.permutation(k)
    lo = np.array([0.12 * width, 0.15 * height])
    hi = np.array([0.88 * width, 0.85 * height])
    cross_y = rng.uniform(0.3 * height, 0.7 * height)
    cross_span = int(rng.uniform(0.5, 0.9) * length)
    for j, (p, copy) in enumerate(zip(cast, copies)):
        h0 = rng.uniform(*h_range)
        crossing = (cross_y, cross_span) if k >= 2 and j < 2 else None
        kind, xy = _plan_path(rng, length, width, height, h0, lo, hi, crossing=crossing, direction=1 if j == 0 else -1)
        hcurve = np.clip(_scale_curve(rng, length, h0), min_face, None)
        gt_id = int(p) + 1 + copy * n_people
        ids[gt_id] = (people[p].name, people[p].enrolled)
        shot.appearances.append(Appearance(gt_id, int(p), int(rng.integers(len(people[p].sprites))), shot.start,
                                           xy[:, 0], xy[:, 1], hcurve, int(z_order[j]), kind))


def _plan_path(rng, length: int, width: int, height: int, h0: float, lo: np.ndarray, hi: np.ndarray, *,
               crossing: Optional[Tuple[float, int]], direction: int) -> Tuple[str, np.ndarray]:
    """The kind and ``(length, 2)`` centre path of one actor with face height ``h0``.

    With ``crossing`` ``(y, span)`` the actor is one of a shot's crossing
    pair: a ``walk`` at about height ``y`` lasting ``span`` frames in
    ``direction`` (+1 left to right). Otherwise the kind is drawn from
    :data:`PATH_KINDS` with probabilities ``_PATH_P``; ``wander``,
    ``abrupt`` and ``reenter`` keep their waypoints inside ``[lo, hi]``.
    """
    if crossing is not None:
        cross_y, cross_span = crossing
        return "walk", _walk_path(rng, length, width, height, h0, y=cross_y + rng.uniform(-0.1, 0.1) * h0,
                                  direction=direction, span=cross_span)
    kind = str(rng.choice(PATH_KINDS, p=_PATH_P))
    if kind == "wander":
        return kind, _smooth_path(rng, length, lo, hi)
    if kind == "abrupt":
        return kind, _abrupt_path(rng, length, lo, hi)
    if kind == "walk":
        return kind, _walk_path(rng, length, width, height, h0)
    return kind, _reenter_path(rng, length, width, height, h0, lo, hi)


def make_backgrounds(num_cameras: int, width: int, height: int, seed: int) -> List[np.ndarray]:
    """One ``(height, width, 3)`` uint8 textured background per camera."""
    rng = np.random.default_rng([seed, 7919])
    out = []
    for _ in range(num_cameras):
        c0, c1 = rng.integers(20, 235, 3), rng.integers(20, 235, 3)
        ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        bg = (c0 * (1 - ramp) + c1 * ramp) * np.ones((1, width, 1), np.float32)
        noise = rng.normal(0, 1, (height // 16 + 1, width // 16 + 1, 3)).astype(np.float32)
        bg += 25 * cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
        for _ in range(int(rng.integers(4, 10))):  # set furniture
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            w, h = int(rng.integers(width // 20, width // 4)), int(rng.integers(height // 20, height // 3))
            cv2.rectangle(bg, (x, y), (x + w, y + h), tuple(float(v) for v in rng.integers(0, 255, 3)), -1)
        out.append(np.clip(bg, 0, 255).astype(np.uint8))
    return out


def _num_cameras(scenario: Scenario) -> int:
    """Backgrounds the scenario needs: one more than the highest camera index."""
    return max(s.camera for s in scenario.shots) + 1


def render(scenario: Scenario, people: Sequence[Person], *, backgrounds: Optional[List[np.ndarray]] = None,
           dress: Optional[Callable] = None) -> Iterator[Tuple[np.ndarray, gtio.BoxTable]]:
    """Draw the sequence.

    ``dress(frame, owner, index, shot, appearance, face_xyxy)``, when given,
    draws what the person wears under each pasted face (front people over
    those behind, :class:`evaluation.clothing.Wardrobe`).

    Yields
    ------
    frame : ndarray
        ``(H, W, 3)`` uint8 BGR.
    rows : BoxTable
        Ground truth of this frame (1-based ``frame``; ``score`` is the
        visibility); faces entirely outside the frame have no row.
    """
    W, H = scenario.width, scenario.height
    if backgrounds is None:
        backgrounds = make_backgrounds(_num_cameras(scenario), W, H, scenario.seed)
    owner = np.empty((H, W), np.int32)
    posed = _PosedSprites()
    for shot in scenario.shots:
        apps = sorted(shot.appearances, key=lambda a: a.z)
        bg = backgrounds[shot.camera]
        for t in range(shot.end - shot.start):
            frame = bg.copy()
            owner.fill(-1)
            boxes: List[np.ndarray] = []
            for i, a in enumerate(apps):
                sprite = people[a.person].sprites[a.sprite]
                if a.roll is not None:
                    sprite = posed(sprite, (a.person, a.sprite), a.roll[t], a.squeeze_x[t], a.squeeze_y[t])
                speed = 0.0
                if t > 0 and scenario.motion_blur:
                    speed = float(np.hypot(a.cx[t] - a.cx[t - 1], a.cy[t] - a.cy[t - 1]))
                box = _paste(frame, owner, i, sprite, a.cx[t], a.cy[t], a.height[t], speed)
                if dress is not None:
                    dress(frame, owner, i, shot, a, box)
                boxes.append(box)
            if shot.blur[t] > 0:
                frame = cv2.GaussianBlur(frame, (0, 0), float(shot.blur[t]))
            if shot.gain[t] != 1 or np.any(shot.tint):
                frame = np.clip(frame.astype(np.float32) * shot.gain[t] + shot.tint, 0, 255).astype(np.uint8)
            yield frame, _gt_rows(shot.start + t + 1, apps, boxes, owner, W, H)


class _PosedSprites:
    """Posed copies of sprites (:func:`evaluation.sprites.posed_sprite`),
    kept for poses rounded to 0.5 degree and 0.01 of squeeze, so a slowly
    turning head is warped once per step and not once per frame."""

    MAX_ENTRIES = 512

    def __init__(self) -> None:
        self._cache: Dict[tuple, Sprite] = {}

    def __call__(self, sprite: Sprite, key: tuple, roll: float, squeeze_x: float, squeeze_y: float) -> Sprite:
        from .sprites import posed_sprite

        q = (round(float(roll) * 2) / 2, round(float(squeeze_x), 2), round(float(squeeze_y), 2))
        full = key + q
        if full not in self._cache:
            if len(self._cache) >= self.MAX_ENTRIES:
                self._cache.clear()
            self._cache[full] = posed_sprite(sprite, roll_deg=q[0], squeeze_x=q[1], squeeze_y=q[2])
        return self._cache[full]


def _paste(frame, owner, index, sprite: Sprite, cx, cy, face_h, speed) -> np.ndarray:
    """Alpha-blend ``sprite`` so its face box is centred at ``(cx, cy)`` with
    height ``face_h``; mark its opaque pixels in ``owner``. Returns the face
    box ``(4,)`` xyxy as drawn (unclipped), or NaNs when nothing is drawn."""
    H, W = owner.shape
    sh, sw = sprite.image.shape[:2]
    scale = face_h / sprite.face_height
    nw, nh = max(2, int(round(sw * scale))), max(2, int(round(sh * scale)))
    sx, sy = nw / sw, nh / sh
    f = sprite.face_xyxy * np.array([sx, sy, sx, sy])
    x0 = int(round(cx - (f[0] + f[2]) / 2))
    y0 = int(round(cy - (f[1] + f[3]) / 2))
    face = f + np.array([x0, y0, x0, y0])
    X0, Y0, X1, Y1 = max(x0, 0), max(y0, 0), min(x0 + nw, W), min(y0 + nh, H)
    if X1 <= X0 or Y1 <= Y0:
        return face
    img = cv2.resize(sprite.image, (nw, nh), interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
    alpha = cv2.resize(sprite.alpha, (nw, nh), interpolation=cv2.INTER_LINEAR)
    if speed > 8:  # motion blur along x, a few pixels for fast faces
        k = int(min(15, speed / 2)) | 1
        img = cv2.blur(img, (k, 1))
    sl = (slice(Y0 - y0, Y1 - y0), slice(X0 - x0, X1 - x0))
    a = alpha[sl][..., None]
    roi = frame[Y0:Y1, X0:X1]
    roi[:] = (img[sl].astype(np.float32) * a + roi.astype(np.float32) * (1 - a) + 0.5).astype(np.uint8)
    owner[Y0:Y1, X0:X1][alpha[sl] >= 0.5] = index
    return face


def _gt_rows(frame_no, apps, boxes, owner, W, H) -> gtio.BoxTable:
    """Ground truth of one drawn frame: per appearance whose face box
    (``boxes``, unclipped xyxy) overlaps the frame, the clipped tlwh box and
    its visibility (the fraction of the unclipped box whose pixels ``owner``
    gives to that appearance, i.e. drawn last there); ``frame_no`` is 1-based."""
    ids, tlwh, vis = [], [], []
    for i, (a, box) in enumerate(zip(apps, boxes)):
        clipped = clip_xyxy(box, W, H)
        if clipped[2] - clipped[0] <= 0 or clipped[3] - clipped[1] <= 0:
            continue
        ix1, iy1, ix2, iy2 = (int(round(v)) for v in box)
        full = max(1, (ix2 - ix1) * (iy2 - iy1))
        region = owner[max(iy1, 0):max(min(iy2, H), 0), max(ix1, 0):max(min(ix2, W), 0)]
        visible = int(np.count_nonzero(region == i))
        ids.append(a.gt_id)
        tlwh.append(xyxy_to_tlwh(clipped))
        vis.append(min(1.0, visible / full))
    n = len(ids)
    return gtio.BoxTable(np.full(n, frame_no), np.array(ids), np.array(tlwh).reshape(-1, 4), np.array(vis))


def concat_tables(tables: Sequence[gtio.BoxTable]) -> gtio.BoxTable:
    """Stack per-frame tables into one."""
    tables = [t for t in tables if len(t)]
    if not tables:
        return gtio.BoxTable.empty()
    return gtio.BoxTable(np.concatenate([t.frame for t in tables]), np.concatenate([t.ids for t in tables]),
                         np.concatenate([t.tlwh for t in tables]), np.concatenate([t.score for t in tables]))


def write_sequence(out_dir: Path, scenario: Scenario, people: Sequence[Person], *, progress: bool = False,
                   video_name: str = "video.mp4", extra_info: Optional[dict] = None, codec: str = "mp4v",
                   bitrate: Optional[int] = None, dress: Optional[Callable] = None) -> gtio.GroundTruth:
    """Render and write a MOTChallenge-style folder.

    Writes ``video.mp4``, ``gt/gt.txt``, ``identities.json``, ``cuts.txt``,
    ``seqinfo.ini`` and ``synth.json`` (the parameters) under ``out_dir``.
    ``codec`` ``"mp4v"`` (OpenCV, the default sequences) or ``"h264"``
    (ffmpeg at ``bitrate``, see :func:`evaluation.video.open_writer`); with
    H.264 ``synth.json`` records ``video_codec`` and ``bitrate``. ``dress``: see :func:`render`.
    """
    from .video import broadcast_bitrate, open_writer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if codec == "h264":
        bitrate = bitrate or broadcast_bitrate(scenario.width, scenario.height)
    writer, used_codec = open_writer(out_dir / video_name, scenario.fps, (scenario.width, scenario.height),
                                     codec=codec, bitrate=bitrate)
    tables = []
    frames = render(scenario, people, dress=dress)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, total=scenario.num_frames, desc="synth", unit="frame")
    try:
        for frame, rows in frames:
            writer.write(frame)
            tables.append(rows)
    finally:
        writer.release()
    table = concat_tables(tables)
    gtio.write_mot_gt(out_dir / gtio.GT_FILE, table)
    identities = {}
    for gid, (name, enrolled) in sorted(scenario.ids.items()):
        sprites = sorted({people[a.person].sprites[a.sprite].source
                          for s in scenario.shots for a in s.appearances if a.gt_id == gid})
        identities[gid] = gtio.Identity(name, enrolled, {"sprites": sprites})
    gtio.write_identities(out_dir / gtio.IDENTITIES_FILE, identities)
    gtio.write_cuts(out_dir / gtio.CUTS_FILE, scenario.cuts)
    gtio.write_seqinfo(out_dir / gtio.SEQINFO_FILE, name=out_dir.name, frame_rate=scenario.fps,
                       num_frames=scenario.num_frames, width=scenario.width, height=scenario.height,
                       video=video_name)
    info = {"seed": scenario.seed, "num_frames": scenario.num_frames, "width": scenario.width,
            "height": scenario.height, "fps": scenario.fps, "num_shots": len(scenario.shots),
            "paths": {k: sum(a.kind == k for s in scenario.shots for a in s.appearances) for k in PATH_KINDS}}
    if codec != "mp4v":
        info.update(video_codec=used_codec, bitrate=bitrate if used_codec == "h264" else None)
    info.update(extra_info or {})
    (out_dir / "synth.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return gtio.GroundTruth(table, identities, scenario.fps, scenario.num_frames, scenario.cuts)


def people_from_folders(photo_dirs: Sequence[Path], detect, *, gallery_dir: Optional[Path] = None,
                        min_face: int = 40) -> List[Person]:
    """People from photo folders (see :func:`evaluation.sprites.list_people`).

    A person is enrolled when ``gallery_dir`` has a folder of that name
    (without ``gallery_dir``: when the name does not start with ``_``).
    Sprites come from the first folder in ``photo_dirs`` that is not the
    gallery and has photos of that person, so an enrolled person is drawn
    from a photo that is not in the gallery whenever one exists; otherwise
    from the gallery photos (recorded in ``identities.json``).
    """
    from .sprites import list_people, sprites_from_photos

    gallery_people = set()
    if gallery_dir is not None:
        gallery_people = {n for n in list_people(gallery_dir) if not n.startswith("_")}
    sources: Dict[str, List[Path]] = {}
    fallback: Dict[str, List[Path]] = {}
    for d in photo_dirs:
        is_gallery = gallery_dir is not None and Path(d).resolve() == Path(gallery_dir).resolve()
        for name, photos in list_people(d).items():
            target = fallback if is_gallery else sources
            target.setdefault(name, photos)
    people = []
    for name in sorted(set(sources) | set(fallback)):
        photos = sources.get(name) or fallback[name]
        sprites = sprites_from_photos(photos, detect, min_face=min_face)
        if not sprites:
            log.warning("no usable face for %s: left out", name)
            continue
        enrolled = name in gallery_people if gallery_dir is not None else not name.startswith("_")
        people.append(Person(name, enrolled, sprites))
    return people
