"""YOLO face detector on ultralytics -> ``Detections`` with 5 landmarks.

Any format ultralytics runs works (``.pt``, ``.onnx``, ``.engine``,
``.tflite``, an OpenVINO ``*_openvino_model`` folder); ``cpu_format`` runs a
``.pt`` on the CPU as its cached export (:mod:`models.export`). Pose models with 5 keypoints give landmarks (left eye, right eye,
nose, left and right mouth corners, as seen in the image); detection-only face
models give ``landmarks=None`` and the embedder falls back to box crops.

The task (``pose`` or ``detect``) is read from the file's own metadata (the
checkpoint for ``.pt``, ``metadata_props`` for ``.onnx``, the embedded
``metadata.json`` for ``.tflite``, the JSON header for ``.engine``), or inferred
from a single-class ONNX output (5 channels: detect, 20: pose with 5x3
keypoints); pass ``task=`` to force it.

Offline and quiet
-----------------
ultralytics checks for internet at import (a DNS lookup), may pip-install
missing packages, sends usage events and logs to the console. The constructor
therefore imports ultralytics inside a scope that sets ``YOLO_OFFLINE=1``,
``YOLO_AUTOINSTALL=false`` and ``YOLO_VERBOSE=false`` in ``os.environ`` and
restores the previous values on exit (these are read once, when ultralytics is
first imported). Whether or not ultralytics was imported before, it then sets
the process-wide module flags ``ultralytics.utils.checks.AUTOINSTALL`` and
``ONLINE`` to False, disables ``ultralytics.utils.events.events`` and sets the
``ultralytics`` logger to WARNING; predictions run with ``verbose=False``.
Nothing of ours changes the environment at import time.
"""
from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import struct
import zipfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from models.device import resolve_device
from models.export import EXPORT_FORMATS, exported_detector
from models.io import to_bgr
from tracker.boxes import clip_xyxy
from tracker.checks import check_bool, check_choice, check_int, check_number
from tracker.detections import NUM_LANDMARKS, Detections

logger = logging.getLogger(__name__)

__all__ = ["FaceDetector", "ultralytics_offline"]

_OFFLINE_ENV = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false", "YOLO_VERBOSE": "false"}
_TASKS = ("pose", "detect")


@contextlib.contextmanager
def ultralytics_offline():
    """Import ultralytics offline and quiet (see the module docstring); yields the ``ultralytics`` module.

    The environment variables are set only inside the ``with`` block and
    restored afterwards; the module flags it sets stay (process-wide).
    """
    saved = {key: os.environ.get(key) for key in _OFFLINE_ENV}
    os.environ.update(_OFFLINE_ENV)
    try:
        import ultralytics
        from ultralytics.utils import checks

        checks.AUTOINSTALL = False
        checks.ONLINE = False
        try:
            from ultralytics.utils import events as events_module

            events_module.ONLINE = False
            events_module.events.enabled = False
        except (ImportError, AttributeError):  # pragma: no cover - other ultralytics versions
            pass
        logging.getLogger("ultralytics").setLevel(logging.WARNING)
        yield ultralytics
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class FaceDetector:
    """Detect faces (and 5 landmarks) with a YOLO model through ultralytics.

    Parameters
    ----------
    weights : str or Path
        An existing model file (resolve names with
        ``models.weights.resolve_weights`` first).
    confidence_threshold : float
        Minimum score in [0, 1] of a kept face.
    nms_iou_threshold : float
        IoU in [0, 1] above which the lower-scoring of two boxes is suppressed.
    input_size : int
        Network input side in pixels (a multiple of 32). A fixed-size
        ``.onnx`` / ``.engine`` / ``.tflite`` runs at its exported size
        whatever this says (with a warning when they differ; see
        :attr:`fixed_input_size`).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    half : bool
        fp16 inference; applies on CUDA only (ignored with a log message on
        the CPU).
    task : str, optional
        ``"pose"`` or ``"detect"`` to override what the file's metadata says.
    max_detections : int
        At most this many faces per frame.
    cpu_format : str, optional
        On the CPU, run ``.pt`` weights in this exported form instead of in
        torch: one of ``models.export.EXPORT_FORMATS`` (``"openvino"``, the
        default, ``"onnx"``, ``"onnx-int8"``), exported from the ``.pt`` the
        first time and cached (:func:`models.export.exported_detector`).
        ``None``, other devices and other weight formats load the file as it
        is. When the export cannot be made or loaded (no ``openvino``, a
        read-only cache), a warning says why and the ``.pt`` runs in torch.
    export_cache_dir : str or Path, optional
        The cache root of those exports (default: the weights cache,
        ``models.weights.default_cache_dir()``).

    Raises
    ------
    FileNotFoundError
        When ``weights`` does not exist.
    ValueError
        For a bad keyword value or a model whose task cannot be determined.
    """

    def __init__(
        self,
        weights: Union[str, Path],
        *,
        confidence_threshold: float = 0.5,
        nms_iou_threshold: float = 0.45,
        input_size: int = 640,
        device: str = "auto",
        half: bool = False,
        task: Optional[str] = None,
        max_detections: int = 300,
        cpu_format: Optional[str] = "openvino",
        export_cache_dir: Optional[Union[str, Path]] = None,
    ) -> None:
        self.confidence_threshold = check_number("confidence_threshold", confidence_threshold, 0, 1)
        self.nms_iou_threshold = check_number("nms_iou_threshold", nms_iou_threshold, 0, 1)
        self.input_size = check_int("input_size", input_size, 32)
        if self.input_size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32, got {input_size!r}")
        check_bool("half", half)
        check_choice("task", task, (None,) + _TASKS)
        self.max_detections = check_int("max_detections", max_detections, 1)
        path = Path(weights).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"detector weights {path} not found (resolve a model name with models.weights.resolve_weights)"
            )
        check_choice("cpu_format", cpu_format, (None,) + EXPORT_FORMATS)
        self.device = resolve_device(device)
        self.path = self.source_path = path.resolve()
        #: The one input side the loaded model accepts (a fixed-size export), or None (any multiple of 32).
        self.fixed_input_size: Optional[int] = None
        self.half = bool(half) and self.device.startswith("cuda")
        if half and not self.half:
            logger.info("half=True ignored: fp16 applies on CUDA only and the device is %s", self.device)
        try:
            kpt_shape = self._load_weights(cpu_format, export_cache_dir, task)
        except (ValueError, ImportError):
            raise
        except Exception as exc:   # ultralytics, torch and onnx raise anything for a bad file
            from models.weights import WeightsFileError, describe_weights_file

            raise WeightsFileError(f"cannot load detector weights {self.path}: "
                                   f"{describe_weights_file(self.path, exc)}") from exc
        if self.task not in _TASKS:
            raise ValueError(f"{self.path.name} is a {self.task!r} model; a face detector must be 'pose' or 'detect'")
        if self.task == "pose" and kpt_shape is not None and int(kpt_shape[0]) != NUM_LANDMARKS:
            logger.warning("%s has %s keypoints, not %d: landmarks are not used",
                           self.path.name, kpt_shape[0], NUM_LANDMARKS)
        self.has_landmarks = self.task == "pose" and (kpt_shape is None or int(kpt_shape[0]) == NUM_LANDMARKS)
        self._predict_args = self._predict_arguments()
        logger.info("detector %s: task %s, landmarks %s, device %s, half %s, input %d",
                    self.path.name, self.task, self.has_landmarks, self.device, self.half, self.input_size)

    def _load_weights(self, cpu_format: Optional[str], cache_dir, task: Optional[str]):
        """Load the weights, ``.pt`` weights on the CPU as their cached ``cpu_format`` export;
        return the keypoint shape.

        Sets :attr:`cpu_format` to the form loaded, or to None when the file itself was
        loaded: not a ``.pt`` on the CPU, or the export could not be made or loaded. Then
        the ``.pt`` runs in torch with a warning saying why, or, when the ``.pt`` itself is
        damaged, its own loading error is raised (no warning about the export).
        """
        self.cpu_format: Optional[str] = None
        path = self.source_path
        if cpu_format is None or self.device != "cpu" or path.suffix != ".pt":
            return self._load(task)
        try:
            self.path = exported_detector(path, cpu_format, input_size=self.input_size, cache_dir=cache_dir).resolve()
            kpt_shape = self._load(task)
        except Exception as exc:  # noqa: BLE001 - no openvino, a read-only cache, a failed export: the .pt still runs
            self.path = path
            kpt_shape = self._load(task)
            logger.warning("cannot run %s as its %s export (%s: %s); running the .pt in torch instead",
                           path.name, cpu_format, type(exc).__name__, exc)
            return kpt_shape
        self.cpu_format = cpu_format
        return kpt_shape

    def _load(self, task: Optional[str]) -> Optional[Tuple[int, int]]:
        """Load the model through ultralytics, set ``self.task``; return the keypoint shape (None: unknown)."""
        meta = _export_metadata(self.path)
        if self.path.suffix != ".pt":
            file_task = self._exported_task(meta, task)
        with ultralytics_offline() as ultralytics:
            if self.path.suffix == ".pt":
                self._model = ultralytics.YOLO(str(self.path), task=task) if task else ultralytics.YOLO(str(self.path))
                self.task = task or self._model.task
                return _pt_kpt_shape(self._model)
            self.task = file_task
            self._model = ultralytics.YOLO(str(self.path), task=self.task)
            return meta.get("kpt_shape")

    def _exported_task(self, meta: dict, task: Optional[str]) -> str:
        """The task of an exported (not ``.pt``) model; also sets :attr:`fixed_input_size` from its
        metadata, and ``input_size`` to it (with a warning) when the two differ."""
        file_task = task or meta.get("task")
        if file_task is None:
            raise ValueError(
                f"cannot tell whether {self.path.name} is a pose (landmarks) or a detect YOLO model: it has no "
                "ultralytics metadata and its output is not a single-class YOLO head (is it a face detector?); "
                "pass task='pose' or task='detect' if it is one"
            )
        fixed = meta.get("fixed_size")
        if fixed is not None and fixed != self.input_size:
            logger.warning("%s was exported for a fixed %dx%d input: detecting at %d, not at input_size=%d",
                           self.path.name, fixed, fixed, fixed, self.input_size)
            self.input_size = int(fixed)
        self.fixed_input_size = None if fixed is None else int(fixed)
        return file_task

    def _predict_arguments(self) -> dict:
        args = dict(
            conf=self.confidence_threshold,
            iou=self.nms_iou_threshold,
            imgsz=self.input_size,
            device=self.device,
            max_det=self.max_detections,
            verbose=False,
        )
        if self.half:
            # ultralytics 8.4 spells fp16 ``quantize=16`` (``half`` is deprecated and warns on every call).
            args["quantize"] = 16
        return args

    def detect(self, frame_bgr: np.ndarray, input_size: Optional[int] = None) -> Detections:
        """Detect the faces of one frame.

        Parameters
        ----------
        frame_bgr : ndarray
            An ``(H, W, 3)`` BGR ``uint8`` frame of any size; ``(H, W)``
            grayscale and ``(H, W, 4)`` BGRA are converted.
        input_size : int, optional
            The network input's long side for this call (a multiple of 32);
            default :attr:`input_size`. A fixed-size export takes only its own.

        Returns
        -------
        Detections
            Boxes in pixels of ``frame_bgr`` (clipped to it), scores, and
            ``(N, 5, 2)`` landmarks (``None`` for detection-only models).
            ``det_index`` is ``arange(N)`` in descending score order.

        Raises
        ------
        ValueError
            For ``None``, an empty frame or an unsupported shape or dtype.
        """
        frame = to_bgr(frame_bgr, name="frame_bgr")
        args = self._predict_args
        if input_size is not None and int(input_size) != self.input_size:
            args = {**args, "imgsz": self._checked_call_size(input_size)}
        result = self._model.predict(frame, **args)[0]
        return self._to_detections(result, frame.shape[1], frame.shape[0])

    def _checked_call_size(self, input_size, where: str = "") -> int:
        """A per-call input side: a multiple of 32 that a fixed-size export can take."""
        size = check_int("input_size", input_size, 32)
        if size % 32:
            raise ValueError(f"input_size must be a positive multiple of 32, got {input_size!r}")
        if self.fixed_input_size is not None and size != self.fixed_input_size:
            fixed = self.fixed_input_size
            raise ValueError(f"{self.path.name} was exported for a fixed {fixed}x{fixed} input: it cannot "
                             f"detect {where}at input_size={size} (use .pt or a dynamic export)")
        return size

    def detect_batch(self, frames_bgr: Sequence[np.ndarray]) -> List[Detections]:
        """Detect the faces of several frames in one batched inference call.

        Parameters
        ----------
        frames_bgr : sequence of ndarray
            Frames as :meth:`detect` takes them (sizes may differ: ultralytics
            letterboxes each to the input size).

        Returns
        -------
        list of Detections
            One per frame, in order, each as :meth:`detect` returns it.

        Raises
        ------
        ValueError
            For an empty sequence or a frame :meth:`detect` would refuse.
        """
        frames = [to_bgr(f, name=f"frames_bgr[{i}]") for i, f in enumerate(frames_bgr)]
        if not frames:
            raise ValueError("frames_bgr must hold at least one frame")
        results = self._model.predict(frames, **self._predict_args)
        return [self._to_detections(r, f.shape[1], f.shape[0]) for r, f in zip(results, frames)]

    def detect_crops(self, crops_bgr: Sequence[np.ndarray], input_size: int) -> List[Detections]:
        """Detect the faces of several image crops in one batched call at a small input size.

        The detector's confidence and NMS thresholds apply as in :meth:`detect`;
        only the network input side changes (a crop smaller than ``input_size``
        is upscaled by ultralytics' letterbox, so a small face gets more pixels).

        Parameters
        ----------
        crops_bgr : sequence of ndarray
            ``(h, w, 3)`` BGR ``uint8`` crops of a frame (sizes may differ).
        input_size : int
            Network input side for this call, a positive multiple of 32.

        Returns
        -------
        list of Detections
            One per crop, in order: boxes and ``(N, 5, 2)`` landmarks in pixels
            of that crop, ``det_index`` ``arange(N)`` in descending score order.

        Raises
        ------
        ValueError
            For an empty sequence, a bad crop, an ``input_size`` that is not a
            positive multiple of 32, or a model exported for a fixed input of
            another size.
        """
        size = self._checked_call_size(input_size, "in crops ")
        crops = [to_bgr(c, name=f"crops_bgr[{i}]") for i, c in enumerate(crops_bgr)]
        if not crops:
            raise ValueError("crops_bgr must hold at least one crop")
        results = self._model.predict(crops, **{**self._predict_args, "imgsz": size})
        return [self._to_detections(r, c.shape[1], c.shape[0]) for r, c in zip(results, crops)]

    def warmup(self, frames: int = 2) -> None:
        """Run a few predictions on a blank frame (the first calls build the predictor and are slow)."""
        blank = np.zeros((self.input_size, self.input_size, 3), np.uint8)
        for _ in range(frames):
            self.detect(blank)

    def _to_detections(self, result, width: int, height: int) -> Detections:
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty(with_landmarks=self.has_landmarks)
        xyxy = boxes.xyxy.detach().cpu().numpy().astype(np.float32)
        conf = boxes.conf.detach().cpu().numpy().astype(np.float32)
        landmarks = None
        if self.has_landmarks:
            kpts = getattr(result, "keypoints", None)
            if kpts is None or kpts.data.shape[1] != NUM_LANDMARKS:
                raise RuntimeError(f"{self.path.name} returned no 5-point keypoints although it is a pose model")
            landmarks = kpts.data[..., :2].detach().cpu().numpy().astype(np.float32)
        return _make_detections(xyxy, conf, landmarks, width, height)

    def __repr__(self) -> str:
        return (f"FaceDetector({self.path.name!r}, task={self.task!r}, device={self.device!r}, "
                f"input_size={self.input_size}, half={self.half})")


def _make_detections(xyxy, conf, landmarks, width: int, height: int) -> Detections:
    """Clip boxes to the frame, sort by descending score and build ``Detections``."""
    xyxy = clip_xyxy(np.asarray(xyxy, np.float32).reshape(-1, 4), width, height).astype(np.float32)
    xyxy[:, 2] = np.maximum(xyxy[:, 2], xyxy[:, 0])
    xyxy[:, 3] = np.maximum(xyxy[:, 3], xyxy[:, 1])
    conf = np.asarray(conf, np.float32).reshape(-1)
    order = np.argsort(-conf, kind="stable")
    return Detections(
        xyxy=xyxy[order],
        confidence=conf[order],
        landmarks=None if landmarks is None else np.asarray(landmarks, np.float32)[order],
    )


def _pt_kpt_shape(model) -> Optional[Tuple[int, int]]:
    inner = getattr(model, "model", None)
    shape = getattr(inner, "kpt_shape", None)
    if shape is None:
        shape = (getattr(inner, "yaml", None) or {}).get("kpt_shape")
    return tuple(int(v) for v in shape) if shape is not None else None


def _parse(value):
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def _export_metadata(path: Path) -> dict:
    """Task, keypoint shape and fixed input size from an exported model's own metadata (``{}`` when absent)."""
    suffix = path.suffix.lower()
    meta: dict = {}
    try:
        if path.is_dir():   # an OpenVINO IR folder: ultralytics writes its metadata as YAML beside the .xml
            meta = _openvino_metadata(path)
        elif suffix == ".onnx":
            meta = _onnx_metadata(path)
        elif suffix == ".tflite":
            with zipfile.ZipFile(path) as zf:  # ultralytics appends metadata.json as a zip
                meta = json.loads(zf.read("metadata.json").decode("utf-8"))
        elif suffix == ".engine":
            with open(path, "rb") as handle:  # ultralytics writes a length-prefixed JSON header
                size = struct.unpack("<i", handle.read(4))[0]
                if 0 < size < 1 << 20:
                    meta = json.loads(handle.read(size).decode("utf-8"))
    except (OSError, ValueError, KeyError, AttributeError, zipfile.BadZipFile, struct.error):
        logger.debug("no readable metadata in %s", path, exc_info=True)
    out = {key: _parse(meta.get(key)) for key in ("task", "kpt_shape", "imgsz") if meta.get(key) is not None}
    if suffix == ".onnx":
        if meta.get("onnx_fixed_size"):
            out["fixed_size"] = int(meta["onnx_fixed_size"])
    elif "imgsz" in out and not _parse(meta.get("dynamic", False)):
        imgsz = out["imgsz"]
        if isinstance(imgsz, (list, tuple)) and len(imgsz) == 2 and imgsz[0] == imgsz[1]:
            out["fixed_size"] = int(imgsz[0])
    if "task" not in out and "onnx_channels" in meta:
        channels = meta["onnx_channels"]
        out["task"] = {5: "detect", 20: "pose", 19: "pose"}.get(channels)
        if channels in (19, 20):
            out["kpt_shape"] = (5, 3 if channels == 20 else 2)
    return out


def _openvino_metadata(folder: Path) -> dict:
    """ultralytics' ``metadata.yaml`` of an OpenVINO export (a model file's own metadata, not configuration)."""
    import yaml

    try:
        meta = yaml.safe_load((folder / "metadata.yaml").read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"unreadable {folder / 'metadata.yaml'}: {exc}") from exc
    meta["dynamic"] = bool((meta.get("args") or {}).get("dynamic", False))
    return meta


def _onnx_metadata(path: Path) -> dict:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    meta = {prop.key: prop.value for prop in proto.metadata_props}
    dims = [d.dim_value if d.HasField("dim_value") else None for d in proto.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) == 4 and dims[2] and dims[2] == dims[3]:
        meta["onnx_fixed_size"] = int(dims[2])
    out_dims = [d.dim_value if d.HasField("dim_value") else None
                for d in proto.graph.output[0].type.tensor_type.shape.dim]
    if len(out_dims) == 3 and out_dims[1]:
        meta["onnx_channels"] = int(out_dims[1])
    return meta
