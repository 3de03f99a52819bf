"""Building the parts from a configuration (the composition layer).

Every command that runs faces through the models -- ``demo.py``,
``python -m facetrack.bench``, ``python -m evaluation bench``/``regression``
and ``python -m gallery`` -- builds its parts here, so they are built the
same way everywhere::

    config = facetrack.config.load_config(path)          # the edge: YAML -> dict, strictly checked
    detector, embedder = build_models(config, device="cpu")
    store, report = open_gallery("photos/", detector, embedder, config)
    identifier = build_identifier(build_index(store, config), config)
    pipeline = build_pipeline(config, detector, embedder, identifier)

The functions take the configuration as a plain dict (section name -> the
keyword arguments of that section's constructor, as
:func:`facetrack.config.load_config` returns it; an absent section means the
constructor's defaults). No YAML is read here, nothing is printed and
nothing happens at import: the heavy modules are imported by the function
that needs them.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import Callable, Mapping, Optional, Union

import numpy as np

logger = logging.getLogger(__name__)

#: Weights used when neither the caller nor the ``detector`` / ``embedder``
#: section names any (a registered name and a role of :mod:`models.weights`).
DEFAULT_DETECTOR = "yolov8n-face"
DEFAULT_EMBEDDER = "arcface"

PathLike = Union[str, os.PathLike]


def section(config: Mapping, name: str) -> dict:
    """A copy of the keywords of section ``name`` (empty when absent or None)."""
    return dict(config.get(name) or {})


# --------------------------------------------------------------------- models
def build_models(config: Mapping, *, models_dir: Optional[PathLike] = None, device: Optional[str] = None,
                 detector_weights: Optional[PathLike] = None, embedder_weights: Optional[PathLike] = None,
                 progress: bool = True):
    """The face detector and embedder of the ``detector`` / ``embedder`` sections.

    Parameters
    ----------
    config : mapping
        The configuration; ``detector.weights`` / ``embedder.weights`` name the
        weights (default :data:`DEFAULT_DETECTOR` / :data:`DEFAULT_EMBEDDER`), the
        other keys are constructor keywords.
    models_dir : path, optional
        Folder searched first for the weights (default: the config's
        ``models_dir``), then ``$FACETRACK_MODELS_DIR`` and the cache, see
        :func:`models.weights.resolve_weights`.
    device : str, optional
        Overrides both sections' ``device``.
    detector_weights, embedder_weights : path or name, optional
        Override the sections' ``weights``.
    progress : bool
        Show a progress bar while downloading weights.

    Returns
    -------
    detector : models.detector.FaceDetector
    embedder : models.embedder.FaceEmbedder
    """
    from models.detector import FaceDetector
    from models.embedder import FaceEmbedder
    from models.weights import resolve_weights

    models_dir = models_dir or config.get("models_dir")
    det_kw, emb_kw = section(config, "detector"), section(config, "embedder")
    if device is not None:
        det_kw["device"] = emb_kw["device"] = device
    det_name = detector_weights or det_kw.pop("weights", None) or DEFAULT_DETECTOR
    emb_name = embedder_weights or emb_kw.pop("weights", None) or DEFAULT_EMBEDDER
    det_kw.pop("weights", None)
    emb_kw.pop("weights", None)
    detector = FaceDetector(resolve_weights(det_name, models_dir=models_dir, progress=progress), **det_kw)
    embedder = FaceEmbedder(resolve_weights(emb_name, models_dir=models_dir, progress=progress), **emb_kw)
    return detector, embedder


# -------------------------------------------------------------------- gallery
def default_gallery_db(photo_dir: PathLike, model_name: str) -> Path:
    """Where a photo folder's gallery is kept by default:
    ``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/facetrack/galleries/<hash of the folder's path>-<model>.db``.

    The name does not reveal the folder (nor the people it is named after); the
    folder is made owner-only. A gallery under the older name
    (``<folder>-<hash>-<model>.db``) is renamed to the new one.
    """
    from gallery.schema import DIR_MODE, make_private, make_private_dir

    photo_dir = Path(photo_dir).resolve()
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facetrack" / "galleries"
    make_private_dir(root)
    make_private(root, DIR_MODE)
    key = str(photo_dir).encode()
    path = root / f"{hashlib.sha256(key).hexdigest()[:24]}-{model_name}.db"
    old = root / f"{photo_dir.name}-{hashlib.sha1(key).hexdigest()[:8]}-{model_name}.db"
    if old.exists() and not path.exists():
        os.replace(old, path)
    return path


def build_enroller(detector, embedder, config: Mapping):
    """A :class:`gallery.enroll.Enroller` with the enrolment keywords of the ``gallery`` section."""
    from gallery.enroll import Enroller
    from facetrack.config import keywords_for

    return Enroller(detector, embedder, **keywords_for(Enroller, section(config, "gallery")))


def open_gallery(spec: PathLike, detector, embedder, config: Mapping, *, db_path: Optional[PathLike] = None,
                 progress: bool = True, timeout: Optional[float] = None):
    """Open a gallery database, or enroll a photo folder into one (incrementally).

    Parameters
    ----------
    spec : path
        A photo folder (one subfolder per person, see :mod:`gallery.enroll`) or
        an existing gallery ``.db`` file.
    detector, embedder
        The models (the database must hold the embedder's model identity).
    config : mapping
        Its ``gallery`` section holds the enrolment keywords.
    db_path : path, optional
        For a photo folder: the database to enroll into (created with its
        folder when missing); default :func:`default_gallery_db`. Not allowed
        with a ``.db`` file.
    progress : bool
        Show a progress bar while enrolling.
    timeout : float, optional
        Seconds to wait for another process's lock on the database (default:
        :class:`gallery.store.GalleryStore`'s).

    Returns
    -------
    store : gallery.store.GalleryStore
        Open; the caller closes it.
    report : gallery.enroll.EnrollReport or None
        What enrolment did (None for a database file).

    Raises
    ------
    FileNotFoundError
        ``spec`` does not exist.
    ValueError
        ``db_path`` given with a database file.
    """
    from gallery.store import GalleryStore

    spec = Path(spec).expanduser()
    if not spec.exists():
        raise FileNotFoundError(f"no such file or directory: {spec}")
    lock = {} if timeout is None else {"timeout": timeout}
    if not spec.is_dir():
        if db_path is not None:
            raise ValueError(f"db_path is only for a photo folder; {spec} is already a database")
        return GalleryStore(spec, embedder.identity, create=False, **lock), None
    from gallery.schema import make_private_dir

    db = Path(db_path).expanduser() if db_path is not None else default_gallery_db(spec, embedder.identity.name)
    make_private_dir(db.parent)                  # folders made for it are owner-only
    store = GalleryStore(db, embedder.identity, **lock)
    try:
        report = build_enroller(detector, embedder, config).enroll_folder(spec, store, progress=progress)
    except BaseException:
        store.close()
        raise
    return store, report


def enrollment_summary(store, report) -> str:
    """One line on what :func:`open_gallery` did to a photo folder's database (``report`` not None)."""
    counts = report.counts()
    return (f"gallery {store.path}: {len(store.people())} people, {len(store)} embeddings "
            f"({counts.get('enrolled', 0)} enrolled, {counts.get('updated', 0)} updated, "
            f"{counts.get('unchanged', 0)} unchanged, {counts.get('skipped', 0)} skipped)")


def build_index(store, config: Mapping, **overrides):
    """A :class:`gallery.index.GalleryIndex` of every embedding of ``store``, with
    the index keywords of the ``gallery`` section (``overrides`` win)."""
    from gallery.index import GalleryIndex
    from facetrack.config import keywords_for

    kw = keywords_for(GalleryIndex, section(config, "gallery"))
    kw.update(overrides)
    return GalleryIndex.from_store(store, **kw)


def build_identifier(index, config: Mapping, unknowns=None):
    """A :class:`gallery.identifier.Identifier` over ``index`` with the ``identifier`` section
    (and the persistent Unknowns' :class:`~gallery.unknown_index.UnknownIndex`, see :func:`build_unknowns`)."""
    from gallery.identifier import Identifier

    return Identifier(index, unknowns=unknowns, **section(config, "identifier"))


def build_unknowns(store, config: Mapping):
    """The persistent Unknowns of an open gallery: a :class:`gallery.unknowns.UnknownGallery` with the
    ``unknowns`` section, and its :class:`~gallery.unknown_index.UnknownIndex` for :func:`build_identifier`."""
    from gallery.unknowns import UnknownGallery
    from facetrack.config import keywords_for

    unknowns = UnknownGallery(store, **keywords_for(UnknownGallery, section(config, "unknowns")))
    return unknowns, unknowns.index()


def build_unknown_recorder(unknowns, identifier, index, config: Mapping, *, source: str = ""):
    """A :class:`gallery.unknown_recorder.UnknownRecorder` (the run loop's ``recorder``) that remembers
    the run's appearances in ``unknowns`` and keeps ``index`` (the identifier's) up to date."""
    from gallery.unknown_recorder import UnknownRecorder
    from facetrack.config import keywords_for

    return UnknownRecorder(unknowns, identifier, source=source, index=index,
                           **keywords_for(UnknownRecorder, section(config, "unknowns")))


# ------------------------------------------------------------------- pipeline
def build_blur(config: Mapping, mode: Optional[str] = None):
    """A :class:`pipeline.blur.FaceBlur` from the ``blur`` section (``mode``, e.g. ``--blur``, wins),
    or None when its mode is ``"none"``."""
    from pipeline.blur import FaceBlur

    kw = section(config, "blur")
    if mode is not None:
        kw["mode"] = mode
    blur = FaceBlur(**kw)
    return blur if blur.active else None


def build_quality_fn(config: Mapping) -> Callable:
    """``quality_fn(frame_bgr, detections)``: :func:`models.quality.face_quality`
    with the ``quality`` section's keywords (the identifier's evidence weight)."""
    from models.quality import face_quality

    return functools.partial(face_quality, **section(config, "quality"))


def build_pipeline(config: Mapping, detector, embedder, identifier=None, **pipeline_overrides):
    """A :class:`pipeline.runner.Pipeline` around already built models.

    Parameters
    ----------
    config : mapping
        The ``tracker``, ``scene_cut``, ``quality`` and ``pipeline`` sections are used, and
        ``scene_links`` when the top-level ``link_scenes`` is true.
    detector, embedder
        From :func:`build_models` (or fakes with the same methods).
    identifier : gallery.identifier.Identifier or None
        From :func:`build_identifier`; None names nobody.
    **pipeline_overrides
        :class:`~pipeline.runner.Pipeline` keywords that win over the ``pipeline`` section.
    """
    from pipeline.runner import Pipeline
    from pipeline.scene_cut import HistogramSceneCutDetector
    from tracker.tracker import Tracker

    kw = section(config, "pipeline")
    kw.update(pipeline_overrides)
    cuts = HistogramSceneCutDetector(**section(config, "scene_cut"))
    if config.get("link_scenes") and "scene_linking" not in kw:
        kw["scene_linking"] = build_scene_linking(config, cuts, identifier)
    return Pipeline(detector, embedder, Tracker(**section(config, "tracker")), identifier, cuts,
                    quality_fn=build_quality_fn(config), **kw)


def build_scene_linking(config: Mapping, scene_cut_detector, identifier=None):
    """A :class:`pipeline.linking.SceneLinking` with the ``scene_links`` section, threading shots by
    ``scene_cut_detector``'s histograms; with an ``identifier``, its gallery vetoes the linked names
    a track's own face ranks clearly below another person (``max_name_deficit``)."""
    from facetrack.config import keywords_for
    from models.torso import TorsoDescriber
    from pipeline.linking import SceneLinking
    from pipeline.scene_links import SceneLinker
    from pipeline.scenes import SceneThreader

    kw = section(config, "scene_links")
    threader = SceneThreader(scene_cut_detector.distance, **keywords_for(SceneThreader, kw))
    scores = None if identifier is None else functools.partial(_gallery_scores, identifier)
    return SceneLinking(threader, scene_cut_detector.histogram,
                        SceneLinker(gallery_scores=scores, **keywords_for(SceneLinker, kw)),
                        TorsoDescriber(**keywords_for(TorsoDescriber, kw)))


def _gallery_scores(identifier, face):
    """``(people, (P,) similarities)`` of a ``(D,)`` face to the identifier's gallery as it is now
    (:data:`pipeline.scene_links.GalleryScores`)."""
    index = identifier.index
    if index is None or index.empty:
        return [], np.zeros(0, np.float32)
    return index.people, index.person_scores(face[None])[0]


# --------------------------------------------------------------------- stills
def build_still_namer(config: Mapping, detector, embedder, index=None, **overrides):
    """A :class:`pipeline.stills.StillNamer`: still images named with the identifier's thresholds.

    ``similarity_threshold`` and ``min_margin`` come from ``overrides`` (None
    values ignored), else the ``identifier`` section, else the
    :class:`gallery.identifier.Identifier` defaults, so a photo and a track
    are named by the same numbers. ``index`` is None to name nobody.
    """
    import inspect

    from gallery.identifier import Identifier
    from pipeline.stills import StillNamer

    defaults = inspect.signature(Identifier).parameters
    cfg = section(config, "identifier")
    kw = {k: cfg.get(k, defaults[k].default) for k in ("similarity_threshold", "min_margin")}
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return StillNamer(detector, embedder, index, **kw)
