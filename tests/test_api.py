"""The Python API (facetrack.FaceTracker) with the real weights and data of ../shared (skipped when absent);
the bad-input tests load no model."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from facetrack import api

CLIP = ("video", "short_hamilton_clip.mp4")
TWO_PEOPLE = ("probe", "_group", "fr_two_people.jpg")
#: People of the clip and of the two-people photo, enrolled from ../shared/data/gallery.
PEOPLE = ("alex_lacamoire", "barack_obama", "joe_biden", "lin_manuel_miranda")
FRAMES = 24      # the clip's first shot: lin_manuel_miranda (and alex_lacamoire, small) before the first cut


def test_import_facetrack_loads_nothing_heavy_and_exports_the_tracker_lazily():
    code = ("import sys, facetrack; heavy = [m for m in ('cv2', 'torch', 'onnxruntime', 'facetrack.api') "
            "if m in sys.modules]; assert heavy == [], heavy; from facetrack import FaceTracker, TrackedFrame; "
            "assert FaceTracker.__module__ == 'facetrack.api'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    with pytest.raises(AttributeError, match="no attribute 'FaceTrackr'"):
        import facetrack
        facetrack.FaceTrackr  # noqa: B018


@pytest.fixture
def no_models(monkeypatch):
    import facetrack.build

    def refuse(*a, **k):
        raise AssertionError("the models were loaded before the bad input was refused")
    monkeypatch.setattr(facetrack.build, "build_models", refuse)


@pytest.mark.parametrize("kw, error, message", [
    ({"gallery": "no/such/photos"}, FileNotFoundError, "gallery: no such file or directory: no/such/photos"),
    ({"config": {"identifier": {"similarity_treshold": 0.4}}}, ValueError, "unknown key identifier.similarity_treshold"),
    ({"config": {"identifer": {}}}, ValueError, "unknown section 'identifer'"),
    ({"config": 3}, ValueError, "config must be a YAML path or a mapping"),
    ({"config": "no/such.yaml"}, ValueError, "config file not found"),
])
def test_bad_arguments_are_refused_before_the_models_load(no_models, kw, error, message):
    with pytest.raises(error, match=message):
        api.FaceTracker(**kw)


@pytest.fixture(scope="module")
def tracker(shared_data, shared_models, tmp_path_factory):
    """A FaceTracker over a photo folder of four people, enrolled into the default cache (made temporary)."""
    root = tmp_path_factory.mktemp("api")
    photos = root / "photos"
    for person in PEOPLE:
        shutil.copytree(shared_data / "gallery" / person, photos / person)
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(root / "cache")
    try:
        ft = api.FaceTracker(gallery=photos, models_dir=shared_models, device="cpu")
    finally:
        if old is None:
            os.environ.pop("XDG_CACHE_HOME")
        else:
            os.environ["XDG_CACHE_HOME"] = old
    return ft, root


@pytest.mark.integration
def test_a_photo_folder_is_enrolled_once_into_a_private_cached_database(tracker):
    from gallery.store import file_mode

    ft, root = tracker
    assert ft.people == sorted(PEOPLE)
    (db,) = (root / "cache" / "facetrack" / "galleries").glob("*.db")
    assert file_mode(db) == 0o600 and "photos" not in db.name


@pytest.mark.integration
def test_identify_takes_a_path_an_array_or_a_frame_and_names_both_people(tracker, shared_data):
    from models.io import read_image
    from pipeline.source_base import Frame

    ft, _ = tracker
    path = shared_data.joinpath(*TWO_PEOPLE)
    by_path = ft.identify(path)
    assert sorted(by_path.names) == ["barack_obama", "joe_biden"] and by_path.source == str(path)
    image = read_image(path)
    for other in (ft.identify(image), ft.identify(Frame(image, 7, 0.3)), ft.identify(str(path))):
        assert other.names == by_path.names
        np.testing.assert_allclose(other.xyxy, by_path.xyxy)
    assert all(f.landmarks.shape == (5, 2) and f.score >= ft.namer.similarity_threshold for f in by_path.faces)
    drawn = ft.annotate(image, by_path)
    assert drawn.shape == image.shape and not np.array_equal(drawn, image)
    assert np.array_equal(image, read_image(path))                  # the caller's image is not drawn on
    with pytest.raises(ValueError, match="must be a path, a BGR numpy array or a source's Frame"):
        ft.identify(42)


@pytest.mark.integration
def test_an_image_or_a_folder_as_track_source_is_named_per_image(tracker, shared_data, tmp_path):
    ft, _ = tracker
    folder = tmp_path / "unrelated"
    folder.mkdir()
    shutil.copy(shared_data.joinpath(*TWO_PEOPLE), folder / "a.jpg")
    shutil.copy(shared_data / "probe" / "_unknown" / "dlib_Tom_Cruise_avp_2014_4.jpg", folder / "b.jpg")
    (folder / "c.jpg").write_bytes(b"broken")          # skipped with a warning
    frames = list(ft.track(folder))
    assert [os.path.basename(f.source) for f in frames] == ["a.jpg", "b.jpg"]
    assert all(f.still for f in frames)
    assert sorted(frames[0].names) == ["barack_obama", "joe_biden"] and frames[1].names == [None]
    np.testing.assert_array_equal(frames[0].track_ids, [0, 1])
    assert frames[0].boxes.shape == (2, 4) and np.all(frames[0].confidence > 0.5)
    (single,) = ft.track(folder / "a.jpg")
    assert single.names == frames[0].names and not np.array_equal(single.image, single.original)


@pytest.mark.integration
def test_track_a_video_names_its_people_and_frames_passed_in_give_the_same_tracks(tracker, shared_data, monkeypatch):
    import facetrack.build
    from pipeline.sources import open_source

    ft, _ = tracker
    monkeypatch.setattr(facetrack.build, "build_models", lambda *a, **k: pytest.fail("models loaded again"))
    clip = shared_data.joinpath(*CLIP)
    tracked = list(ft.track(clip, max_frames=FRAMES))
    assert [f.index for f in tracked] == list(range(FRAMES)) and not any(f.still for f in tracked)
    named = [f for f in tracked if "lin_manuel_miranda" in f.names]
    assert len(named) >= FRAMES // 2, [f.names for f in tracked]
    ids = {int(f.track_ids[f.names.index("lin_manuel_miranda")]) for f in named}
    assert len(ids) == 1                                # one track for him through the shot
    last = named[-1]
    assert last.boxes.shape == (len(last), 4) and len(last.names) == len(last.scores) == len(last)
    assert not np.array_equal(last.image, last.original)  # boxes and labels drawn on a copy

    # The source's Frame objects straight in (and bare arrays): the same tracks, names and boxes.
    with open_source(str(clip)) as source:
        frames = [frame for _, frame in zip(range(FRAMES), source)]
    for given in (frames, [f.image for f in frames]):
        again = list(ft.track(given))
        assert [f.names for f in again] == [f.names for f in tracked]
        assert [f.track_ids.tolist() for f in again] == [f.track_ids.tolist() for f in tracked]
    ft.reset()
    one_by_one = [ft.process(frame) for frame in frames]
    assert [f.names for f in one_by_one] == [f.names for f in tracked]
    np.testing.assert_allclose(one_by_one[-1].boxes, tracked[-1].boxes)
