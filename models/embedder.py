"""ArcFace-style face embedder on onnxruntime.

Any insightface-style recognition ONNX model works: input ``(N, 3, 112, 112)``
RGB (batch dynamic or fixed), output ``(N, 512)``. Faces with landmarks are
aligned to the ArcFace template (``models.alignment.align_face``); faces
without landmarks use the square box crop (``models.alignment.crop_face``).
Embeddings are L2-normalised float32.

Input scaling follows insightface's ``ArcFaceONNX``: ``(x - 127.5) / 127.5`` on
RGB, except for graphs whose first eight nodes include both a ``Sub``/``_minus``
and a ``Mul``/``_mul`` node (MXNet-converted models that normalise inside the
graph), which get the raw 0..255 values. No model is special-cased by name.

The model is validated when loaded: a file that is not ONNX, or a model that
is not a 112x112 RGB -> 512-d recognizer (a detector, say), raises
``WrongModelError`` with the reason.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Union

import numpy as np

from models.alignment import align_face, crop_face
from models.device import onnx_providers, resolve_device
from models.io import to_bgr
from tracker.checks import check_int
from tracker.detections import Detections
from tracker.vectors import l2_normalize

logger = logging.getLogger(__name__)

__all__ = ["FaceEmbedder", "ModelIdentity", "WrongModelError", "EMBEDDING_DIM", "INPUT_SIZE"]

#: The embedding dimension of ArcFace-style recognizers (the only one accepted).
EMBEDDING_DIM = 512
#: Side of the aligned face crop the recognizer takes.
INPUT_SIZE = 112


class WrongModelError(ValueError):
    """The file is not an ONNX model, or not a 112x112 -> 512-d face recognizer."""


@dataclass(frozen=True)
class ModelIdentity:
    """What a gallery needs to know that two embeddings are comparable.

    Attributes
    ----------
    name : str
        The model file's stem (e.g. ``"w600k_r50"``).
    dim : int
        Embedding dimension.
    sha256 : str
        Hex sha256 of the model file.
    """

    name: str
    dim: int
    sha256: str


class FaceEmbedder:
    """Embed faces with an ArcFace-style ONNX model.

    Parameters
    ----------
    weights : str or Path
        An existing ``.onnx`` file (resolve names with
        ``models.weights.resolve_weights`` first).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; the CUDA provider is
        used when the device is CUDA and onnxruntime offers it.
    batch_size : int
        Faces per inference call (a model with a fixed batch dimension uses
        that instead).
    num_threads : int
        onnxruntime intra-op threads; 0 lets onnxruntime decide.

    Raises
    ------
    FileNotFoundError
        When ``weights`` does not exist.
    WrongModelError
        When the file is not a readable ONNX model or not a face recognizer.
    ValueError
        For a bad keyword value.
    """

    def __init__(
        self,
        weights: Union[str, Path],
        *,
        device: str = "auto",
        batch_size: int = 32,
        num_threads: int = 0,
    ) -> None:
        batch_size = check_int("batch_size", batch_size, 1)
        num_threads = check_int("num_threads", num_threads, 0)
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"embedder weights {path} not found (resolve a model name with models.weights.resolve_weights)"
            )
        self.device = resolve_device(device)
        self.path = path.resolve()
        self.batch_size = int(batch_size)

        import onnx
        import onnxruntime

        from models.weights import sha256_file

        try:
            proto = onnx.load(str(self.path), load_external_data=False)
        except Exception as exc:
            from models.weights import describe_weights_file

            raise WrongModelError(f"embedder weights {self.path} is not a readable ONNX model: "
                                  f"{describe_weights_file(self.path, exc)}") from exc
        self._input_mean, self._input_std = _input_scaling(proto)
        del proto

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        providers = onnx_providers(self.device)
        try:
            self._session = onnxruntime.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:
            raise WrongModelError(f"{self.path} could not be loaded by onnxruntime: {exc}") from exc
        self.providers: List[str] = list(self._session.get_providers())
        self._input_name, self._fixed_batch, self.dim = _validate(self._session, self.path)
        self._output_name = self._session.get_outputs()[0].name
        self.identity = ModelIdentity(name=self.path.stem, dim=self.dim, sha256=sha256_file(self.path))
        logger.info("embedder %s: dim %d, providers %s, input scaling (x - %.1f) / %.1f",
                    self.path.name, self.dim, self.providers, self._input_mean, self._input_std)

    def embed(self, frame_bgr: np.ndarray, detections: Detections) -> np.ndarray:
        """Embed every detected face of a frame.

        Parameters
        ----------
        frame_bgr : ndarray
            The ``(H, W, 3)`` BGR ``uint8`` frame the detections come from
            (grayscale and BGRA are converted).
        detections : Detections
            ``N`` faces; aligned with their landmarks when present, else
            cropped from their boxes.

        Returns
        -------
        ndarray
            An ``(N, D)`` float32 array of unit vectors (``(0, D)`` for no faces).
        """
        if not isinstance(detections, Detections):
            raise ValueError(f"detections must be a tracker.detections.Detections, got {type(detections).__name__}")
        if len(detections) == 0:
            return np.zeros((0, self.dim), np.float32)
        frame = to_bgr(frame_bgr, name="frame_bgr")
        crops = np.empty((len(detections), INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        for i in range(len(detections)):
            if detections.landmarks is not None:
                crops[i] = align_face(frame, detections.landmarks[i], INPUT_SIZE)
            else:
                crops[i] = crop_face(frame, detections.xyxy[i], INPUT_SIZE)
        return self.embed_crops(crops)

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Embed aligned (or cropped) faces.

        Parameters
        ----------
        crops : ndarray
            An ``(N, 112, 112, 3)`` BGR ``uint8`` array (a single
            ``(112, 112, 3)`` crop is taken as ``N = 1``).

        Returns
        -------
        ndarray
            An ``(N, D)`` float32 array of unit vectors.
        """
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"crops must have shape (N, {INPUT_SIZE}, {INPUT_SIZE}, 3), got {crops.shape}")
        if crops.dtype != np.uint8:
            raise ValueError(f"crops must be uint8 BGR, got dtype {crops.dtype}")
        n = len(crops)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        step = self._fixed_batch or self.batch_size
        out = np.empty((n, self.dim), np.float32)
        for start in range(0, n, step):
            chunk = crops[start:start + step]
            blob = self._preprocess(chunk)
            if self._fixed_batch and len(chunk) < self._fixed_batch:  # pad a fixed-batch model's last chunk
                pad = np.zeros((self._fixed_batch - len(chunk),) + blob.shape[1:], np.float32)
                blob = np.concatenate([blob, pad])
            features = self._session.run([self._output_name], {self._input_name: blob})[0]
            out[start:start + len(chunk)] = features[: len(chunk)]
        return _unit_embeddings(out)

    def _preprocess(self, crops: np.ndarray) -> np.ndarray:
        """``(n, 112, 112, 3)`` BGR uint8 -> ``(n, 3, 112, 112)`` scaled RGB float32."""
        rgb = crops[..., ::-1].astype(np.float32)
        rgb -= self._input_mean
        rgb /= self._input_std
        return np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))

    def __repr__(self) -> str:
        return f"FaceEmbedder({self.path.name!r}, dim={self.dim}, device={self.device!r}, providers={self.providers})"


def _input_scaling(proto) -> tuple:
    """insightface's rule: MXNet graphs with Sub and Mul among the first 8 nodes normalise inside."""
    names = [node.name for node in proto.graph.node[:8]]
    has_sub = any(n.startswith("Sub") or n.startswith("_minus") for n in names)
    has_mul = any(n.startswith("Mul") or n.startswith("_mul") for n in names)
    return (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)


def _validate(session, path: Path):
    """Check the model is a 112x112 RGB -> 512-d recognizer; return (input name, fixed batch or None, dim)."""
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    hint = "expected an ArcFace-style face recognizer: input (N, 3, 112, 112), output (N, 512)"
    if len(inputs) != 1:
        raise WrongModelError(f"{path.name} has {len(inputs)} inputs ({[i.name for i in inputs]}); {hint}")
    shape = list(inputs[0].shape)
    if len(shape) != 4:
        raise WrongModelError(f"{path.name} input {inputs[0].name!r} has shape {shape}, not 4-D; {hint}")
    channels, height, width = shape[1:]
    if _is_int(channels) and channels != 3:
        raise WrongModelError(f"{path.name} input has {channels} channels, not 3 (shape {shape}); {hint}")
    for side, value in (("height", height), ("width", width)):
        if _is_int(value) and value != INPUT_SIZE:
            raise WrongModelError(
                f"{path.name} input {side} is {value}, not {INPUT_SIZE} (shape {shape}): this looks like a "
                f"detector or another kind of model; {hint}"
            )
    if "float" not in str(inputs[0].type):
        raise WrongModelError(f"{path.name} input type is {inputs[0].type}, not float; {hint}")
    if not outputs:
        raise WrongModelError(f"{path.name} has no outputs; {hint}")
    out_shape = list(outputs[0].shape)
    if len(out_shape) != 2:
        raise WrongModelError(f"{path.name} output {outputs[0].name!r} has shape {out_shape}, not 2-D; {hint}")
    dim = out_shape[1]
    if not _is_int(dim) or dim != EMBEDDING_DIM:
        raise WrongModelError(
            f"{path.name} output has dimension {dim} (shape {out_shape}); an ArcFace-style recognizer gives "
            f"{EMBEDDING_DIM}-d embeddings and the gallery and tracker are built for {EMBEDDING_DIM}"
        )
    batch = shape[0]
    fixed_batch = int(batch) if _is_int(batch) and batch > 0 else None
    return inputs[0].name, fixed_batch, int(dim)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _unit_embeddings(x: np.ndarray) -> np.ndarray:
    """``(N, D)`` raw model outputs as unit vectors; a zero or non-finite row is an error, not a zero vector."""
    norms = np.linalg.norm(x, axis=1)
    if np.any(norms <= 1e-12) or not np.all(np.isfinite(x)):
        raise FloatingPointError("the embedder produced a zero or non-finite embedding")
    return l2_normalize(x, axis=1)
