"""Reading the YAML configuration, strictly (the application edge).

The file has one section per part; a section's keys are exactly the keyword
arguments of the class (or function) that builds the part, so the YAML and
the code cannot drift apart silently: an unknown section or key is a
:class:`ConfigError` that names it and lists what is allowed. Only
``demo.py`` and other command lines (``python -m gallery``, ``python -m
evaluation``, ``python -m facetrack.bench``) call :func:`load_config`; the
parts are then built from the dict by :mod:`facetrack.build`, and library
code takes plain keyword arguments.
"""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Tuple

#: Section name -> (the "module:attribute" builders whose keyword arguments are
#: its keys, parameters supplied by the composition and so not allowed in YAML).
SECTIONS: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {
    "detector": (("models.detector:FaceDetector",), ()),
    "embedder": (("models.embedder:FaceEmbedder",), ()),
    "quality": (("models.quality:face_quality",), ("frame_bgr", "detections")),
    "tracker": (("tracker.tracker:Tracker",), ("kalman_filter", "metric", "id_counter")),
    "identifier": (("gallery.identifier:Identifier",), ("index", "unknowns")),
    # Persistent Unknown people (gallery.unknowns): clustering and retention, and the recorder of a run.
    "unknowns": (("gallery.unknowns:UnknownGallery", "gallery.unknown_recorder:UnknownRecorder"),
                 ("store", "unknowns", "identifier", "source", "index", "clock")),
    # The gallery section is shared with ``python -m gallery``: index and enrollment keywords.
    "gallery": (("gallery.index:GalleryIndex", "gallery.enroll:Enroller"),
                ("names", "vectors", "dtype", "detector", "embedder", "image_reader", "quality_fn")),
    "scene_cut": (("pipeline.scene_cut:HistogramSceneCutDetector",), ()),
    "pipeline": (("pipeline.runner:Pipeline",),
                 ("detector", "embedder", "tracker", "identifier", "scene_cut_detector", "quality_fn",
                  "scene_linking")),
    "source": (("pipeline.sources:open_source",), ("spec",)),
    # Scene linking (used when the top-level ``link_scenes`` is true): the linker, the shot threader, the torso cue.
    "scene_links": (("pipeline.scene_links:SceneLinker", "pipeline.scenes:SceneThreader",
                     "models.torso:TorsoDescriber"), ("distance", "gallery_scores")),
    "overlay": (("pipeline.overlay:Overlay",), ()),
    # Events: the writer, the MQTT / webhook URLs and the retry of both (facetrack.outputs).
    "events": (("pipeline.events:EventWriter", "facetrack.outputs:build_event_sinks",
                "pipeline.event_sinks:RetryingSender"), ("path", "source", "sinks")),
    "blur": (("pipeline.blur:FaceBlur",), ()),
    # The run loop's own keywords (the overlap of output and processing); the parts are supplied.
    "loop": (("pipeline.loop:run",), ("pipeline", "source", "sinks", "overlay", "event_writer", "tracks_writer",
                                      "max_frames", "progress", "on_frame", "recorder", "blur")),
}

#: Top-level settings that are not sections (shared with ``python -m gallery``), with their types
#: (each may also be null).
TOP_LEVEL_KEYS: Dict[str, type] = {"models_dir": str, "link_scenes": bool}

#: The default configuration file, next to this package.
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


class ConfigError(ValueError):
    """The configuration file is missing, unreadable, or has an unknown or bad entry."""


def _target(spec: str):
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def allowed_keys(section: str) -> Tuple[str, ...]:
    """The keys allowed in ``section``: the keyword arguments of its builder."""
    if section not in SECTIONS:
        raise ConfigError(f"unknown section {section!r} (known sections: {', '.join(SECTIONS)})")
    specs, supplied = SECTIONS[section]
    keys: list = []
    for spec in specs:
        try:
            target = _target(spec)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"section {section!r}: cannot import {spec} ({exc})") from exc
        for p in inspect.signature(target).parameters.values():
            if (p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
                    and p.name not in supplied and p.name not in keys):
                keys.append(p.name)
    return tuple(keys)


def check_config(config: Mapping, sections: Optional[Iterable[str]] = None, *, origin: str = "config") -> None:
    """Raise :class:`ConfigError` on any unknown section or key.

    Parameters
    ----------
    config : mapping
        Section name -> mapping of keyword -> value.
    sections : iterable of str, optional
        Check only these sections' keys (unknown section names are always errors).
    origin : str
        Where the configuration came from, for messages.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"{origin}: the top level must be a mapping of sections, got {type(config).__name__}")
    for name, body in config.items():
        if name in TOP_LEVEL_KEYS:
            kind = TOP_LEVEL_KEYS[name]
            if body is not None and not isinstance(body, kind):
                what = "a path" if kind is str else "true or false"
                raise ConfigError(f"{origin}: {name} must be {what}, got {type(body).__name__}")
            continue
        if name not in SECTIONS:
            raise ConfigError(f"{origin}: unknown section {name!r} "
                              f"(known: {', '.join(list(SECTIONS) + list(TOP_LEVEL_KEYS))})")
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise ConfigError(f"{origin}: section {name!r} must be a mapping of keys, got {type(body).__name__}")
        if sections is not None and name not in sections:
            continue
        allowed = allowed_keys(name)
        for key in body:
            if key not in allowed:
                raise ConfigError(f"{origin}: unknown key {name}.{key} (allowed in {name!r}: {', '.join(allowed)})")


def load_config(path=None, *, check: bool = True, sections: Optional[Iterable[str]] = None) -> Dict[str, Dict]:
    """Read a YAML configuration file strictly.

    Parameters
    ----------
    path : str or Path, optional
        The file; :data:`DEFAULT_CONFIG` when None.
    check : bool
        Check every key against its builder's keyword arguments (imports the
        builders' modules).
    sections : iterable of str, optional
        With ``check``: check only these sections' keys (a command that uses
        a few sections of the shared file, e.g. ``python -m gallery``); unknown
        section names are errors all the same.

    Returns
    -------
    dict
        Every section of :data:`SECTIONS` (empty dict when absent) -> keywords,
        and every :data:`TOP_LEVEL_KEYS` entry (None when absent).
    """
    import yaml

    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"config path is not a file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    if raw is None:
        raw = {}
    if check:
        check_config(raw, sections, origin=str(path))
    elif not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    config = {name: dict(raw.get(name) or {}) for name in SECTIONS}
    for key in TOP_LEVEL_KEYS:
        config[key] = raw.get(key)
    return config


def keywords_for(target, keywords: Mapping) -> Dict:
    """The entries of ``keywords`` that ``target`` (a class or function) accepts.

    For sections shared by several builders (``gallery``); :func:`check_config`
    has already refused keys that no builder accepts.
    """
    params = inspect.signature(target).parameters
    return {k: v for k, v in keywords.items() if k in params}
