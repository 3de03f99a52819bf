"""The Python API: track and name faces in three lines.

::

    from facetrack import FaceTracker
    ft = FaceTracker(gallery="photos/")          # a photo folder (enrolled into a cached database) or a .db
    for frame in ft.track("video.mp4"):          # a file, URL, camera index, image, folder, Source or frames
        print(frame.track_ids, frame.names)      # frame.image is the annotated BGR image

    faces = ft.identify("photo.jpg")             # one photo (a path, a BGR array or a source's Frame)

The models and the gallery load once, in the constructor; each call of
:meth:`FaceTracker.track` starts a fresh tracker and identifier, so two
videos never share track ids or evidence. Images and folders of images are
named per image without tracking (one observation per face:
:mod:`pipeline.stills`), exactly as ``demo.py --source photo.jpg`` and
``python -m gallery identify`` name them; video, cameras and streams go
through the tracking :class:`~pipeline.runner.Pipeline`.

This is the composition layer: it builds the parts with
:mod:`facetrack.build` from the configuration (``configs/default.yaml``
unless another file or a dict of sections is given), as the command lines do.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, List, Mapping, Optional, Union

import numpy as np

if TYPE_CHECKING:
    from pipeline.stills import StillResult

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class TrackedFrame:
    """One frame (or still image) with its faces.

    Attributes
    ----------
    index : int
        The frame's position in the source (the image's, for still images).
    timestamp : float
        Seconds since the start of the source (0 for still images).
    boxes : ndarray
        ``(N, 4)`` float32 ``xyxy`` boxes in pixels.
    track_ids : ndarray
        ``(N,)`` int64 track ids; for still images (``still``), the face numbers 0..N-1.
    names : list of (str or None)
        ``N`` names, ``None`` = Unknown.
    scores : ndarray
        ``(N,)`` float32 cosine similarity to the closest enrolled person (NaN without a gallery).
    confidence : ndarray
        ``(N,)`` float32 detector scores.
    image : ndarray
        ``(H, W, 3)`` uint8 BGR: a copy of the frame with the boxes and labels drawn.
    original : ndarray
        The frame as it came from the source (not drawn on).
    still : bool
        Named as a still image, without tracking.
    result : FrameResult or StillResult
        Everything the pipeline (:class:`pipeline.results.FrameResult`) or
        the still namer (:class:`pipeline.stills.StillResult`, with landmarks) reported.
    source : str
        Where the frame came from (the image's path for still images).
    """

    index: int
    timestamp: float
    boxes: np.ndarray
    track_ids: np.ndarray
    names: List[Optional[str]]
    scores: np.ndarray
    confidence: np.ndarray
    image: np.ndarray
    original: np.ndarray
    still: bool
    result: object
    source: str = ""

    def __len__(self) -> int:
        return len(self.track_ids)


def _image_of(item, what: str = "image") -> np.ndarray:
    """A BGR ``uint8`` image from a path, an array or a :class:`pipeline.source_base.Frame`."""
    from models.io import read_image, to_bgr

    if isinstance(item, (str, os.PathLike)):
        return read_image(item)
    image = getattr(item, "image", item)          # a source's Frame
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{what} must be a path, a BGR numpy array or a source's Frame, got {type(item).__name__}")
    return to_bgr(image, name=what)


def _frame_of(item, position: int):
    """``item`` (a Frame or an array) as a :class:`pipeline.source_base.Frame`."""
    from pipeline.source_base import Frame

    if isinstance(item, Frame):
        return item
    return Frame(_image_of(item, "frame"), position, 0.0)


def _load_config(config) -> dict:
    from facetrack.config import check_config, load_config

    if config is None or isinstance(config, (str, os.PathLike)):
        return load_config(config)
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a YAML path or a mapping of sections, got {type(config).__name__}")
    check_config(config, origin="config")
    return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in config.items()}


class FaceTracker:
    """Detect, track and name faces; the models and the gallery load once.

    Parameters
    ----------
    gallery : path, optional
        A photo folder (one subfolder per person, enrolled incrementally
        into ``gallery_db``) or a gallery ``.db`` file; None names nobody.
    config : path or mapping, optional
        A YAML file, or a dict of sections (``{"identifier": {...}}``) checked
        like the file; default ``configs/default.yaml``.
    models_dir : path, optional
        Folder with the weights (default: the config's, then ``$FACETRACK_MODELS_DIR``, then the cache).
    device : str, optional
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (default: the config's).
    gallery_db : path, optional
        For a photo folder: where its database is kept (default
        ``~/.cache/facetrack/galleries/<hash>-<model>.db``, owner-only).
    progress : bool
        Progress bars while downloading weights and enrolling.

    Raises
    ------
    FileNotFoundError
        ``gallery`` does not exist.
    ValueError
        A bad configuration (unknown key, value out of range).
    """

    def __init__(self, gallery: Optional[PathLike] = None, *, config=None, models_dir: Optional[PathLike] = None,
                 device: Optional[str] = None, gallery_db: Optional[PathLike] = None, progress: bool = False) -> None:
        from facetrack.build import (build_index, build_models, build_still_namer, enrollment_summary, open_gallery,
                                     section)
        from pipeline.overlay import Overlay

        if gallery is not None and not Path(gallery).expanduser().exists():   # before minutes of model loading
            raise FileNotFoundError(f"gallery: no such file or directory: {gallery}")
        self.config = _load_config(config)
        self.overlay = Overlay(**section(self.config, "overlay"))
        self.detector, self.embedder = build_models(self.config, models_dir=models_dir, device=device,
                                                    progress=progress)
        self.index = None
        if gallery is not None:
            store, report = open_gallery(gallery, self.detector, self.embedder, self.config, db_path=gallery_db,
                                         progress=progress)
            if report is not None:
                logger.info(enrollment_summary(store, report))
            with store:
                self.index = build_index(store, self.config)
            if self.index.empty:
                logger.warning("the gallery %s is empty: everyone will be Unknown", gallery)
        self.namer = build_still_namer(self.config, self.detector, self.embedder, self.index)
        self._pipeline = None          # the tracker of process(), built on its first frame
        self._count = -1               # frames given to process()

    @property
    def people(self) -> List[str]:
        """The enrolled people (empty without a gallery)."""
        return [] if self.index is None else list(self.index.people)

    # -- still images -----------------------------------------------------------
    def identify(self, image) -> StillResult:
        """Every face of one photo with its name, without tracking.

        ``image`` is a path, an ``(H, W, 3)`` BGR ``uint8`` array (grayscale
        and BGRA are converted) or a source's :class:`~pipeline.source_base.Frame`.
        Returns a :class:`pipeline.stills.StillResult` (boxes, detector
        scores, names, similarities, margins, landmarks).
        """
        source = str(image) if isinstance(image, (str, os.PathLike)) else ""
        return self.namer.name(_image_of(image), source=source)

    def annotate(self, image, result) -> np.ndarray:
        """A copy of ``image`` with ``result``'s boxes and labels drawn (a StillResult or FrameResult)."""
        return self.overlay.annotate(_image_of(image).copy(), result)

    # -- tracking ---------------------------------------------------------------
    def track(self, source, *, stills: Optional[bool] = None, max_frames: Optional[int] = None
              ) -> Iterator[TrackedFrame]:
        """Yield a :class:`TrackedFrame` for every frame of ``source``.

        Parameters
        ----------
        source
            A video file, a stream URL, a camera index (``0``, ``"webcam"``),
            an image file, a folder of images, an opened
            :class:`~pipeline.source_base.Source`, a single BGR array or
            Frame, or an iterable of arrays or Frames (the frames of one video).
        stills : bool, optional
            Name every image on its own, without tracking. Default: for an
            image file, a folder of images and a single array or Frame; pass
            ``False`` to track a folder of video frames.
        max_frames : int, optional
            Stop after this many frames.
        """
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        single = isinstance(source, np.ndarray) or hasattr(source, "image")
        if stills is None:
            from pipeline.stills import is_still_source

            stills = single or is_still_source(source)
        frames = self._stills(source, single) if stills else self._tracked(source, single)
        try:
            for count, frame in enumerate(frames, 1):
                yield frame
                if max_frames is not None and count >= max_frames:
                    return
        finally:
            frames.close()                # a source opened here is closed, also when the caller stops early

    def process(self, frame) -> TrackedFrame:
        """Track one frame of an ongoing stream (a BGR array or a source's Frame); :meth:`reset` starts over."""
        if self._pipeline is None:
            self._pipeline = self._new_pipeline()
        self._count += 1
        return self._step(self._pipeline, _frame_of(frame, self._count), "")

    def reset(self) -> None:
        """Forget the tracks of :meth:`process` (a new stream)."""
        self._pipeline, self._count = None, -1

    # -- the parts ----------------------------------------------------------------
    def _new_pipeline(self):
        from facetrack.build import build_identifier, build_pipeline

        identifier = None if self.index is None else build_identifier(self.index, self.config)
        return build_pipeline(self.config, self.detector, self.embedder, identifier)

    def _step(self, pipeline, frame, description: str) -> TrackedFrame:
        result = pipeline.process(frame.image, frame.index, frame.timestamp,
                                  scene_cut=True if frame.discontinuity else None)
        return TrackedFrame(frame.index, frame.timestamp, result.xyxy, result.track_ids, list(result.names),
                            result.scores, result.confidence, self.overlay.annotate(frame.image.copy(), result),
                            frame.image, False, result, description)

    def _tracked(self, source, single: bool) -> Iterator[TrackedFrame]:
        from facetrack.build import section
        from pipeline.sources import open_source

        owned = None
        if single:
            frames: Iterable = [source]
        elif isinstance(source, (str, int, os.PathLike)):
            frames = owned = open_source(os.fspath(source) if isinstance(source, os.PathLike) else source,
                                         **section(self.config, "source"))
        else:
            frames = source                       # a Source or an iterable of frames
        description = getattr(frames, "description", "" if owned is None else str(source))
        pipeline = self._new_pipeline()
        try:
            for position, item in enumerate(frames):
                yield self._step(pipeline, _frame_of(item, position), description)
        finally:
            if owned is not None:
                owned.close()

    def _stills(self, source, single: bool) -> Iterator[TrackedFrame]:
        from pipeline.stills import image_files

        if single or not isinstance(source, (str, os.PathLike)):
            items = [(position, item, "") for position, item in enumerate([source] if single else source)]
        else:
            items = [(position, path, str(path)) for position, path in enumerate(image_files([source]))]
        for position, item, path in items:
            try:
                image = _image_of(item)
            except ValueError as exc:
                if not path:
                    raise
                logger.warning("skipping %s: %s", path, exc)
                continue
            result = self.namer.name(image, source=path)
            yield TrackedFrame(getattr(item, "index", position), 0.0, result.xyxy, result.track_ids, result.names,
                               result.scores, np.asarray([f.confidence for f in result.faces], np.float32),
                               self.overlay.annotate(image.copy(), result), image, True, result, path)
