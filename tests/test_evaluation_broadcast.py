"""The broadcast preset of the simulator: small faces, 4-8 people a shot,
posed heads, determinism, H.264 files, and the default plan left as it was."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from evaluation import broadcast, video
from evaluation import gt as gtio
from evaluation.sprites import posed_sprite, synthetic_sprite
from evaluation.synth import Person, plan_sequence, render, write_sequence


def people(n_enrolled=8, n_other=4):
    return ([Person(f"p{i}", True, [synthetic_sprite(i, size=64)]) for i in range(n_enrolled)]
            + [Person(f"_u{i}", False, [synthetic_sprite(100 + i, size=64)]) for i in range(n_other)])


def plan(seed=0, **kw):
    args = dict(seed=seed, num_frames=400, width=640, height=360, preset="broadcast")
    args.update(kw)
    return plan_sequence(people(), **args)


def test_broadcast_plan_has_small_faces_and_wide_casts():
    sc = plan()
    p = broadcast.BROADCAST
    assert len(sc.shots) >= 2
    for shot in sc.shots:
        assert p.cast[0] <= len(shot.appearances) <= p.cast[1]
        assert len({a.gt_id for a in shot.appearances}) == len(shot.appearances)
        for a in shot.appearances:
            assert a.height.min() >= p.min_face and a.height.max() <= p.max_face
            if a.roll is not None:
                assert np.abs(a.roll).max() <= p.max_roll_deg
                assert a.squeeze_x.min() >= p.min_squeeze_x and a.squeeze_y.min() >= p.min_squeeze_y
    assert any(a.roll is not None for s in sc.shots for a in s.appearances)
    assert any(not enrolled for _, enrolled in sc.ids.values())


def test_broadcast_plan_is_deterministic_and_leaves_the_default_plan_alone():
    a, b = plan(seed=5), plan(seed=5)
    assert [(s.start, s.end, s.camera) for s in a.shots] == [(s.start, s.end, s.camera) for s in b.shots]
    for sa, sb in zip(a.shots, b.shots):
        for x, y in zip(sa.appearances, sb.appearances):
            assert x.gt_id == y.gt_id and np.array_equal(x.cx, y.cx) and np.array_equal(x.height, y.height)
    assert plan(seed=6).shots[0].appearances[0].cx[0] != a.shots[0].appearances[0].cx[0]
    default = plan_sequence(people(), seed=5, num_frames=200, width=640, height=360)
    assert all(ap.roll is None for s in default.shots for ap in s.appearances)
    assert min(ap.height.min() for s in default.shots for ap in s.appearances) >= 40


def test_broadcast_renders_gt_heights_in_range():
    sc = plan(num_frames=60)
    heights = np.concatenate([rows.tlwh[:, 3] for _, rows in render(sc, people()) if len(rows)])
    assert heights.min() >= broadcast.BROADCAST.min_face - 1e-6 and heights.max() <= broadcast.BROADCAST.max_face + 1e-6


def test_unknown_preset_and_bad_preset_values_are_refused():
    with pytest.raises(ValueError, match="preset"):
        plan(preset="telephoto")
    with pytest.raises(ValueError, match="min_face"):
        broadcast.BroadcastPreset(min_face=50, max_face=40)
    with pytest.raises(ValueError, match="cast"):
        broadcast.BroadcastPreset(cast=(0, 3))


def test_posed_sprite_squeezes_the_face_box_and_keeps_its_centre():
    s = synthetic_sprite(1, size=80)
    assert posed_sprite(s) is s
    p = posed_sprite(s, roll_deg=10, squeeze_x=0.5, squeeze_y=0.8)
    fw, fh = s.face_xyxy[2] - s.face_xyxy[0], s.face_xyxy[3] - s.face_xyxy[1]
    assert p.face_xyxy[2] - p.face_xyxy[0] == pytest.approx(fw * 0.5, rel=0.02)
    assert p.face_height == pytest.approx(fh * 0.8, rel=0.02)
    assert p.image.shape[:2] == p.alpha.shape and p.alpha.dtype == np.float32
    cx = (p.face_xyxy[0] + p.face_xyxy[2]) / 2
    assert cx == pytest.approx((s.face_xyxy[0] + s.face_xyxy[2]) / 2 * p.image.shape[1] / s.image.shape[1])
    with pytest.raises(ValueError):
        posed_sprite(s, squeeze_x=1.5)


def test_broadcast_bitrate_scales_with_pixels():
    assert video.broadcast_bitrate(1280, 720) == video.BROADCAST_BITRATE_720P
    assert video.broadcast_bitrate(640, 360) == video.BROADCAST_BITRATE_720P // 4
    with pytest.raises(ValueError, match="codec"):
        video.open_writer("x.mp4", 30, (64, 64), codec="vp9")


@pytest.mark.skipif(video.ffmpeg_path() is None, reason="ffmpeg is not installed")
def test_h264_sequence_is_written_and_repeatable(tmp_path):
    sc = plan(num_frames=20, width=320, height=180)
    for d in ("a", "b"):
        write_sequence(tmp_path / d, sc, people(), codec="h264")
    info = json.loads((tmp_path / "a" / "synth.json").read_text())
    assert info["video_codec"] == "h264" and info["bitrate"] == video.broadcast_bitrate(320, 180)
    assert (tmp_path / "a" / "video.mp4").read_bytes() == (tmp_path / "b" / "video.mp4").read_bytes()
    cap = cv2.VideoCapture(str(tmp_path / "a" / "video.mp4"))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (180, 320, 3)
        n += 1
    assert n == 20
    assert len(gtio.load_ground_truth(tmp_path / "a").boxes.frames()) == 20


def test_without_ffmpeg_h264_falls_back_to_mp4v_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(video, "ffmpeg_path", lambda: None)
    sc = plan(num_frames=5, width=160, height=96)
    write_sequence(tmp_path, sc, people(), codec="h264")
    info = json.loads((tmp_path / "synth.json").read_text())
    assert info["video_codec"].startswith("mp4v (ffmpeg not found") and info["bitrate"] is None


def test_crowd_people_are_one_non_enrolled_person_per_face(tmp_path):
    img = np.full((200, 400, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "crowd.jpg"), img)

    def detect(_):
        return np.array([[250, 50, 300, 110], [20, 40, 80, 110], [5, 5, 15, 15]], float), np.ones(3)

    crowd = broadcast.crowd_people([tmp_path / "crowd.jpg"], detect, min_face=24)
    assert [p.name for p in crowd] == ["_crowd/crowd-0", "_crowd/crowd-1"]
    assert not any(p.enrolled for p in crowd)
    assert crowd[0].sprites[0].source.endswith("#0")


def test_the_report_lists_labelled_clips_with_a_video_and_shows_height_tables(tmp_path):
    from evaluation import metrics, report

    (tmp_path / "data" / "video").mkdir(parents=True)
    assert report.labelled_clips(tmp_path) == []
    (tmp_path / "data" / "video" / "short_hamilton_clip.mp4").write_bytes(b"")
    assert [c[0] for c in report.labelled_clips(tmp_path)] == ["short_hamilton_clip"]
    gt = gtio.GroundTruth(gtio.BoxTable([1], [1], [[0, 0, 20, 20]], [1.0]), {1: gtio.Identity("a", True)})
    score = {"naming_by_height": metrics.naming_by_height(gt, gtio.BoxTable([1], [5], [[0, 0, 20, 20]], [1.0], ["a"]))}
    text = "\n".join(report._md_by_height([("broadcast preset", score), ("old cached run", {})]))
    assert "## Naming by face height" in text and "broadcast preset:" in text and "| 0-30 | 1 | 100.0 % | 100.0 %" in text
    assert "old cached run" not in text
