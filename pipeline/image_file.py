"""Writing an image file atomically and owner-only (it shows faces, and names them).

The image is encoded in memory, written to a temporary file beside the
target with mode 0600, flushed and renamed over the target, so a reader never
sees half an image and a crash leaves the old file (or none).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.io import write_private

#: Mode of the image files written here: owner only.
IMAGE_FILE_MODE = 0o600


def write_image(path, image: np.ndarray, *, jpeg_quality: int = 95) -> Path:
    """Encode ``image`` (BGR ``uint8``) by ``path``'s extension and write it atomically with mode 0600.

    Raises
    ------
    ValueError
        The extension is not one OpenCV can encode.
    OSError
        The file cannot be written (the message names it).
    """
    import cv2

    path = Path(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if path.suffix.lower() in (".jpg", ".jpeg") else []
    try:
        ok, data = cv2.imencode(path.suffix.lower(), image, params)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f"cannot encode an image as {path.suffix or 'a file without extension'}: {path}")
    write_private(path, data.tobytes(), IMAGE_FILE_MODE)
    return path
