"""The strict YAML loader, and every part built from configs/default.yaml."""
from __future__ import annotations

import numpy as np
import pytest

from facetrack.config import DEFAULT_CONFIG, SECTIONS, ConfigError, allowed_keys, load_config


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_default_config_has_every_section_and_every_key_is_a_constructor_keyword():
    config = load_config(DEFAULT_CONFIG)
    for section in SECTIONS:
        assert config[section], f"section {section} is missing from {DEFAULT_CONFIG}"
        assert set(config[section]) <= set(allowed_keys(section))


def test_default_config_lists_every_yaml_settable_keyword():
    # "Every tunable": each keyword of each builder appears in the default file.
    config = load_config(DEFAULT_CONFIG)
    for section in SECTIONS:
        assert set(allowed_keys(section)) == set(config[section]), section


def test_every_line_of_the_default_config_has_a_comment():
    for line in DEFAULT_CONFIG.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line, f"no comment: {line!r}"


@pytest.mark.parametrize("text, message", [
    ("trackr:\n  max_age: 3\n", "unknown section 'trackr'"),
    ("tracker:\n  max_agee: 3\n", "unknown key tracker.max_agee"),
    ("pipeline:\n  detector: 3\n", "unknown key pipeline.detector"),
    ("tracker: [1, 2]\n", "section 'tracker' must be a mapping"),
    ("- a\n- b\n", "top level must be a mapping"),
    ("tracker:\n  max_age: [\n", "not valid YAML"),
    ("models_dir: [1]\n", "models_dir must be a path"),
])
def test_bad_files_are_errors_naming_the_problem(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_config(write(tmp_path, text))


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    config = load_config(write(tmp_path, ""))
    assert config["tracker"] == {} and config["models_dir"] is None


def test_a_bad_value_is_a_value_error_naming_the_keyword():
    from pipeline.runner import Pipeline
    config = load_config(DEFAULT_CONFIG)
    kw = dict(config["pipeline"], detect_interval=0)
    with pytest.raises(ValueError, match="detect_interval"):
        Pipeline(object.__new__(type("D", (), {"detect": None})), None,
                 type("T", (), {"update": None})(), **kw)


@pytest.mark.integration
def test_every_part_builds_from_the_default_config(shared_models, tmp_path):
    from gallery.store import GalleryStore
    from facetrack.build import build_enroller, build_identifier, build_index, build_models, build_pipeline
    from pipeline.overlay import Overlay
    from pipeline.sources import open_source

    config = load_config(DEFAULT_CONFIG)
    detector, embedder = build_models(config, models_dir=shared_models, device="cpu", progress=False)
    store = GalleryStore(tmp_path / "g.db", embedder.identity)
    build_enroller(detector, embedder, config)
    identifier = build_identifier(build_index(store, config), config)
    pipeline = build_pipeline(config, detector, embedder, identifier)
    Overlay(**config["overlay"])
    import cv2
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((36, 64, 3), np.uint8))
    assert len(list(open_source(str(tmp_path / "a.png"), **config["source"]))) == 1
    result = pipeline.process(np.zeros((360, 640, 3), np.uint8), 0, 0.0)
    assert len(result) == 0 and result.detected


def test_sections_limits_the_key_check_but_not_the_section_names(tmp_path):
    path = write(tmp_path, "tracker:\n  max_agee: 3\ngallery:\n  score_mode: max\n")
    assert load_config(path, sections=("gallery",))["gallery"] == {"score_mode": "max"}
    with pytest.raises(ConfigError, match=r"unknown key tracker\.max_agee"):
        load_config(path, sections=("gallery", "tracker"))
    with pytest.raises(ConfigError, match="unknown section 'trackr'"):
        load_config(write(tmp_path, "trackr:\n  max_age: 3\n"), sections=("gallery",))
