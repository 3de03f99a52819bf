"""The install leaves exactly one onnxruntime distribution: the GPU build.

``insightface``'s metadata asks for the CPU ``onnxruntime``; both distributions
install the same ``onnxruntime`` module, so having both makes whichever was
installed last win. The Makefile installs insightface with ``--no-deps``.
"""
from importlib import metadata

import pytest


def _onnxruntime_distributions():
    return sorted(
        {
            (d.metadata["Name"] or "").lower()
            for d in metadata.distributions()
            if (d.metadata["Name"] or "").lower().startswith("onnxruntime")
        }
    )


def test_exactly_one_onnxruntime_distribution_and_it_is_the_gpu_build():
    assert _onnxruntime_distributions() == ["onnxruntime-gpu"]


def test_onnxruntime_module_is_the_gpu_build_with_cuda_provider_compiled_in():
    import onnxruntime

    # The CPU wheel does not ship the CUDA provider; the GPU wheel lists it
    # whether or not a GPU is present (a session then falls back to CPU).
    assert "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    assert "CPUExecutionProvider" in onnxruntime.get_available_providers()


def test_insightface_imports_against_the_gpu_onnxruntime():
    import insightface
    from insightface.utils import face_align

    assert hasattr(face_align, "norm_crop")
    assert insightface.__version__


def test_check_install_command_passes():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "models", "check-install"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime-gpu" in proc.stdout
