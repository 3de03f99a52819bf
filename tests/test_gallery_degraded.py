"""The degraded-pairs protocol: rendering on synthetic photos, the protocol with pixel fakes, the statistics."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gallery import degraded as dg
from gallery import degraded_stats as ds
from tracker.detections import Detections

BACKGROUND = 40


def photo(width=900, height=700, face=(300, 150, 460, 350), color=(200, 60, 30)) -> np.ndarray:
    """A dark photo with one flat-coloured 'face' rectangle ``face`` (xyxy)."""
    img = np.full((height, width, 3), BACKGROUND, np.uint8)
    x1, y1, x2, y2 = face
    img[y1:y2, x1:x2] = color
    return img


def bright_rows(img: np.ndarray) -> int:
    """Height in pixels of the region brighter than the background and the canvas grey."""
    rows = np.nonzero((img.max(axis=2) > 160).any(axis=1))[0]
    return int(rows[-1] - rows[0] + 1) if len(rows) else 0


# -- rendering -------------------------------------------------------------------------------
@pytest.mark.parametrize("h", dg.DEFAULT_HEIGHTS)
def test_rendered_box_height_is_within_one_pixel_of_the_target(h):
    out = dg.render_small_face(photo(), (300, 150, 460, 350), h)
    x1, y1, x2, y2 = out.xyxy
    assert abs((y2 - y1) - h) <= 1.0
    assert out.image.shape == (360, 640, 3) and out.image.dtype == np.uint8
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360
    assert out.scale == pytest.approx(h / 200, rel=0.01)


@pytest.mark.parametrize("h", [16, 32, 112])
def test_the_pixels_of_the_face_are_h_high_and_centred(h):
    out = dg.render_small_face(photo(), (300, 150, 460, 350), h, jpeg_quality=None)
    assert abs(bright_rows(out.image) - h) <= 1
    cx, cy = (out.xyxy[0] + out.xyxy[2]) / 2, (out.xyxy[1] + out.xyxy[3]) / 2
    assert abs(cx - 320) <= 1 and abs(cy - 180) <= 1


def test_rendering_is_deterministic_and_the_jpeg_step_is_lossy():
    img, box = photo(), (300, 150, 460, 350)
    a = dg.render_small_face(img, box, 24)
    b = dg.render_small_face(img, box, 24)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.xyxy, b.xyxy)
    raw = dg.render_small_face(img, box, 24, jpeg_quality=None)
    assert not np.array_equal(raw.image, a.image)
    assert np.abs(raw.image.astype(int) - a.image.astype(int)).mean() < 10


def test_a_large_photo_is_cropped_to_the_canvas_and_a_small_one_padded_with_grey():
    big = dg.render_small_face(photo(3000, 2000, (1400, 900, 1460, 960)), (1400, 900, 1460, 960), 112,
                               jpeg_quality=None)
    assert big.image.shape == (360, 640, 3) and big.scale > 1
    assert (big.image != 128).all(axis=2).mean() == 1.0          # the photo covers the whole canvas
    small = dg.render_small_face(photo(), (300, 150, 460, 350), 16, jpeg_quality=None)
    assert (small.image == 128).all(axis=2).mean() > 0.9           # a 16 px face leaves the canvas mostly grey


def test_canvas_size_is_a_keyword_and_rendering_checks_its_arguments():
    out = dg.render_small_face(photo(), (300, 150, 460, 350), 32, canvas_size=(1280, 720))
    assert out.image.shape == (720, 1280, 3)
    with pytest.raises(ValueError, match="positive height"):
        dg.render_small_face(photo(), (300, 150, 460, 150), 32)
    with pytest.raises(ValueError, match="too small"):
        dg.render_small_face(photo(), (300, 150, 460, 350), 200)
    with pytest.raises(ValueError, match="jpeg_quality"):
        dg.render_small_face(photo(), (300, 150, 460, 350), 32, jpeg_quality=0)


def test_best_overlap_takes_the_most_overlapping_detection_above_min_iou():
    dets = Detections(xyxy=np.array([[0, 0, 10, 10], [100, 100, 120, 124], [98, 99, 121, 123]], np.float32),
                      confidence=np.array([0.9, 0.8, 0.7], np.float32))
    assert dg.best_overlap(dets, (98, 99, 121, 123)) == 2
    assert dg.best_overlap(dets, (300, 300, 320, 320)) is None
    assert dg.best_overlap(Detections.empty(), (0, 0, 10, 10)) is None


# -- the protocol with pixel fakes ----------------------------------------------------------
class PixelDetector:
    """Finds the one bright rectangle of an image; misses it below ``min_height`` px."""

    def __init__(self, min_height=20):
        self.min_height, self.calls = min_height, 0

    def detect(self, image):
        self.calls += 1
        ys, xs = np.nonzero(image.max(axis=2) > 160)
        if len(ys) == 0 or ys.max() - ys.min() + 1 < self.min_height:
            return Detections.empty()
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        lm = np.repeat(box[:, None, :2], 5, axis=1) + 1
        score = min(0.99, 0.5 + (box[0, 3] - box[0, 1]) / 200)
        return Detections(xyxy=box, confidence=np.array([score], np.float32), landmarks=lm)


class ColourEmbedder:
    """The unit vector of a face's mean colour (plus a constant), so equal colours match."""

    dim = 4

    def embed(self, image, detections):
        out = []
        for x1, y1, x2, y2 in detections.xyxy.astype(int):
            c = image[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0) - 120
            v = np.append(c, 10.0)
            out.append(v / np.linalg.norm(v))
        return np.array(out, np.float32)


COLOURS = {"ann": (200, 60, 30), "bob": (30, 60, 200), "cy": (60, 200, 60)}


def _reader(path):
    person, face_h = str(path).split("_")
    face_h = int(face_h)
    return photo(face=(300, 100, 300 + face_h * 3 // 4, 100 + face_h), color=COLOURS[person])


PAIRS = [("ann_200", "ann_300", True), ("bob_200", "bob_250", True), ("ann_200", "bob_250", False),
         ("cy_400", "ann_300", False), ("cy_400", "bob_10", False)]


def test_the_protocol_rows_with_pixel_fakes():
    det = PixelDetector(min_height=20)
    rows, left_out = dg.degraded_pair_rows(PAIRS, det, ColourEmbedder(), heights=(16, 48), image_reader=_reader)
    assert left_out == [4]                                  # bob_10: a 10 px face is too small to enroll
    assert len(rows) == 4 * 3
    # each photo once at full resolution, each usable probe once per height
    assert det.calls == 6 + 2 * 2                           # probes ann_300 and bob_250
    by = {(r.pair, r.height): r for r in rows}
    assert not by[0, 16].detected and np.isnan(by[0, 16].similarity)
    assert by[0, 48].detected and by[0, 48].similarity > 0.99 and abs(by[0, 48].box_height - 48) <= 2
    assert by[2, 48].similarity < 0.5 and by[2, None].height is None
    assert by[0, None].box_height == pytest.approx(300)


def test_run_degraded_pairs_gives_a_json_serialisable_result():
    result = dg.run_degraded_pairs(PAIRS[:4], PixelDetector(), ColourEmbedder(), heights=(16, 48),
                                   image_reader=_reader, settings={"pairs_file": "x.csv"})
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert [h["height"] for h in d["heights"]] == [None, 16, 48]
    assert d["settings"]["jpeg_quality"] == dg.DEFAULT_JPEG_QUALITY and d["settings"]["pairs_file"] == "x.csv"
    h16, h48 = d["heights"][1], d["heights"][2]
    assert h16["detection_rate"] == 0 and h16["same"]["mean"] is None
    assert h48["detection_rate"] == 1 and h48["same"]["count"] == 2 and h48["different"]["count"] == 2
    assert h48["auc"] == 1.0 and h48["det_score_median"] is not None
    assert len(d["rows"]) == 12 and {"similarity", "same", "height", "det_score", "detected"} <= set(d["rows"][0])
    assert "16px" in ds.format_degraded_table(result)


# -- statistics on synthetic scores -----------------------------------------------------------
def _synthetic(n=400, seed=0, gap=0.3):
    rng = np.random.default_rng(seed)
    same = np.arange(n) < n // 2
    sim = np.where(same, rng.normal(gap, 0.1, n), rng.normal(0.0, 0.1, n))
    return sim, same


def test_height_stats_distributions_and_tar_at_far():
    sim, same = _synthetic()
    det = np.ones(len(sim), bool)
    det[::10] = False                                           # 10 % missed faces
    sim_obs = np.where(det, sim, np.nan)
    st = ds.height_stats(24, sim_obs, same, det, np.full(len(sim), 0.7), np.full(len(sim), 23.0))
    assert st.detection_rate == pytest.approx(0.9) and st.n_pairs == 400
    assert st.same.count == (det & same).sum() and st.different.count == (det & ~same).sum()
    assert st.same.mean == pytest.approx(sim[det & same].mean())
    assert st.same.p5 < st.same.p50 < st.same.p95 and st.different.std == pytest.approx(sim[det & ~same].std())
    assert st.det_score.p50 == pytest.approx(0.7) and 0.9 < st.auc < 1.0
    t1, t01 = st.tar_at_far
    assert (t1.far, t01.far) == (0.01, 0.001)
    assert t1.actual_far <= 0.01 and t01.actual_far == 0.0 and t01.threshold > sim[det & ~same].max()
    assert t1.threshold <= t01.threshold and t1.tar >= t01.tar
    assert t1.tar_all == pytest.approx(t1.tar * (det & same).sum() / same.sum())
    assert t1.tar == pytest.approx(np.mean(sim[det & same] >= t1.threshold))


def test_height_stats_separable_and_empty_cases():
    sim, same = _synthetic(gap=2.0)
    det = np.ones(len(sim), bool)
    st = ds.height_stats(64, sim, same, det, sim * 0, sim * 0)
    assert st.auc == 1.0 and all(t.tar == 1.0 for t in st.tar_at_far)
    none = ds.height_stats(16, np.full(4, np.nan), [1, 1, 0, 0], np.zeros(4, bool), np.full(4, np.nan),
                           np.full(4, np.nan))
    assert none.detection_rate == 0 and np.isnan(none.auc) and np.isnan(none.tar_at_far[0].tar)
    assert none.same.count == 0 and np.isnan(none.same.mean)
    with pytest.raises(ValueError, match="NaN"):
        ds.height_stats(16, [np.nan, 0.1], [1, 0], [True, True], [0.5, 0.5], [16, 16])


def test_stats_by_height_orders_full_resolution_first():
    rows = [ds.DegradedRow(k, h, k % 2 == 0, True, 0.5 if k % 2 == 0 else 0.0, 0.8, float(h or 200))
            for h in (32, None, 16) for k in range(4)]
    stats = ds.stats_by_height(rows)
    assert [s.height for s in stats] == [None, 16, 32]
    assert all(s.auc == 1.0 and s.same.mean == 0.5 for s in stats)


def test_calibrate_json_without_heights_is_an_error(tmp_path, capsys):
    from facetrack.gallery_cli import EXIT_ERROR, main

    csv = tmp_path / "p.csv"
    csv.write_text("a.jpg,b.jpg,1\n")
    assert main(["calibrate", str(csv), "--json", str(tmp_path / "x.json")]) == EXIT_ERROR
    assert "--heights" in capsys.readouterr().err


def test_blur_softens_the_face_edge_and_to_json_is_the_dict():
    img, box = photo(), (300, 150, 460, 350)
    sharp = dg.render_small_face(img, box, 32, jpeg_quality=None)
    soft = dg.render_small_face(img, box, 32, jpeg_quality=None, blur_sigma=1.0)
    edge = lambda r: np.abs(np.diff(r.image.astype(int), axis=1)).max()  # noqa: E731
    assert edge(soft) < edge(sharp)
    with pytest.raises(ValueError, match="blur_sigma"):
        dg.render_small_face(img, box, 32, blur_sigma=-1.0)
    result = dg.run_degraded_pairs(PAIRS[:4], PixelDetector(), ColourEmbedder(), heights=(48,), image_reader=_reader)
    assert json.loads(result.to_json()) == json.loads(json.dumps(result.to_dict()))
    assert result.settings["blur_sigma"] == 0.0


def test_from_dict_reads_back_what_to_json_wrote():
    result = dg.run_degraded_pairs(PAIRS, PixelDetector(), ColourEmbedder(), heights=(16, 48), image_reader=_reader)
    written = json.loads(result.to_json())
    back = ds.DegradedResult.from_dict(written).to_dict()
    assert back["rows"] == written["rows"] and back["settings"] == written["settings"]
    assert back["pairs_left_out"] == [4]
    for b, w in zip(back["heights"], written["heights"]):       # the rows are rounded to 5 digits
        if w["same"]["mean"] is None:
            assert b["same"]["mean"] is None
        else:
            assert b["same"]["mean"] == pytest.approx(w["same"]["mean"], abs=1e-4)
        assert b["auc"] == w["auc"] and b["detection_rate"] == w["detection_rate"]
