import numpy as np
import pytest

from tracker import boxes
from tracker.detections import Detections


def _dets(n=3, dim=8, with_landmarks=True):
    rng = np.random.default_rng(0)
    tl = rng.uniform(0, 100, (n, 2))
    xyxy = np.hstack([tl, tl + rng.uniform(10, 50, (n, 2))])
    emb = rng.normal(size=(n, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    lm = rng.uniform(0, 100, (n, 5, 2)) if with_landmarks else None
    return Detections(xyxy=xyxy, confidence=rng.uniform(0.5, 1, n), landmarks=lm, embedding=emb)


def test_defaults_and_dtypes():
    d = _dets()
    assert d.xyxy.dtype == np.float32 and d.confidence.dtype == np.float32
    assert d.det_index.tolist() == [0, 1, 2]
    assert len(d) == 3


def test_indexing_keeps_det_index_and_all_fields():
    d = _dets(5)
    sub = d[np.array([False, True, False, True, True])]
    assert sub.det_index.tolist() == [1, 3, 4]
    np.testing.assert_array_equal(sub.xyxy, d.xyxy[[1, 3, 4]])
    np.testing.assert_array_equal(sub.embedding, d.embedding[[1, 3, 4]])
    np.testing.assert_array_equal(sub.landmarks, d.landmarks[[1, 3, 4]])
    assert d[2].det_index.tolist() == [2]
    # indexing a subset again still points at the detector's original rows
    assert sub[np.array([2])].det_index.tolist() == [4]


def test_empty():
    e = Detections.empty(embedding_dim=512)
    assert len(e) == 0 and e.landmarks.shape == (0, 5, 2) and e.embedding.shape == (0, 512)
    assert len(Detections(xyxy=np.zeros((0, 4)), confidence=[])) == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(xyxy=np.zeros((2, 3)), confidence=[1, 1]), "xyxy"),
        (dict(xyxy=np.zeros((2, 4)), confidence=[1]), "confidence"),
        (dict(xyxy=[[10, 10, 5, 20]], confidence=[1]), "x2 >= x1"),
        (dict(xyxy=[[0, 0, np.nan, 1]], confidence=[1]), "NaN"),
        (dict(xyxy=np.zeros((1, 4)), confidence=[1], landmarks=np.zeros((1, 4, 2))), "landmarks"),
        (dict(xyxy=np.zeros((1, 4)), confidence=[1], embedding=np.zeros((2, 512))), "embedding"),
        (dict(xyxy=np.zeros((1, 4)), confidence=[1], det_index=[0, 1]), "det_index"),
    ],
)
def test_validation_errors_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Detections(**kwargs)


def test_with_embedding_is_a_validated_copy():
    d = _dets(2, with_landmarks=False)
    e = d.with_embedding(np.ones((2, 4)))
    assert e.embedding.shape == (2, 4) and d.embedding.shape == (2, 8)
    with pytest.raises(ValueError):
        d.with_embedding(np.ones((3, 4)))


def test_box_conversions_round_trip():
    rng = np.random.default_rng(1)
    tl = rng.uniform(0, 500, (20, 2))
    xyxy = np.hstack([tl, tl + rng.uniform(1, 200, (20, 2))])
    np.testing.assert_allclose(boxes.tlwh_to_xyxy(boxes.xyxy_to_tlwh(xyxy)), xyxy)
    np.testing.assert_allclose(boxes.xyah_to_xyxy(boxes.xyxy_to_xyah(xyxy)), xyxy, atol=1e-9)
    xyah = boxes.xyxy_to_xyah(np.array([0, 0, 20, 10.0]))
    np.testing.assert_allclose(xyah, [10, 5, 2, 10])


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10.0]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30.0]])
    iou = boxes.iou_matrix(a, b)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0])
    assert boxes.iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_clip():
    np.testing.assert_array_equal(boxes.clip_xyxy([[-5, -5, 120, 50]], 100, 40), [[0, 0, 100, 40]])
