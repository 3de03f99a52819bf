"""Compute device selection for torch (ultralytics) and onnxruntime.

Device strings are ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
``resolve_device`` turns them into ``"cpu"`` or ``"cuda:N"`` and fails clearly
when a CUDA device is asked for but absent; ``onnx_providers`` gives the
onnxruntime execution providers for a device.
"""
from __future__ import annotations

import logging
import re
from typing import List, Optional, Sequence, Tuple, Union

logger = logging.getLogger(__name__)

__all__ = ["DeviceUnavailableError", "resolve_device", "onnx_providers", "cuda_device_count"]

_CUDA_RE = re.compile(r"^cuda(?::(\d+))?$")


class DeviceUnavailableError(RuntimeError):
    """A CUDA device was requested but is not available."""


def cuda_device_count() -> int:
    """Number of CUDA devices torch can use (0 when torch has no CUDA or no GPU)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0
    try:
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover - broken driver installs raise here
        logger.debug("torch.cuda query failed", exc_info=True)
        return 0


def resolve_device(device: str = "auto", *, num_cuda_devices: Optional[int] = None) -> str:
    """Resolve a device request to ``"cpu"`` or ``"cuda:N"``.

    Parameters
    ----------
    device : str
        ``"auto"`` (the first CUDA device when one is available, else the
        CPU), ``"cpu"``, ``"cuda"`` (= ``"cuda:0"``) or ``"cuda:N"``.
        Case and surrounding spaces are ignored.
    num_cuda_devices : int, optional
        How many CUDA devices exist; asked from torch when ``None`` (tests
        pass it to exercise the CUDA paths on a CPU-only machine).

    Returns
    -------
    str
        ``"cpu"`` or ``"cuda:N"``.

    Raises
    ------
    ValueError
        For a string that is none of the forms above.
    DeviceUnavailableError
        When ``"cuda"`` or ``"cuda:N"`` is requested and that device does not
        exist.
    """
    if not isinstance(device, str):
        raise ValueError(f"device must be a string ('auto', 'cpu', 'cuda' or 'cuda:N'), got {device!r}")
    spec = device.strip().lower()
    if spec == "cpu":
        return "cpu"
    count = cuda_device_count() if num_cuda_devices is None else int(num_cuda_devices)
    if spec == "auto":
        return "cuda:0" if count > 0 else "cpu"
    match = _CUDA_RE.match(spec)
    if match is None:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    index = int(match.group(1) or 0)
    if count == 0:
        raise DeviceUnavailableError(
            f"device {device!r} requested but no CUDA device is available "
            "(torch.cuda.is_available() is False); use device='cpu' or 'auto'"
        )
    if index >= count:
        raise DeviceUnavailableError(
            f"device {device!r} requested but only {count} CUDA device(s) exist (cuda:0..cuda:{count - 1})"
        )
    return f"cuda:{index}"


def onnx_providers(
    device: str = "auto",
    *,
    available: Optional[Sequence[str]] = None,
    num_cuda_devices: Optional[int] = None,
) -> List[Union[str, Tuple[str, dict]]]:
    """onnxruntime execution providers for a device.

    Parameters
    ----------
    device : str
        Any form ``resolve_device`` accepts.
    available : sequence of str, optional
        The providers onnxruntime offers; ``onnxruntime.get_available_providers()``
        when ``None``.
    num_cuda_devices : int, optional
        Passed to ``resolve_device``.

    Returns
    -------
    list
        ``[("CUDAExecutionProvider", {"device_id": N}), "CPUExecutionProvider"]``
        for ``cuda:N`` when onnxruntime has the CUDA provider, else
        ``["CPUExecutionProvider"]`` (with a warning when CUDA was asked for
        explicitly but onnxruntime lacks the provider).
    """
    resolved = resolve_device(device, num_cuda_devices=num_cuda_devices)
    if available is None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
    if resolved.startswith("cuda"):
        index = int(resolved.split(":")[1])
        if "CUDAExecutionProvider" in available:
            return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        logger.warning(
            "device %s resolved to %s but onnxruntime has no CUDAExecutionProvider (providers: %s); using the CPU",
            device, resolved, list(available),
        )
    return ["CPUExecutionProvider"]
