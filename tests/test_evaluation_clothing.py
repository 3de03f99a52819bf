"""The simulator's clothing scenes: own set-ups per scene, a garment under each face, the torso cue on them."""
from __future__ import annotations

import numpy as np
import pytest

from evaluation.clothing import PALETTE, dress
from evaluation.synth import render
from models.torso import TorsoDescriber
from test_evaluation_synth import plain_plan, solid_people


def _dressed(scenes=3, **kw):
    people = solid_people(4)
    plan = plain_plan(people, num_frames=240, faces_per_frame=2, num_cameras=2, **kw)
    return people, plan, *dress(plan, people, scenes=scenes, seed=5)


def test_scenes_are_consecutive_runs_of_shots_with_set_ups_of_their_own():
    _, plan, dressed, wardrobe = _dressed()
    scenes = [wardrobe.scene(s) for s in dressed.shots]
    assert scenes == sorted(scenes) and set(scenes) == {0, 1, 2}
    assert [(s.start, s.end) for s in dressed.shots] == [(s.start, s.end) for s in plan.shots]
    cameras = {k: {s.camera for s in dressed.shots if wardrobe.scene(s) == k} for k in range(3)}
    assert not (cameras[0] & cameras[1]) and not (cameras[1] & cameras[2])


def test_a_person_keeps_their_clothes_within_a_scene_and_the_palette_is_shared():
    _, _, dressed, wardrobe = _dressed()
    garments = wardrobe.garments
    assert {(k, gid) for k in range(3) for gid in dressed.ids} == set(garments)
    assert all(g.upper in PALETTE and g.lower in PALETTE for g in garments.values())
    # Eight colours for every person of every scene: some colours repeat (no shortcut by colour alone).
    uppers = [g.upper for g in garments.values()]
    assert len(set(uppers)) < len(uppers)


def test_the_garment_is_drawn_under_the_face_and_the_torso_cue_sees_it():
    people, _, dressed, wardrobe = _dressed()
    describer = TorsoDescriber()
    checked = 0
    for t, (frame, rows) in enumerate(render(dressed, people, dress=wardrobe)):
        shot = [s for s in dressed.shots if s.start <= t < s.end][0]
        for i, gid in enumerate(rows.ids):
            x, y, w, h = rows.tlwh[i]
            if rows.score[i] < 0.99 or y + 4 * h > dressed.height or x < w or x + 2 * w > dressed.width:
                continue                                  # partly hidden or too near an edge for a clean check
            g = wardrobe.garments[(wardrobe.scene(shot), int(gid))]
            below = frame[int(y + h + g.gap * h + 2), int(x + w / 2)]
            assert np.abs(below.astype(int) - np.array(g.upper)).max() < 60   # shaded and textured, near the colour
            cue = describer.describe(frame, np.array([[x, y, x + w, y + h]], np.float32))
            checked += int(cue.valid[0])
        if checked >= 5:
            break
    assert checked >= 5


def test_dress_rejects_no_scenes():
    _, plan, *_ = _dressed()
    with pytest.raises(ValueError, match="scenes"):
        dress(plan, solid_people(4), scenes=0)


def test_a_scene_cuts_between_its_wide_and_close_up_set_ups_with_one_cast():
    _, plan, dressed, wardrobe = _dressed(scenes=2)
    for k in range(2):
        shots = [s for s in dressed.shots if wardrobe.scene(s) == k]
        assert [s.camera for s in shots] == [2 * k + (j % 2) for j in range(len(shots))]
        cast = {a.person for a in shots[0].appearances}
        assert all({a.person for a in s.appearances} <= cast for s in shots)
        for wide, close in zip(shots[::2], shots[1::2]):
            assert len(close.appearances) <= 2
            assert min(float(a.height.min()) for a in close.appearances) > \
                max(float(a.height.max()) for a in wide.appearances) or len(wide.appearances) == 0
