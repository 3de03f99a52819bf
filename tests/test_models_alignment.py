"""Alignment: the template maps to itself, a known similarity is recovered, crops are right."""
import numpy as np
import pytest

from models.alignment import ARCFACE_TEMPLATE, align_face, arcface_template, crop_face, estimate_similarity


def _similarity(scale, angle, tx, ty):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def _apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_template_maps_to_itself():
    m = estimate_similarity(ARCFACE_TEMPLATE, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-12)


@pytest.mark.parametrize("scale,angle,tx,ty", [(2.5, 0.3, 100.0, -40.0), (0.4, -1.2, 5.0, 7.0), (1.0, np.pi, 0, 0)])
def test_recovers_a_known_similarity_exactly(scale, angle, tx, ty):
    truth = _similarity(scale, angle, tx, ty)
    src = ARCFACE_TEMPLATE * 3 + [17.0, 29.0]
    m = estimate_similarity(src, _apply(truth, src))
    np.testing.assert_allclose(m, truth, atol=1e-9)


def test_least_squares_with_noise_is_close_and_no_reflection():
    rng = np.random.default_rng(1)
    truth = _similarity(1.7, 0.5, 10, 20)
    src = rng.uniform(0, 100, (5, 2))
    dst = _apply(truth, src) + rng.normal(0, 0.5, (5, 2))
    m = estimate_similarity(src, dst)
    np.testing.assert_allclose(m, truth, atol=0.05 * 100)
    assert np.linalg.det(m[:, :2]) > 0
    # A mirrored point set must still give a proper rotation (det > 0), not a reflection.
    mirrored = dst * [-1, 1]
    assert np.linalg.det(estimate_similarity(src, mirrored)[:, :2]) > 0


@pytest.mark.parametrize("bad", [np.zeros((5, 3)), np.zeros((1, 2)), np.full((5, 2), np.nan)])
def test_bad_points_raise(bad):
    with pytest.raises(ValueError):
        estimate_similarity(bad, bad)


def test_degenerate_points_raise():
    with pytest.raises(ValueError, match="degenerate"):
        estimate_similarity(np.ones((5, 2)), ARCFACE_TEMPLATE)


def test_align_face_puts_landmarks_on_the_template():
    # Draw 5 bright dots at transformed template positions; after alignment they sit on the template.
    truth = _similarity(3.0, 0.4, 150.0, 60.0)
    landmarks = _apply(truth, ARCFACE_TEMPLATE)
    image = np.zeros((600, 600, 3), np.uint8)
    for x, y in landmarks:
        image[int(round(y)) - 4:int(round(y)) + 5, int(round(x)) - 4:int(round(x)) + 5] = 255
    aligned = align_face(image, landmarks)
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
    for x, y in ARCFACE_TEMPLATE:
        assert aligned[int(round(y)), int(round(x))].min() > 200


def test_arcface_template_sizes():
    np.testing.assert_allclose(arcface_template(224), ARCFACE_TEMPLATE * 2)
    t128 = arcface_template(128)
    np.testing.assert_allclose(t128[:, 1], ARCFACE_TEMPLATE[:, 1])
    np.testing.assert_allclose(t128[:, 0], ARCFACE_TEMPLATE[:, 0] + 8)
    with pytest.raises(ValueError, match="size"):
        arcface_template(0)


def test_align_face_validates():
    with pytest.raises(ValueError, match="landmarks"):
        align_face(np.zeros((50, 50, 3), np.uint8), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="image"):
        align_face(None, ARCFACE_TEMPLATE)


def test_crop_face_centres_the_box_and_pads_outside():
    image = np.zeros((300, 400, 3), np.uint8)
    image[100:200, 150:250] = 200  # a 100x100 "face"
    crop = crop_face(image, [150, 100, 250, 200], size=112)
    assert crop.shape == (112, 112, 3)
    assert crop[5:107, 5:107].min() == 200  # the box fills the crop
    # Box at the corner: the part outside the image is black.
    corner = crop_face(image, [-50, -50, 50, 50], size=112)
    assert corner[:50, :50].max() == 0
    with pytest.raises(ValueError, match="xyxy"):
        crop_face(image, [1, 2, 3])
    with pytest.raises(ValueError, match="area"):
        crop_face(image, [5, 5, 5, 5])
