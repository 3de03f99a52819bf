"""``python -m gallery identify``: many photos and folders in one call, --gallery PHOTO_DIR|DB, table/CSV/JSON.

The bad-input tests need no weights; the others run the real models on ../shared (skipped when absent).
"""
from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from facetrack import gallery_cli
from facetrack.gallery_cli import EXIT_ERROR, main

GROUP = ("probe", "_group")
TWO_PEOPLE = ("probe", "_group", "fr_two_people.jpg")
STRANGER = ("probe", "_unknown", "dlib_Tom_Cruise_avp_2014_4.jpg")


def shared(root, parts):
    return str(root.joinpath(*parts))


@pytest.fixture
def no_models(monkeypatch):
    """Fails the test if a command loads the models."""
    def refuse(*a, **k):
        raise AssertionError("the models were loaded before the bad input was refused")
    monkeypatch.setattr(gallery_cli, "build_models", refuse)


@pytest.mark.parametrize("argv, message", [
    (["identify", "nowhere.jpg", "--gallery", "."], "no such file or directory: nowhere.jpg"),
    (["identify", "{img}"], "identify needs --gallery PHOTO_DIR|DB"),
    (["identify", "{img}", "--gallery", "no_gallery"], "--gallery: no such file or directory: no_gallery"),
    (["identify", "{img}", "--gallery", "{img}", "--db", "{img}"], "give --gallery or --db, not both"),
    (["identify", "{img}", "--gallery", "{img}", "--gallery-db", "x.db"], "--gallery-db is only for a photo folder"),
    (["identify", "{empty}", "--gallery", "."], "no images"),
])
def test_bad_input_is_refused_before_the_models_load(tmp_path, capsys, no_models, argv, message):
    img = tmp_path / "a.jpg"
    img.write_bytes(b"not really")
    (tmp_path / "empty").mkdir()
    argv = [a.format(img=img, empty=tmp_path / "empty") for a in argv]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.fixture(scope="module")
def gallery_db(shared_data, shared_models, tmp_path_factory):
    """The shared photo folder enrolled by ``identify --gallery PHOTO_DIR --gallery-db``; its first output."""
    db = tmp_path_factory.mktemp("identify") / "gallery.db"
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        rc = main(["identify", shared(shared_data, TWO_PEOPLE), "--gallery", str(shared_data / "gallery"),
                   "--gallery-db", str(db), "--models-dir", str(shared_models), "--device", "cpu", "--quiet"])
    assert rc == 0 and db.exists()
    return db, out.getvalue()


@pytest.mark.integration
def test_a_photo_folder_as_gallery_is_enrolled_and_the_table_names_both_people(gallery_db):
    from gallery.store import file_mode

    db, table = gallery_db
    assert file_mode(db) == 0o600
    rows = [line.split() for line in table.splitlines() if "fr_two_people.jpg" in line]
    assert sorted(r[3] for r in rows) == ["barack_obama", "joe_biden"], table
    assert "2 faces, 2 named" in table.splitlines()[-1]


@pytest.mark.integration
def test_files_and_folders_in_one_call_load_the_models_once_and_json_names_every_face(
        gallery_db, shared_data, shared_models, tmp_path, monkeypatch, capsys):
    calls = []
    real = gallery_cli.build_models
    monkeypatch.setattr(gallery_cli, "build_models", lambda *a: calls.append(1) or real(*a))
    broken = tmp_path / "photos"
    shutil.copytree(shared_data.joinpath(*GROUP), broken)
    (broken / "zz_truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    rc = main(["identify", str(broken), shared(shared_data, STRANGER), "--gallery", str(gallery_db[0]),
               "--models-dir", str(shared_models), "--device", "cpu", "--quiet", "--format", "json"])
    captured = capsys.readouterr()
    assert rc == 1 and len(calls) == 1                      # one unreadable image: reported, the rest named
    data = json.loads(captured.out)
    images = sorted(p.name for p in broken.iterdir() if p.name != "zz_truncated.jpg")
    assert [i["image"].split("/")[-1] for i in data["images"]] == images + [STRANGER[-1]]
    assert [e["image"].split("/")[-1] for e in data["errors"]] == ["zz_truncated.jpg"]
    assert "zz_truncated.jpg" in captured.err
    by_image = {}
    for face in data["faces"]:
        by_image.setdefault(face["image"].split("/")[-1], []).append(face["name"])
        assert len(face["xyxy"]) == 4 and len(face["landmarks"]) == 5 and 0 < face["confidence"] <= 1
    assert sorted(by_image["fr_two_people.jpg"]) == ["barack_obama", "joe_biden"]
    assert sorted(by_image["fr_kit_with_rose.jpg"]) == ["kit_harington", "rose_leslie"]
    assert by_image[STRANGER[-1]] == [None]
    assert sum(len(v) for v in by_image.values()) == sum(i["faces"] for i in data["images"])
    assert data["similarity_threshold"] == pytest.approx(0.35) and data["min_margin"] == pytest.approx(0.08)


@pytest.mark.integration
def test_csv_has_one_row_per_face_with_empty_names_for_unknown(gallery_db, shared_data, shared_models, capsys):
    from facetrack.identify import CSV_COLUMNS

    rc = main(["identify", shared(shared_data, TWO_PEOPLE), shared(shared_data, STRANGER), "--db", str(gallery_db[0]),
               "--models-dir", str(shared_models), "--device", "cpu", "--quiet", "--format", "csv",
               "--threshold", "0.5"])
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert sorted(r["name"] for r in rows) == ["", "barack_obama", "joe_biden"]
    stranger = next(r for r in rows if r["image"].endswith(STRANGER[-1]))
    assert stranger["best_match"] and float(stranger["score"]) < 0.5
    for r in rows:
        assert float(r["x1"]) < float(r["x2"]) and float(r["y1"]) < float(r["y2"])


def test_the_three_formats_agree_and_an_unreadable_image_is_an_error_of_its_own(tmp_path):
    import numpy as np

    from facetrack.identify import CSV_COLUMNS, format_results, name_images
    from gallery.index import GalleryIndex
    from pipeline.stills import StillNamer
    from test_stills import BoxDetector, TableEmbedder, unit

    index = GalleryIndex(["ann", "evil\x1b[2J"], np.stack([unit(0), unit(1)]))
    namer = StillNamer(BoxDetector([[0, 0, 40, 40], [50, 0, 90, 40]]), TableEmbedder([unit(0), unit(1)]), index,
                       similarity_threshold=0.5, min_margin=0.1)

    def read(path):
        if "bad" in str(path):
            raise ValueError(f"cannot decode {path}")
        return np.zeros((60, 100, 3), np.uint8)

    results, errors = name_images(namer, ["x.jpg", "bad.jpg", "y.jpg"], read=read)
    assert [r.source for r in results] == ["x.jpg", "y.jpg"] and errors == [("bad.jpg", "cannot decode bad.jpg")]
    table = format_results(results, errors, "table", namer)
    assert "\x1b" not in table and "evil\\x1b[2J" in table          # a stored name cannot drive the terminal
    assert "bad.jpg" in table and "error: cannot decode" in table
    assert table.splitlines()[-1] == "2 images, 4 faces, 4 named; 1 could not be read"
    rows = list(csv.DictReader(io.StringIO(format_results(results, errors, "csv", namer))))
    assert list(rows[0]) == list(CSV_COLUMNS) and len(rows) == 4
    assert [r["name"] for r in rows[:2]] == ["ann", "evil\x1b[2J"] and rows[0]["x2"] == "40.0"
    data = json.loads(format_results(results, errors, "json", namer))
    assert [(f["image"], f["face"], f["name"]) for f in data["faces"]] == [
        ("x.jpg", 0, "ann"), ("x.jpg", 1, "evil\x1b[2J"), ("y.jpg", 0, "ann"), ("y.jpg", 1, "evil\x1b[2J")]
    assert data["errors"] == [{"image": "bad.jpg", "error": "cannot decode bad.jpg"}]
    assert data["images"][0] == {"image": "x.jpg", "width": 100, "height": 60, "faces": 2}
    with pytest.raises(ValueError, match="format must be one of table, csv, json"):
        format_results(results, errors, "xml", namer)
