"""pipeline.stills: still images named per face, without tracking (fakes, then the real models on ../shared)."""
from __future__ import annotations

import numpy as np
import pytest

from gallery.index import GalleryIndex
from pipeline.stills import StillNamer, StillResult
from tracker.detections import Detections

DIM = 8


def unit(i: int, tilt: float = 0.0) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[i] = 1.0
    v[(i + 1) % DIM] = tilt
    return v / np.linalg.norm(v)


class BoxDetector:
    """Finds the faces it was given, in that order."""

    def __init__(self, boxes, landmarks=True):
        self.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self.landmarks = landmarks
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        n = len(self.boxes)
        lm = None
        if self.landmarks:
            centre = (self.boxes[:, :2] + self.boxes[:, 2:]) / 2
            lm = np.repeat(centre[:, None, :], 5, axis=1).astype(np.float32)
        return Detections(xyxy=self.boxes, confidence=np.linspace(0.9, 0.8, n).astype(np.float32), landmarks=lm)


class TableEmbedder:
    """Embeds face ``k`` as ``vectors[k]``."""

    def __init__(self, vectors):
        self.vectors = np.asarray(vectors, np.float32)

    def embed(self, image, detections):
        return self.vectors[detections.det_index]


def index():
    return GalleryIndex(["ann", "ann", "bob"], np.stack([unit(0), unit(0, 0.1), unit(1)]))


IMAGE = np.zeros((120, 200, 3), np.uint8)


def test_each_face_is_named_once_by_threshold_and_margin_with_its_box_score_and_landmarks():
    boxes = [[10, 10, 50, 60], [60, 10, 100, 60], [110, 10, 150, 60]]
    # ann clearly; bob clearly; a stranger (nobody above the threshold)
    embedder = TableEmbedder([unit(0), unit(1, 0.05), unit(5)])
    namer = StillNamer(BoxDetector(boxes), embedder, index(), similarity_threshold=0.5, min_margin=0.1)
    result = namer.name(IMAGE, source="x.jpg")
    assert isinstance(result, StillResult) and len(result) == 3
    assert result.names == ["ann", "bob", None]
    assert [f.best for f in result.faces] == ["ann", "bob", "ann"]
    assert result.faces[2].score < 0.5
    template = unit(0) + unit(0, 0.1)               # ann's mean template (score_mode "mean")
    assert result.faces[0].score == pytest.approx(float(unit(0) @ template / np.linalg.norm(template)), abs=1e-5)
    assert result.faces[0].margin == pytest.approx(result.faces[0].score, abs=1e-5)   # bob scores 0
    np.testing.assert_allclose(result.xyxy, np.asarray(boxes, np.float32))
    np.testing.assert_array_equal(result.track_ids, [0, 1, 2])
    assert result.faces[1].landmarks.shape == (5, 2)
    assert result.faces[0].confidence == pytest.approx(0.9)
    assert (result.width, result.height, result.source) == (200, 120, "x.jpg")


def test_a_face_between_two_people_stays_unknown_by_the_margin():
    between = unit(0) + unit(1)
    namer = StillNamer(BoxDetector([[0, 0, 40, 40]]), TableEmbedder([between / np.linalg.norm(between)]), index(),
                       similarity_threshold=0.3, min_margin=0.08)
    (face,) = namer.name(IMAGE).faces
    assert face.name is None and face.best in ("ann", "bob") and face.margin < 0.08 and face.score > 0.3
    loose = StillNamer(namer.detector, namer.embedder, index(), similarity_threshold=0.3, min_margin=0.0)
    assert loose.name(IMAGE).faces[0].name == face.best


def test_one_photo_is_named_although_the_identifier_wants_three_observations():
    from gallery.identifier import Identifier

    identifier = Identifier(index(), similarity_threshold=0.4, min_margin=0.05, min_observations=3)
    namer = StillNamer.from_identifier(BoxDetector([[0, 0, 40, 40]]), TableEmbedder([unit(1)]), identifier)
    assert (namer.similarity_threshold, namer.min_margin) == (0.4, 0.05)
    assert namer.name(IMAGE).names == ["bob"]


def test_without_a_gallery_faces_are_found_and_nobody_is_named():
    namer = StillNamer(BoxDetector([[0, 0, 40, 40], [50, 0, 90, 40]], landmarks=False), None, None,
                       similarity_threshold=0.35, min_margin=0.08)
    result = namer.name(IMAGE)
    assert result.names == [None, None] and np.all(np.isnan(result.scores))
    assert result.faces[0].landmarks is None
    assert result.as_dict()["faces"][0]["score"] is None    # NaN is not JSON


def test_no_face_gives_an_empty_result_and_grayscale_images_are_converted():
    namer = StillNamer(BoxDetector([]), TableEmbedder([]), index(), similarity_threshold=0.35, min_margin=0.08)
    result = namer.name(np.zeros((30, 40), np.uint8))
    assert len(result) == 0 and result.xyxy.shape == (0, 4) and (result.width, result.height) == (40, 30)


@pytest.mark.parametrize("image, message", [
    (None, "image is None"), (np.zeros((0, 5, 3), np.uint8), "image is empty"),
    (np.zeros((4, 4, 3), np.float32), "must be uint8"), (np.zeros((4, 4, 2), np.uint8), "must have shape"),
])
def test_bad_images_are_refused_with_the_reason(image, message):
    namer = StillNamer(BoxDetector([]), TableEmbedder([]), index(), similarity_threshold=0.35, min_margin=0.08)
    with pytest.raises(ValueError, match=message):
        namer.name(image)


@pytest.mark.parametrize("kw, message", [
    ({"similarity_threshold": 1.5, "min_margin": 0.1}, "similarity_threshold"),
    ({"similarity_threshold": 0.3, "min_margin": -1}, "min_margin"),
])
def test_bad_keywords_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        StillNamer(BoxDetector([]), TableEmbedder([]), index(), **kw)
    with pytest.raises(ValueError, match="detector"):
        StillNamer(None, TableEmbedder([]), index(), similarity_threshold=0.3, min_margin=0.1)
    with pytest.raises(ValueError, match="embedder"):
        StillNamer(BoxDetector([]), None, index(), similarity_threshold=0.3, min_margin=0.1)


def test_a_broken_embedder_is_an_error_not_a_wrong_name():
    namer = StillNamer(BoxDetector([[0, 0, 40, 40]]), TableEmbedder(np.full((1, DIM), np.nan)), index(),
                       similarity_threshold=0.35, min_margin=0.08)
    with pytest.raises(RuntimeError, match="embedder returned"):
        namer.name(IMAGE)


@pytest.mark.integration
def test_real_models_name_a_group_photo_and_leave_a_stranger_unknown(shared_data, shared_models, tmp_path):
    from facetrack.build import build_index, build_models, build_still_namer, open_gallery
    from facetrack.config import load_config
    from models.io import read_image

    config = load_config()
    detector, embedder = build_models(config, models_dir=shared_models, device="cpu", progress=False)
    store, _ = open_gallery(shared_data / "gallery", detector, embedder, config, db_path=tmp_path / "g.db",
                            progress=False)
    with store:
        namer = build_still_namer(config, detector, embedder, build_index(store, config))
    group = namer.name(read_image(shared_data / "probe" / "_group" / "fr_two_people.jpg"))
    assert sorted(group.names) == ["barack_obama", "joe_biden"]
    assert all(f.landmarks.shape == (5, 2) and f.margin > 0.1 for f in group.faces)
    for face in group.faces:                  # the landmarks lie inside their face's box
        x1, y1, x2, y2 = face.xyxy
        assert np.all((face.landmarks[:, 0] >= x1) & (face.landmarks[:, 0] <= x2))
        assert np.all((face.landmarks[:, 1] >= y1) & (face.landmarks[:, 1] <= y2))
    (stranger,) = namer.name(read_image(shared_data / "probe" / "_unknown" / "dlib_Tom_Cruise_avp_2014_4.jpg")).faces
    assert stranger.name is None and stranger.score < namer.similarity_threshold


def test_image_files_expands_folders_in_name_order_and_refuses_what_is_not_there(tmp_path):
    from pipeline.stills import image_files, is_still_source

    (tmp_path / "b.jpg").write_bytes(b"x")
    (tmp_path / "a.PNG").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.jpg").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.webp").write_bytes(b"x")
    named = tmp_path / "notes.txt"
    assert [p.name for p in image_files([tmp_path, named])] == ["a.PNG", "b.jpg", "notes.txt"]
    assert [p.name for p in image_files([tmp_path], recursive=True)] == ["a.PNG", "b.jpg", "c.webp"]
    with pytest.raises(ValueError, match="no such file or directory: .*nope.jpg"):
        image_files([tmp_path / "nope.jpg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images .* in .*empty .sub-folders are not searched"):
        image_files([tmp_path / "empty"])
    assert is_still_source(tmp_path) and is_still_source(str(tmp_path / "b.jpg"))
    assert not any(is_still_source(s) for s in (named, "rtsp://h/x.jpg", 0, tmp_path / "nope.jpg"))


def test_write_image_is_atomic_owner_only_and_refuses_an_unknown_extension(tmp_path):
    import os
    import stat

    from models.io import read_image
    from pipeline.image_file import write_image

    image = np.zeros((10, 12, 3), np.uint8)
    image[2:5, 3:7] = (0, 0, 255)
    old = os.umask(0)                      # even a permissive umask leaves the file owner-only
    try:
        out = write_image(tmp_path / "x.png", image)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    np.testing.assert_array_equal(read_image(out), image)            # PNG is lossless
    with pytest.raises(ValueError, match="cannot encode an image as .xyz"):
        write_image(tmp_path / "x.xyz", image)
    with pytest.raises(FileNotFoundError):
        write_image(tmp_path / "missing" / "x.png", image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]   # no temporary file left behind
