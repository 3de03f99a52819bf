"""Image reading that works for any path and any format OpenCV decodes, and private atomic file writes.

``cv2.imread`` fails silently on non-ASCII paths on some platforms and returns
4-channel or grayscale arrays depending on the file. ``read_image`` reads the
bytes with numpy and decodes them with ``cv2.imdecode``, and always returns a
3-channel BGR ``uint8`` image (alpha dropped, grayscale expanded, 16-bit
scaled down).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union

import numpy as np

__all__ = ["read_image", "to_bgr", "write_private"]

#: Permission bits of the files :func:`write_private` writes (faces, names, events: owner only).
PRIVATE_FILE_MODE = 0o600


def write_private(path: Union[str, os.PathLike], data: bytes, mode: int = PRIVATE_FILE_MODE) -> Path:
    """Write ``data`` to ``path`` atomically, readable by its owner only.

    A temporary file in the same folder (created with ``mode``) is written, synced to disk and renamed over
    ``path``, so a reader sees the old file or the new one, never half of one. The folder must exist; any
    ``OSError`` is raised after the temporary file is removed.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def to_bgr(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Convert a decoded or captured image to 3-channel BGR ``uint8``.

    Parameters
    ----------
    image : ndarray
        An ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` (BGR) or ``(H, W, 4)``
        (BGRA) array, ``uint8`` or ``uint16`` (scaled down by 257).
    name : str
        What to call the array in error messages.

    Returns
    -------
    ndarray
        An ``(H, W, 3)`` BGR ``uint8`` array (C-contiguous; the input itself
        when it already is one).

    Raises
    ------
    ValueError
        For ``None``, an empty array, or an unsupported shape or dtype.
    """
    import cv2

    if image is None:
        raise ValueError(f"{name} is None (no frame: was the image or video frame read successfully?)")
    image = np.asarray(image)
    if image.size == 0 or image.ndim < 2 or min(image.shape[:2]) == 0:
        raise ValueError(f"{name} is empty (shape {image.shape})")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 (or uint16), got dtype {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"{name} must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {image.shape}")
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def read_image(path: Union[str, Path]) -> np.ndarray:
    """Read an image file as BGR ``uint8``.

    Works for non-ASCII paths and every format OpenCV decodes (JPEG, PNG with
    or without alpha, 16-bit PNG, WebP, BMP, TIFF, ...).

    Parameters
    ----------
    path : str or Path
        The image file.

    Returns
    -------
    ndarray
        An ``(H, W, 3)`` BGR ``uint8`` array.

    Raises
    ------
    ValueError
        When the file does not exist, is not a file, cannot be read, or is
        not an image OpenCV can decode.
    """
    import cv2

    path = Path(path).expanduser()
    if not path.exists():
        raise ValueError(f"cannot read image {path}: no such file")
    if not path.is_file():
        raise ValueError(f"cannot read image {path}: not a file")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ValueError(f"cannot read image {path}: not an image format OpenCV can decode ({data.size} bytes)")
    return to_bgr(image, name=f"image {path}")
