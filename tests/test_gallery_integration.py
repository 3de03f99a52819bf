"""The gallery with the real detector and embedder on ../shared (skipped when it is absent)."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.integration

# The founders' best VGG-Face figures on the same 300 pairs (decision-stump split).
FOUNDERS_VGG_F1 = 0.944


@pytest.fixture(scope="session")
def models(detector_weights, embedder_weights):
    from models.detector import FaceDetector
    from models.embedder import FaceEmbedder

    return FaceDetector(detector_weights, device="cpu"), FaceEmbedder(embedder_weights, device="cpu")


@pytest.fixture(scope="session")
def enrolled(models, shared_data, tmp_path_factory):
    from gallery.enroll import Enroller
    from gallery.store import GalleryStore

    db = tmp_path_factory.mktemp("gallery") / "gallery.db"
    detector, embedder = models
    with GalleryStore(db, embedder.identity) as store:
        report = Enroller(detector, embedder).enroll_folder(shared_data / "gallery", store, progress=False)
    return db, report


def test_enroll_shared_gallery(enrolled, models):
    from gallery.store import GalleryStore, file_mode

    db, report = enrolled
    print("\n" + report.table())
    assert report.counts() == {"enrolled": 34}, report.table()
    assert file_mode(db) == 0o600
    with GalleryStore(db, models[1].identity) as store:
        assert len(store.people()) == 18 and len(store) == 34
        assert store.model.name == "edgeface_xs" and store.model.dim == 512


def test_probe_identification_accuracy(enrolled, models, shared_data):
    from gallery.identifier import Identifier
    from gallery.index import GalleryIndex
    from gallery.photos import evaluate_probes
    from gallery.store import GalleryStore

    db, _ = enrolled
    with GalleryStore(db, models[1].identity) as store:
        index = GalleryIndex.from_store(store)
    defaults = Identifier(index)
    result = evaluate_probes(shared_data / "probe", *models, index, progress=False,
                             similarity_threshold=defaults.similarity_threshold, min_margin=defaults.min_margin)
    print("\n" + result.table())
    d = result.as_dict()
    assert d["known"] == 40 and d["unknown"] == 4
    assert d["wrong_names"] == 0
    assert result.accuracy >= 0.95


def test_identify_cli_names_both_people(enrolled, shared_data, shared_models, capsys):
    from facetrack.gallery_cli import main

    db, _ = enrolled
    rc = main(["identify", str(shared_data / "probe" / "_group" / "fr_two_people.jpg"), "--db", str(db),
               "--models-dir", str(shared_models), "--device", "cpu", "--json"])
    assert rc == 0
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert sorted(f["name"] for f in faces) == ["barack_obama", "joe_biden"]
    assert all(f["margin"] > 0.1 for f in faces)


def test_stranger_is_unknown(enrolled, models, shared_data):
    from gallery.index import GalleryIndex
    from gallery.photos import identify_photo
    from gallery.store import GalleryStore
    from models.io import read_image

    db, _ = enrolled
    with GalleryStore(db, models[1].identity) as store:
        index = GalleryIndex.from_store(store)
    image = read_image(shared_data / "probe" / "_unknown" / "dlib_Tom_Cruise_avp_2014_4.jpg")
    (face,) = identify_photo(image, *models, index, similarity_threshold=0.35, min_margin=0.08)
    assert face.name is None and face.score < 0.35


def test_every_bad_input_is_skipped_with_its_reason(models, shared_data, tmp_path):
    import cv2

    from gallery.enroll import Enroller
    from gallery.store import GalleryStore
    from models.io import read_image

    root = tmp_path / "photos" / "jeff_bezos"
    root.mkdir(parents=True)
    face = read_image(shared_data / "gallery" / "jeff_bezos" / "deepface_img20.jpg")
    cv2.imwrite(str(root / "good.jpg"), face)
    (root / "notes.txt").write_text("not a photo")
    (root / "corrupt.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    cv2.imwrite(str(root / "blank.png"), np.full((400, 400, 3), 128, np.uint8))
    cv2.imwrite(str(root / "tiny.png"), cv2.resize(face, None, fx=0.1, fy=0.1, interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(root / "blurred.png"), cv2.GaussianBlur(face, (0, 0), 14))
    two = read_image(shared_data / "probe" / "_group" / "fr_two_people.jpg")
    cv2.imwrite(str(root / "two.jpg"), two)
    with GalleryStore(tmp_path / "g.db", models[1].identity) as store:
        report = Enroller(*models).enroll_folder(tmp_path / "photos", store, progress=False)
        assert len(store) == 1
    print("\n" + report.table())
    reasons = {r.path.name: (r.status, r.reason) for r in report.results}
    assert reasons["good.jpg"][0] == "enrolled"
    expected = {"notes.txt": "not an image", "corrupt.jpg": "not an image", "blank.png": "no face",
                "tiny.png": "too small", "blurred.png": "too blurred", "two.jpg": "comparable size"}
    for name, text in expected.items():
        status, reason = reasons[name]
        assert status == "skipped" and text in reason, (name, reason)


def test_real_model_refuses_a_gallery_of_another_model(models, tmp_path):
    from gallery.store import GalleryStore, ModelMismatchError
    from test_gallery_fakes import FakeIdentity

    GalleryStore(tmp_path / "g.db", FakeIdentity()).close()
    with pytest.raises(ModelMismatchError, match="edgeface_xs"):
        GalleryStore(tmp_path / "g.db", models[1].identity)


def test_calibration_on_deepface_pairs_beats_the_founders(models, shared_models):
    from gallery import calibrate as cal
    from gallery.photos import largest_face_embedding
    from models.io import read_image

    pairs = cal.read_pairs_csv(shared_models / "verify" / "deepface_master.csv")
    assert len(pairs) == 300
    emb = {p: largest_face_embedding(read_image(p), *models) for p in {x for a, b, _ in pairs for x in (a, b)}}
    assert all(e is not None for e in emb.values())
    scores = cal.pair_scores(np.stack([emb[a] for a, _, _ in pairs]), np.stack([emb[b] for _, b, _ in pairs]))
    same = np.array([s for _, _, s in pairs])
    report = cal.threshold_report(scores, same)
    print("\n" + cal.format_report(report))
    print("founders (VGG-Face): stump precision 100 %, recall 89.5 %, F1 94.4 %, accuracy 98.7 %; "
          "2-sigma precision 90.5 %, recall 100 %")
    assert (report.n_same, report.n_different) == (38, 262)
    assert report.rows["stump"].f1 > FOUNDERS_VGG_F1
    assert report.auc > 0.99
    assert 0.2 < report.rows["stump"].threshold < 0.5


@pytest.mark.parametrize("person, first, last", [("lin_manuel_miranda", 82, 210),   # near-frontal, hands in front
                                                 ("barack_obama", 211, 274)])       # three-quarter profile
def test_identifier_names_a_track_on_the_hamilton_clip(enrolled, models, shared_data, person, first, last):
    """A track following the largest face of one shot of the clip (every 3rd frame) gets the right name
    only after min_observations, and keeps it to the end of the shot."""
    import cv2

    from gallery.identifier import Identifier
    from gallery.index import GalleryIndex
    from gallery.store import GalleryStore
    from models.quality import face_quality
    from test_gallery_fakes import FakeTrack

    db, _ = enrolled
    detector, embedder = models
    with GalleryStore(db, embedder.identity) as store:
        ident = Identifier(GalleryIndex.from_store(store), min_observations=3)
    cap = cv2.VideoCapture(str(shared_data / "video" / "short_hamilton_clip.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, first)
    names, singles = [], []
    for k in range(first, last + 1):
        ok, frame = cap.read()
        assert ok, f"cannot read frame {k}"
        if (k - first) % 3:
            continue
        dets = detector.detect(frame)
        if len(dets) == 0:
            continue
        dets = dets.with_embedding(embedder.embed(frame, dets))
        row = int(np.argmax(np.minimum(dets.width, dets.height)))
        singles.append(float(ident.index.person_scores(dets.embedding[row])[0, ident.index.people.index(person)]))
        ident.update([FakeTrack(1, int(dets.det_index[row]))], dets, face_quality(frame, dets).score)
        names.append(ident.get(1).name)
    cap.release()
    got = ident.get(1)
    print(f"\n{person}: {got}; single-frame similarity mean {np.mean(singles):.3f} "
          f"(min {np.min(singles):.3f}), named from observation {names.index(person) + 1}")
    assert names[:2] == [None, None]
    assert got.name == person and got.observations == len(names)
    assert all(n == person for n in names[names.index(person):])        # sticky once named
