"""The gallery CLI commands that need no models: list, remove, rename, bench, errors."""
from __future__ import annotations

import json

import pytest

from facetrack.gallery_cli import EXIT_ERROR, load_config, main
from gallery.enroll import Enroller
from gallery.identifier import Identifier
from gallery.store import GalleryStore
from facetrack.config import DEFAULT_CONFIG, keywords_for
from test_gallery_fakes import FakeIdentity, person_vector


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "g.db"
    with GalleryStore(path, FakeIdentity()) as s:
        with s.write() as w:
            for p, n in (("alice", 2), ("bob", 1)):
                for k in range(n):
                    w.add_embedding(p, person_vector(p + str(k)))
    return path


def test_list_remove_rename(db, capsys):
    assert main(["list", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "alice" in out and "2 people, 3 embeddings" in out
    assert main(["rename", "alice", "Alice A", "--db", str(db)]) == 0
    assert main(["remove", "bob", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["list", "--db", str(db), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["people"] == [{"name": "Alice A", "embeddings": 2}]
    assert data["model"]["name"] == "fake-embedder"


def test_errors_are_clear_and_exit_nonzero(db, tmp_path, capsys):
    assert main(["remove", "zed", "--db", str(db)]) == EXIT_ERROR
    assert "no person named 'zed'" in capsys.readouterr().err
    assert main(["list", "--db", str(tmp_path / "missing.db")]) == EXIT_ERROR
    assert "no gallery" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()
    assert main(["list", "--db", str(tmp_path / "nodir" / "g.db")]) == EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00garbage" * 100)
    assert main(["list", "--db", str(bad)]) == EXIT_ERROR
    assert "not a facetrack gallery" in capsys.readouterr().err
    assert main(["rename", "alice", "bob", "--db", str(db)]) == EXIT_ERROR
    assert "already exists" in capsys.readouterr().err


def test_bench_command(capsys):
    assert main(["bench", "--sizes", "100,200", "--batch", "2", "--repeats", "1"]) == 0
    assert "query ms" in capsys.readouterr().out


def test_config_sections_map_to_constructor_keywords(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("identifier:\n  similarity_threshold: 0.4\n  min_observations: 5\n"
                   "gallery:\n  min_face_size: 32\n  score_mode: mean\n")
    data = load_config(str(cfg))
    assert keywords_for(Identifier, data["identifier"]) == {"similarity_threshold": 0.4, "min_observations": 5}
    assert keywords_for(Enroller, data["gallery"]) == {"min_face_size": 32}
    with pytest.raises(ValueError, match="not found"):
        load_config(str(tmp_path / "nope.yaml"))
    (tmp_path / "typo.yaml").write_text("identifier:\n  similarity_treshold: 0.4\n")
    with pytest.raises(ValueError, match="similarity_treshold"):
        load_config(str(tmp_path / "typo.yaml"))
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(str(tmp_path / "bad.yaml"))


@pytest.mark.parametrize("text, message", [
    ("gallery:\n  min_face_sise: 32\n", "unknown key gallery.min_face_sise"),
    ("identifier:\n  min_observation: 5\n", "unknown key identifier.min_observation"),
    ("detector:\n  confidence: 0.5\n", "unknown key detector.confidence"),
    ("embedder:\n  batch: 8\n", "unknown key embedder.batch"),
    ("galery:\n  score_mode: max\n", "unknown section 'galery'"),
    ("gallery: 3\n", "section 'gallery' must be a mapping"),
])
def test_a_typo_in_the_config_is_an_error_naming_the_key(tmp_path, capsys, db, text, message):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text(text)
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        load_config(str(cfg))
    # From the command line: one error line, exit 2, before any model is loaded.
    assert main(["identify", str(tmp_path / "photo.jpg"), "--db", str(db), "--config", str(cfg)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_the_shared_default_config_is_accepted_with_its_gallery_sections():
    import yaml

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data = load_config(str(DEFAULT_CONFIG))
    for name in ("detector", "embedder", "gallery", "identifier"):
        assert data[name] == raw[name], name
