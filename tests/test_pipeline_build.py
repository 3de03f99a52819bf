"""The composition layer: configuration sections reach the constructors; galleries are opened or enrolled."""
from __future__ import annotations

import os

from pathlib import Path

import numpy as np
import pytest

from gallery.store import GalleryStore
from facetrack import build
from test_gallery_fakes import FakeIdentity, person_vector


def test_build_pipeline_passes_every_section_to_its_constructor():
    detector = type("D", (), {"detect": lambda self, frame: None})()
    config = {
        "tracker": {"max_age": 7, "n_init": 2},
        "scene_cut": {"threshold": 0.77},
        "quality": {"min_size": 33.0},
        "pipeline": {"detect_interval": 3, "warmup_detect_interval": 2},
    }
    p = build.build_pipeline(config, detector, None, None, warmup_detect_interval=1)
    assert (p.schedule.detect_interval, p.schedule.warmup_detect_interval) == (3, 1)   # overrides win
    assert (p.tracker.max_age, p.tracker.n_init) == (7, 2)
    assert p.scene_cut_detector.threshold == pytest.approx(0.77)
    assert p.quality_fn.keywords == {"min_size": 33.0}
    assert config["pipeline"] == {"detect_interval": 3, "warmup_detect_interval": 2}    # not modified
    # Absent sections are the constructors' defaults (the configured values, one home each).
    from pipeline.runner import Pipeline
    import inspect
    default = inspect.signature(Pipeline).parameters["detect_interval"].default
    assert build.build_pipeline({}, detector, None).schedule.detect_interval == default == 3


def test_with_scene_linking_the_linker_scores_faces_against_the_identifiers_gallery():
    from gallery.identifier import Identifier
    from gallery.index import GalleryIndex

    detector = type("D", (), {"detect": lambda self, frame: None})()
    ann, bob = person_vector("alice"), person_vector("bob")
    identifier = Identifier(GalleryIndex(["alice", "bob"], np.stack([ann, bob])))
    config = {"link_scenes": True, "scene_links": {"max_name_deficit": 0.05}}
    linker = build.build_pipeline(config, detector, None, identifier).scene_linking.linker
    assert linker.max_name_deficit == 0.05
    people, scores = linker.gallery_scores(ann)
    assert list(people) == ["alice", "bob"]
    assert scores == pytest.approx([1.0, float(ann @ bob)], abs=1e-5)
    # Without an identifier there is no gallery to veto with.
    assert build.build_pipeline(config, detector, None).scene_linking.linker.gallery_scores is None


def test_a_bad_value_names_the_keyword():
    detector = type("D", (), {"detect": lambda self, frame: None})()
    with pytest.raises(ValueError, match="max_age"):
        build.build_pipeline({"tracker": {"max_age": -1}}, detector, None)


class FakeEmbedder:
    identity = FakeIdentity()


def fake_store(path: Path) -> Path:
    with GalleryStore(path, FakeIdentity()) as s:
        with s.write() as w:
            w.add_embedding("alice", person_vector("alice"))
            w.add_embedding("bob", person_vector("bob"))
    return path


def test_open_gallery_opens_a_database_and_builds_index_and_identifier(tmp_path):
    db = fake_store(tmp_path / "g.db")
    config = {"gallery": {"score_mode": "max", "min_face_size": 10}, "identifier": {"min_observations": 4}}
    store, report = build.open_gallery(db, None, FakeEmbedder(), config)
    try:
        assert report is None and len(store) == 2
        index = build.build_index(store, config)
        assert index.score_mode == "max" and index.people == ["alice", "bob"]
        assert build.build_index(store, config, score_mode="mean").score_mode == "mean"
        identifier = build.build_identifier(index, config)
        assert identifier.min_observations == 4
    finally:
        store.close()


def test_open_gallery_refuses_what_it_cannot_open(tmp_path):
    db = fake_store(tmp_path / "g.db")
    with pytest.raises(FileNotFoundError, match="no such file"):
        build.open_gallery(tmp_path / "nope", None, FakeEmbedder(), {})
    with pytest.raises(ValueError, match="db_path"):
        build.open_gallery(db, None, FakeEmbedder(), {}, db_path=tmp_path / "other.db")


def test_open_gallery_enrolls_a_photo_folder_into_the_given_database(tmp_path, monkeypatch):
    calls = {}

    class FakeEnroller:
        def enroll_folder(self, photo_dir, store, progress):
            calls.update(photo_dir=photo_dir, store=store, progress=progress)
            return "report"

    def fake_enroller(detector, embedder, config):
        calls["config"] = config
        return FakeEnroller()

    monkeypatch.setattr(build, "build_enroller", fake_enroller)
    photos = tmp_path / "photos"
    (photos / "alice").mkdir(parents=True)
    db = tmp_path / "sub" / "g.db"
    store, report = build.open_gallery(photos, None, FakeEmbedder(), {"gallery": {}}, db_path=db, progress=False)
    store.close()
    assert report == "report" and db.exists() and calls["photo_dir"] == photos and calls["progress"] is False


def test_default_gallery_db_is_per_folder_and_model(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    a = build.default_gallery_db(tmp_path / "photos", "edgeface_xs")
    assert a.parent == tmp_path / "cache" / "facetrack" / "galleries"
    assert "photos" not in a.name and a.name.endswith("-edgeface_xs.db")     # the name hides the folder
    assert build.default_gallery_db(tmp_path / "other" / "photos", "edgeface_xs") != a
    assert build.default_gallery_db(tmp_path / "photos", "w600k_r50") != a


def test_the_gallery_cache_folder_is_owner_only_and_old_names_are_renamed(tmp_path, monkeypatch):
    import hashlib
    import stat

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "cache" / "facetrack" / "galleries"
    root.mkdir(parents=True, mode=0o755)
    os.chmod(root, 0o755)                                   # as an older version left it
    photos = (tmp_path / "ada_and_bob").resolve()
    old = root / f"ada_and_bob-{hashlib.sha1(str(photos).encode()).hexdigest()[:8]}-edgeface_xs.db"
    old.write_bytes(b"")
    new = build.default_gallery_db(photos, "edgeface_xs")
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert new.exists() and not old.exists()
    # Folders made for a --gallery-db are owner-only too.
    from gallery.schema import make_private_dir

    make_private_dir(tmp_path / "a" / "b")
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in (tmp_path / "a", tmp_path / "a" / "b")} == {0o700}


def test_build_enroller_takes_only_the_enrolment_keywords_of_the_gallery_section():
    from gallery.enroll import Enroller

    detector = type("D", (), {"detect": None})()
    embedder = type("E", (), {"embed": None, "identity": FakeIdentity()})()
    enroller = build.build_enroller(detector, embedder, {"gallery": {"min_face_size": 33, "score_mode": "max"}})
    assert isinstance(enroller, Enroller) and enroller.min_face_size == 33


@pytest.mark.integration
def test_build_models_weights_and_device_overrides(shared_models):
    config = {"detector": {"weights": "does-not-exist.pt", "device": "cuda"}, "embedder": {"device": "cuda"}}
    detector, embedder = build.build_models(config, device="cpu", progress=False,
                                            detector_weights=shared_models / "yolov8n-face.pt",
                                            embedder_weights=shared_models / "edgeface_xs.onnx")
    assert embedder.identity.name == "edgeface_xs"
    assert len(detector.detect(np.zeros((64, 64, 3), np.uint8))) == 0
