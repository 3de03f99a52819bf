"""Device resolution and onnxruntime providers (CUDA paths exercised with a given device count)."""
import pytest

from models.device import DeviceUnavailableError, onnx_providers, resolve_device

CUDA_ORT = ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize(
    "spec,count,expected",
    [("auto", 0, "cpu"), ("auto", 2, "cuda:0"), ("cpu", 2, "cpu"), (" CPU ", 0, "cpu"),
     ("cuda", 1, "cuda:0"), ("cuda:1", 2, "cuda:1"), ("CUDA:0", 1, "cuda:0")],
)
def test_resolve_device(spec, count, expected):
    assert resolve_device(spec, num_cuda_devices=count) == expected


@pytest.mark.parametrize("spec,count", [("cuda", 0), ("cuda:0", 0), ("cuda:2", 2)])
def test_missing_cuda_is_a_clear_error(spec, count):
    with pytest.raises(DeviceUnavailableError, match="CUDA"):
        resolve_device(spec, num_cuda_devices=count)


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "0", "", 3, None])
def test_bad_device_strings(spec):
    with pytest.raises(ValueError, match="device"):
        resolve_device(spec, num_cuda_devices=1)


def test_onnx_providers_selection():
    assert onnx_providers("cpu", available=CUDA_ORT, num_cuda_devices=1) == ["CPUExecutionProvider"]
    assert onnx_providers("cuda:1", available=CUDA_ORT, num_cuda_devices=2) == [
        ("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert onnx_providers("auto", available=CUDA_ORT, num_cuda_devices=1)[0][0] == "CUDAExecutionProvider"
    assert onnx_providers("auto", available=CUDA_ORT, num_cuda_devices=0) == ["CPUExecutionProvider"]
    # CUDA device but an onnxruntime without the CUDA provider: CPU.
    assert onnx_providers("cuda", available=["CPUExecutionProvider"], num_cuda_devices=1) == ["CPUExecutionProvider"]


def test_this_machine_resolves_and_lists_real_providers():
    device = resolve_device("auto")
    assert device == "cpu" or device.startswith("cuda:")
    providers = onnx_providers(device)
    assert providers[-1] == "CPUExecutionProvider"
