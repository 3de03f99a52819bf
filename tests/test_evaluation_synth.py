"""The broadcast simulator: ground truth matches what is drawn, determinism,
cuts and ids, files on disk, and that it defeats a tracker without appearance."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from evaluation import gt as gtio
from evaluation import metrics
from evaluation.sprites import Sprite, elliptical_alpha, make_sprite, synthetic_sprite
from evaluation.synth import Person, concat_tables, make_backgrounds, plan_sequence, render, write_sequence
from tracker.boxes import iou_matrix, tlwh_to_xyxy

# Pure colours far from each other; the sprite texture is random, so tests
# look for the largest blob of a colour, not single pixels.
COLOURS = [(0, 255, 0), (255, 0, 255), (0, 0, 255), (255, 255, 0), (255, 0, 0), (0, 255, 255)]


def solid_people(n=4, size=80):
    return [Person(f"p{i}", i % 2 == 0, [synthetic_sprite(i, size=size, face_color=COLOURS[i], textured=False)])
            for i in range(n)]


def colour_mask(frame, colour, tol=3, open_=True):
    diff = np.abs(frame.astype(int) - np.array(colour)[None, None, :]).max(axis=2)
    mask = (diff <= tol).astype(np.uint8)
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) if open_ else mask


def blob_box(mask):
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n <= 1:
        return None
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = stats[i, :4]
    return np.array([x, y, x + w, y + h], float)


def plain_plan(people, **kw):
    args = dict(seed=3, num_frames=120, width=480, height=320, faces_per_frame=1, num_cameras=2,
                shot_frames=(30, 50), min_face=30, lighting=False, blur=False)
    args.update(kw)
    return plan_sequence(people, **args)


def black(scenario):
    return [np.zeros((scenario.height, scenario.width, 3), np.uint8)] * (max(s.camera for s in scenario.shots) + 1)


def test_gt_box_is_the_drawn_face():
    people = solid_people()
    sc = plain_plan(people)
    checked = 0
    for frame, rows in render(sc, people, backgrounds=black(sc)):
        for gid, tlwh, vis in zip(rows.ids, rows.tlwh, rows.score):
            if vis < 0.999:
                continue
            box = blob_box(colour_mask(frame, COLOURS[gid - 1]))
            assert box is not None, "a fully visible face must be drawn"
            np.testing.assert_allclose(box, tlwh_to_xyxy(tlwh), atol=2.0)
            checked += 1
    assert checked > 50


def test_visibility_is_the_visible_fraction_of_the_face():
    # Hard-edged sprites: with a soft edge a pixel shows a blend of two faces,
    # which the gt counts for the face with alpha >= 0.5 but a colour test cannot see.
    people = [Person(p.name, p.enrolled, [Sprite(s.image, (s.alpha >= 0.5).astype(np.float32), s.face_xyxy)])
              for p in solid_people(6, size=70) for s in p.sprites]
    sc = plain_plan(people, faces_per_frame=5, num_frames=150, width=400, height=300, shot_frames=(150, 150))
    occluded = 0
    for frame, rows in render(sc, people, backgrounds=black(sc)):
        for gid, tlwh, vis in zip(rows.ids, rows.tlwh, rows.score):
            x, y, w, h = np.round(tlwh).astype(int)
            # compare only faces fully inside the frame (the box is not clipped)
            if x <= 0 or y <= 0 or x + w >= sc.width or y + h >= sc.height or w < 40:
                continue
            # the face's own 2-px rim is blended with its texture by resizing: look inside it
            measured = colour_mask(frame, COLOURS[gid - 1], open_=False)[y + 2:y + h - 2, x + 2:x + w - 2].mean()
            assert measured == pytest.approx(vis, abs=0.08), (gid, vis, measured)
            occluded += vis < 0.9
    assert occluded > 10, "the sequence should contain occlusions"


def test_faces_outside_the_frame_have_no_rows_and_clipped_boxes_stay_inside():
    people = solid_people()
    sc = plain_plan(people, num_frames=200, faces_per_frame=3, shot_frames=(100, 100))
    rows = concat_tables([r for _, r in render(sc, people, backgrounds=black(sc))])
    xyxy = tlwh_to_xyxy(rows.tlwh)
    assert (xyxy[:, 0] >= 0).all() and (xyxy[:, 1] >= 0).all()
    assert (xyxy[:, 2] <= sc.width).all() and (xyxy[:, 3] <= sc.height).all()
    assert (rows.tlwh[:, 2] > 0).all() and (rows.tlwh[:, 3] > 0).all()
    # walkers leave the frame: some appearance has frames without a row
    per_id = {g: len(np.unique(rows.frame[rows.ids == g])) for g in np.unique(rows.ids)}
    assert min(per_id.values()) < sc.num_frames


def test_same_seed_same_sequence_other_seed_differs():
    people = [Person(f"p{i}", True, [synthetic_sprite(i, size=40)]) for i in range(5)]
    kw = dict(num_frames=40, width=320, height=240, faces_per_frame=3, shot_frames=(15, 25), min_face=20)
    a = list(render(plan_sequence(people, seed=5, **kw), people))
    b = list(render(plan_sequence(people, seed=5, **kw), people))
    c = list(render(plan_sequence(people, seed=6, **kw), people))
    for (fa, ra), (fb, rb) in zip(a, b):
        assert np.array_equal(fa, fb)
        assert np.array_equal(ra.tlwh, rb.tlwh) and np.array_equal(ra.ids, rb.ids)
    assert any(not np.array_equal(fa, fc) for (fa, _), (fc, _) in zip(a, c))


def test_cuts_rearrange_people_and_ids_follow_people():
    people = [Person(f"p{i}", i < 4, [synthetic_sprite(i, size=40)]) for i in range(8)]
    sc = plan_sequence(people, seed=1, num_frames=600, width=640, height=360, faces_per_frame=3,
                       shot_frames=(60, 120), min_face=20)
    assert len(sc.cuts) >= 4
    assert sc.cuts == [s.start + 1 for s in sc.shots[1:]]
    assert sc.shots[-1].end == sc.num_frames
    assert all(a.camera != b.camera for a, b in zip(sc.shots, sc.shots[1:]))
    seen = {}
    for shot in sc.shots:
        for app in shot.appearances:
            name = people[app.person].name
            assert seen.setdefault(app.gt_id, name) == name
            assert sc.ids[app.gt_id] == (name, people[app.person].enrolled)
    # someone appears in more than one shot (re-identification is needed)
    shots_of = {}
    for i, shot in enumerate(sc.shots):
        for app in shot.appearances:
            shots_of.setdefault(app.gt_id, set()).add(i)
    assert max(len(v) for v in shots_of.values()) >= 2
    kinds = {a.kind for s in sc.shots for a in s.appearances}
    assert {"walk", "wander"} <= kinds


def test_more_faces_than_people_reuses_people_with_distinct_ids():
    people = [Person(f"p{i}", True, [synthetic_sprite(i, size=30)]) for i in range(3)]
    sc = plan_sequence(people, seed=0, num_frames=20, width=640, height=360, faces_per_frame=7, min_face=16)
    ids = [a.gt_id for a in sc.shots[0].appearances]
    assert len(set(ids)) == len(ids) >= 6
    assert {sc.ids[i][0] for i in ids} == {"p0", "p1", "p2"}


@pytest.mark.parametrize("kw, name", [
    (dict(num_frames=0), "num_frames"), (dict(width=-1), "width"), (dict(faces_per_frame=0), "faces_per_frame"),
    (dict(num_cameras=0), "num_cameras"), (dict(shot_frames=(10, 5)), "shot_frames"), (dict(fps=0), "fps"),
])
def test_plan_rejects_bad_keywords(kw, name):
    people = [Person("p", True, [synthetic_sprite(0, size=30)])]
    with pytest.raises(ValueError, match=name):
        plan_sequence(people, **kw)


def test_plan_needs_sprites():
    with pytest.raises(ValueError, match="people"):
        plan_sequence([Person("p", True, [])])


def test_write_sequence_files_round_trip(tmp_path):
    people = [Person(f"p{i}", i < 2, [synthetic_sprite(i, size=40)]) for i in range(4)]
    sc = plan_sequence(people, seed=2, num_frames=60, width=320, height=240, faces_per_frame=2,
                       shot_frames=(20, 30), min_face=20)
    truth = write_sequence(tmp_path / "seq", sc, people)
    for name in ("video.mp4", "gt/gt.txt", "identities.json", "cuts.txt", "seqinfo.ini", "synth.json"):
        assert (tmp_path / "seq" / name).exists(), name
    loaded = gtio.load_ground_truth(tmp_path / "seq")
    assert len(loaded.boxes) == len(truth.boxes) > 0
    np.testing.assert_allclose(np.sort(loaded.boxes.tlwh, axis=0), np.sort(truth.boxes.tlwh, axis=0), atol=0.01)
    assert loaded.cuts == sc.cuts and loaded.num_frames == 60 and loaded.frame_rate == 30
    assert {k: (v.name, v.enrolled) for k, v in loaded.identities.items()} == sc.ids
    cap = cv2.VideoCapture(str(tmp_path / "seq" / "video.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 60


def _iou_only_tracker(truth, iou_min=0.3):
    """Greedy frame-to-frame IoU association on perfect detections: no appearance."""
    by = truth.boxes.by_frame()
    prev_ids, prev_boxes, next_id = [], np.zeros((0, 4)), 1
    frames, ids, boxes = [], [], []
    for f in sorted(by):
        rows = by[f]
        cur = tlwh_to_xyxy(truth.boxes.tlwh[rows]).reshape(-1, 4)
        iou = iou_matrix(cur, prev_boxes)
        cur_ids = []
        used = set()
        for i in range(len(cur)):
            j = int(np.argmax(iou[i])) if iou.shape[1] else -1
            if j >= 0 and iou[i, j] >= iou_min and j not in used:
                used.add(j)
                cur_ids.append(prev_ids[j])
            else:
                cur_ids.append(next_id)
                next_id += 1
        frames += [f] * len(cur)
        ids += cur_ids
        boxes.append(truth.boxes.tlwh[rows])
        prev_ids, prev_boxes = cur_ids, cur
    return gtio.BoxTable(np.array(frames), np.array(ids), np.concatenate(boxes), np.ones(len(frames)))


def test_a_tracker_without_appearance_fails_the_sequence():
    people = [Person(f"p{i}", True, [synthetic_sprite(i, size=40)]) for i in range(8)]
    sc = plan_sequence(people, seed=0, num_frames=400, width=640, height=360, faces_per_frame=4,
                       shot_frames=(60, 120), min_face=24)
    truth = gtio.GroundTruth(concat_tables([r for _, r in render(sc, people)]),
                             {g: gtio.Identity(n, e) for g, (n, e) in sc.ids.items()}, 30.0, sc.num_frames, sc.cuts)
    result = metrics.score(truth, _iou_only_tracker(truth))
    assert result["mota"] > 0.9          # detections are perfect ...
    assert result["idf1"] < 0.8          # ... but identities are lost at cuts and re-entries


def test_sprite_face_box_is_opaque():
    img = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    s = make_sprite(img, (120, 50, 180, 130))
    x1, y1, x2, y2 = np.round(s.face_xyxy).astype(int)
    assert s.alpha[y1:y2, x1:x2].min() >= 0.5
    assert s.alpha[0, 0] == 0
    # the crop shows the photo around the face (reflect-padded where it runs out)
    np.testing.assert_array_equal(s.image[y1:y2, x1:x2], img[50:130, 120:180])


def test_elliptical_alpha_rejects_bad_feather():
    with pytest.raises(ValueError, match="feather"):
        elliptical_alpha(10, 10, feather=0)


def test_backgrounds_differ_per_camera():
    a, b = make_backgrounds(2, 64, 48, seed=0)
    assert a.shape == (48, 64, 3) and not np.array_equal(a, b)


@pytest.mark.integration
def test_synth_cli_on_the_shared_photos(shared_data, detector_weights, tmp_path):
    from evaluation.__main__ import main

    out = tmp_path / "seq"
    assert main(["synth", "--photos", str(shared_data / "probe"), "--photos", str(shared_data / "gallery"),
                 "--gallery", str(shared_data / "gallery"), "--out", str(out), "--frames", "40",
                 "--size", "640x360", "--detector", str(detector_weights), "--quiet"]) == 0
    truth = gtio.load_ground_truth(out)
    assert len(truth.boxes) > 0 and truth.num_frames == 40
    ids = gtio.read_identities(out / "identities.json")
    for ident in ids.values():
        assert ident.enrolled == (shared_data / "gallery" / ident.name).is_dir()
        for src in ident.extra["sprites"]:
            # an enrolled person with probe photos is drawn from a probe photo, never a gallery one
            if (shared_data / "probe" / ident.name).is_dir():
                assert "/probe/" in src
