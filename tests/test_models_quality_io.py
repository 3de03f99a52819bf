"""face_quality formulas on synthetic faces, and read_image on awkward files."""
import cv2
import numpy as np
import pytest

from models.alignment import ARCFACE_TEMPLATE
from models.io import read_image, to_bgr
from models.quality import FaceQuality, face_quality, frontalness, sharpness
from tracker.detections import Detections


def _textured(size=200, seed=0):
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)


def test_frontal_template_is_frontal_and_profile_is_not():
    assert frontalness(ARCFACE_TEMPLATE) > 0.95
    # Rolled (rotated) frontal face stays frontal: roll is removed.
    c, s = np.cos(0.6), np.sin(0.6)
    rolled = ARCFACE_TEMPLATE @ np.array([[c, -s], [s, c]]).T + 40
    assert frontalness(rolled) == pytest.approx(frontalness(ARCFACE_TEMPLATE), abs=1e-6)
    # Nose moved onto the right eye's vertical line: near full profile.
    profile = ARCFACE_TEMPLATE.copy()
    profile[2, 0] = profile[1, 0]
    assert frontalness(profile) < 0.05
    # Half way: in between, monotonic.
    half = ARCFACE_TEMPLATE.copy()
    half[2, 0] = (ARCFACE_TEMPLATE[2, 0] + ARCFACE_TEMPLATE[1, 0]) / 2
    assert frontalness(profile) < frontalness(half) < frontalness(ARCFACE_TEMPLATE)
    # Nose up at the eye line: strong pitch.
    pitched = ARCFACE_TEMPLATE.copy()
    pitched[2, 1] = 52
    assert frontalness(pitched) < 0.2
    assert frontalness(np.zeros((5, 2))) == 0.0


def test_sharpness_drops_with_blur_and_ignores_contrast_and_size():
    img = _textured()
    box = [0, 0, 200, 200]
    sharp = sharpness(img, box)
    blurred = sharpness(cv2.GaussianBlur(img, (0, 0), 4), box)
    assert blurred < sharp / 5
    low_contrast = (img // 4 + 100).astype(np.uint8)
    assert sharpness(low_contrast, box) == pytest.approx(sharp, rel=0.15)
    big = cv2.resize(img, (400, 400), interpolation=cv2.INTER_NEAREST)
    assert sharpness(big, [0, 0, 400, 400]) == pytest.approx(sharp, rel=0.25)
    assert sharpness(np.full((50, 50, 3), 7, np.uint8), [0, 0, 50, 50]) == 0.0
    assert sharpness(img, [300, 300, 310, 310]) == 0.0  # outside the frame


def test_face_quality_score_orders_faces():
    frame = np.zeros((400, 700, 3), np.uint8)
    tex = _textured(150)
    frame[20:170, 20:170] = tex  # sharp, large, frontal
    frame[20:170, 250:400] = cv2.GaussianBlur(tex, (0, 0), 5)  # blurred
    frame[300:315, 500:515] = tex[:15, :15]  # tiny
    boxes = np.array([[20, 20, 170, 170], [250, 20, 400, 170], [500, 300, 515, 315]], np.float32)
    lm = np.stack([ARCFACE_TEMPLATE * 150 / 112 + b[:2] for b in boxes[:2]] +
                  [ARCFACE_TEMPLATE * 15 / 112 + boxes[2, :2]])
    q = face_quality(frame, Detections(boxes, [0.9, 0.9, 0.9], landmarks=lm))
    assert isinstance(q, FaceQuality) and len(q) == 3
    np.testing.assert_allclose(q.size, [150, 150, 15])
    assert q.sharpness[0] > 5 * q.sharpness[1]
    assert q.score[0] > 0.8 and q.score[1] < q.score[0] and q.score[2] == 0.0
    assert np.all((q.score >= 0) & (q.score <= 1)) and np.all((q.frontalness >= 0) & (q.frontalness <= 1))
    no_lm = face_quality(frame, Detections(boxes, [0.9, 0.9, 0.9]))
    np.testing.assert_allclose(no_lm.frontalness, 0.5)
    empty = face_quality(frame, Detections.empty())
    assert len(empty) == 0 and empty.score.shape == (0,)


def test_face_quality_validates():
    frame = np.zeros((50, 50, 3), np.uint8)
    d = Detections([[0, 0, 10, 10]], [0.5])
    with pytest.raises(ValueError, match="min_size"):
        face_quality(frame, d, min_size=100, good_size=80)
    with pytest.raises(ValueError, match="good_sharpness"):
        face_quality(frame, d, good_sharpness=0)
    with pytest.raises(ValueError, match="frame_bgr"):
        face_quality(None, d)


def test_read_image_formats_and_non_ascii_paths(tmp_path):
    bgr = _textured(64)
    folder = tmp_path / "фото éà 写真"
    folder.mkdir()
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 128, np.uint8)])
    for name, image, ext in [("a", bgr, ".png"), ("b", bgra, ".png"), ("c", bgr[..., 0], ".png"),
                             ("d", bgr, ".webp"), ("e", (bgr.astype(np.uint16) * 257), ".png")]:
        ok, data = cv2.imencode(ext, image, [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else [])
        assert ok
        path = folder / f"{name}{ext}"
        data.tofile(str(path))
        out = read_image(path)
        assert out.shape == (64, 64, 3) and out.dtype == np.uint8
        if name in ("a", "b", "d", "e"):
            np.testing.assert_array_equal(out, bgr)


def test_read_image_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_image(tmp_path / "absent.jpg")
    with pytest.raises(ValueError, match="not a file"):
        read_image(tmp_path)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="decode"):
        read_image(junk)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="decode"):
        read_image(empty)


@pytest.mark.parametrize("bad,match", [(None, "None"), (np.zeros((0, 5, 3), np.uint8), "empty"),
                                       (np.zeros((5, 5, 3), np.float32), "uint8"),
                                       (np.zeros((5, 5, 2), np.uint8), "shape")])
def test_to_bgr_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        to_bgr(bad)
