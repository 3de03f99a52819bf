"""Exported forms of the detector, made offline from a local ``.pt`` and cached.

``exported_detector(source, "openvino")`` returns the OpenVINO IR folder of
``source``, exporting it with ultralytics the first time only. The forms:

``openvino``
    ultralytics' OpenVINO export (fp32 IR, dynamic input shape so the
    rectangular letterbox of the ``.pt`` still applies).
``onnx``
    ultralytics' ONNX export with a dynamic input shape (onnxruntime runs it
    with its default, full graph optimisation, ``ORT_ENABLE_ALL``).
``onnx-int8``
    that ONNX file with onnxruntime's dynamic int8 quantisation of the
    convolution and matrix weights (``quantize_dynamic``, ``QUInt8``).

Cache
-----
An export lives in ``<cache>/exports/<stem>-<sha256 of the source, 16 hex>-
<form>-<input size>/``, where ``<cache>`` is
:func:`models.weights.default_cache_dir` unless ``cache_dir`` is given, so a
changed source file (another checksum) or input size gets a new export and an
unchanged one is never exported again. The export runs in a temporary
folder beside it that is renamed into place when complete (a crash leaves no
half export). ultralytics is imported offline (:func:`ultralytics_offline`):
nothing is downloaded.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Union

from tracker.checks import check_choice, check_int

logger = logging.getLogger(__name__)

__all__ = ["EXPORT_FORMATS", "export_dir", "exported_detector"]

#: The exported forms :func:`exported_detector` makes.
EXPORT_FORMATS = ("openvino", "onnx", "onnx-int8")
_DIGEST_CHARS = 16


def export_dir(source: Union[str, Path], form: str, *, input_size: int = 640,
               cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """The cache folder of one export of ``source`` (whether or not it exists yet)."""
    from models.weights import default_cache_dir, sha256_file

    check_choice("form", form, EXPORT_FORMATS)
    if check_int("input_size", input_size, 32) % 32:
        raise ValueError(f"input_size must be a positive multiple of 32, got {input_size!r}")
    source = Path(source)
    digest = sha256_file(source)[:_DIGEST_CHARS]
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "exports" / f"{source.stem}-{digest}-{form}-{int(input_size)}"


def exported_detector(source: Union[str, Path], form: str, *, input_size: int = 640,
                      cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """The model file (or OpenVINO folder) of ``source`` in ``form``, exported once and cached.

    Parameters
    ----------
    source : str or Path
        An existing ultralytics ``.pt`` detector.
    form : str
        One of :data:`EXPORT_FORMATS`.
    input_size : int
        The input side the export is made for (a multiple of 32).
    cache_dir : str or Path, optional
        The cache root (default :func:`models.weights.default_cache_dir`).

    Returns
    -------
    Path
        What ``models.detector.FaceDetector`` loads: the ``.onnx`` file or the
        ``*_openvino_model`` folder.

    Raises
    ------
    FileNotFoundError
        When ``source`` does not exist.
    ValueError
        When ``source`` is not a ``.pt`` file, or for a bad ``form`` / ``input_size``.
    """
    source = Path(source).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"detector weights {source} not found: exports are made from a local .pt file")
    if source.suffix != ".pt":
        raise ValueError(f"exports are made from an ultralytics .pt file, got {source.name}")
    final = export_dir(source, form, input_size=input_size, cache_dir=cache_dir)
    found = _product(final, source.stem, form)
    if found is not None:
        return found
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        logger.info("exporting %s to %s (once; cached in %s)", source.name, form, final)
        _export_into(source, form, input_size, work)
        try:
            os.replace(work, final)
        except OSError:            # another process finished the same export first
            if _product(final, source.stem, form) is None:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _product(final, source.stem, form)


def _product(folder: Path, stem: str, form: str) -> Optional[Path]:
    """The finished export inside ``folder``, or None."""
    path = folder / ({"openvino": f"{stem}_openvino_model", "onnx": f"{stem}.onnx",
                      "onnx-int8": f"{stem}-int8.onnx"}[form])
    return path if path.exists() else None


def _export_into(source: Path, form: str, input_size: int, work: Path) -> None:
    """Export a copy of ``source`` inside ``work`` (ultralytics writes next to its input)."""
    from models.detector import ultralytics_offline

    local = work / source.name
    shutil.copy2(source, local)
    fmt = "openvino" if form == "openvino" else "onnx"
    with ultralytics_offline() as ultralytics:
        out = Path(ultralytics.YOLO(str(local)).export(format=fmt, imgsz=input_size, dynamic=True, device="cpu",
                                                       verbose=False))
    local.unlink()
    if form == "onnx-int8":
        _quantize(out, work / f"{source.stem}-int8.onnx")
        out.unlink()


def _quantize(float_onnx: Path, target: Path) -> None:
    """onnxruntime dynamic int8 quantisation, keeping ultralytics' metadata (task, keypoints, size)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(float_onnx), str(target), weight_type=QuantType.QUInt8)
    meta = {p.key: p.value for p in onnx.load(str(float_onnx), load_external_data=False).metadata_props}
    model = onnx.load(str(target))
    have = {p.key for p in model.metadata_props}
    for key, value in meta.items():
        if key not in have:
            model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(target))
