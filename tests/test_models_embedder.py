"""FaceEmbedder on tiny ONNX models built here; wrong kinds of model are refused."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.embedder import FaceEmbedder, ModelIdentity, WrongModelError
from models.weights import sha256_file
from tracker.detections import Detections


def _save(path, nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def tiny_recognizer(path, *, batch="N", channels=3, side=112, dim=512, seed=0):
    """(batch, channels, side, side) -> AveragePool 16x16 -> Flatten -> MatMul -> (batch, dim)."""
    rng = np.random.default_rng(seed)
    cells = channels * (side // 16) ** 2
    w = numpy_helper.from_array(rng.normal(size=(cells, dim)).astype(np.float32), "W")
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["p"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "W"], ["embedding"]),
    ]
    inp = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [batch, channels, side, side])
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, dim])
    return _save(path, nodes, [inp], [out], [w])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_recognizer(tmp_path_factory.mktemp("m") / "tiny_arcface.onnx")


@pytest.fixture(scope="module")
def embedder(tiny):
    return FaceEmbedder(tiny, device="cpu", batch_size=4)


def _crops(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def test_output_is_unit_float32_and_identity(embedder, tiny):
    e = embedder.embed_crops(_crops(5))
    assert e.shape == (5, 512) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert embedder.dim == 512
    assert embedder.identity == ModelIdentity(name="tiny_arcface", dim=512, sha256=sha256_file(tiny))


def test_zero_faces(embedder):
    assert embedder.embed_crops(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0, 512)
    frame = np.zeros((100, 100, 3), np.uint8)
    assert embedder.embed(frame, Detections.empty()).shape == (0, 512)


def test_batching_equals_one_by_one(embedder):
    crops = _crops(11, seed=3)  # batch_size 4: chunks of 4, 4, 3
    batched = embedder.embed_crops(crops)
    single = np.concatenate([embedder.embed_crops(c[None]) for c in crops])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_preprocessing_is_rgb_scaled_like_arcface(embedder, tiny):
    import onnxruntime

    crops = _crops(2, seed=5)
    blob = ((crops[..., ::-1].astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
    raw = onnxruntime.InferenceSession(str(tiny), providers=["CPUExecutionProvider"]).run(None, {"input.1": blob})[0]
    expected = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed_crops(crops), expected, atol=1e-5)


def test_fixed_batch_model_is_padded(tmp_path):
    fixed = FaceEmbedder(tiny_recognizer(tmp_path / "fixed.onnx", batch=1), device="cpu", batch_size=8)
    dynamic = FaceEmbedder(tiny_recognizer(tmp_path / "dyn.onnx"), device="cpu")
    crops = _crops(3, seed=9)
    np.testing.assert_allclose(fixed.embed_crops(crops), dynamic.embed_crops(crops), atol=1e-5)


def test_embed_uses_landmarks_or_box_crop(embedder):
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    box = np.array([[50, 60, 170, 200]], np.float32)
    with_lm = Detections(box, [0.9], landmarks=np.array([[[80, 110], [140, 110], [110, 140], [85, 170], [135, 170]]]))
    without = Detections(box, [0.9])
    a = embedder.embed(frame, with_lm)
    b = embedder.embed(frame, without)
    assert a.shape == b.shape == (1, 512)
    assert not np.allclose(a, b)  # aligned crop and box crop differ
    # Grayscale and BGRA frames are accepted.
    assert embedder.embed(frame[..., 0], without).shape == (1, 512)
    assert embedder.embed(np.dstack([frame, frame[..., :1]]), without).shape == (1, 512)


@pytest.mark.parametrize("bad", [np.zeros((2, 64, 64, 3), np.uint8), np.zeros((2, 112, 112, 3), np.float32),
                                 np.zeros((112, 112), np.uint8)])
def test_bad_crops(embedder, bad):
    with pytest.raises(ValueError, match="crops"):
        embedder.embed_crops(bad)


def test_bad_frame_and_detections(embedder):
    with pytest.raises(ValueError, match="frame_bgr"):
        embedder.embed(None, Detections([[0, 0, 10, 10]], [0.9]))
    with pytest.raises(ValueError, match="Detections"):
        embedder.embed(np.zeros((10, 10, 3), np.uint8), [[0, 0, 10, 10]])


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(side=640, batch=1), "height is 640"), (dict(channels=1), "1 channels"), (dict(dim=128), "dimension 128")],
)
def test_wrong_kind_of_model(tmp_path, kwargs, match):
    path = tiny_recognizer(tmp_path / "wrong.onnx", **kwargs)
    with pytest.raises(WrongModelError, match=match):
        FaceEmbedder(path, device="cpu")


def test_detector_like_3d_output_is_refused(tmp_path):
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 112, 112])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 12544])
    shape = numpy_helper.from_array(np.array([1, 3, -1], np.int64), "shape")
    path = _save(tmp_path / "det.onnx", [helper.make_node("Reshape", ["images", "shape"], ["out"])], [inp], [out],
                 [shape])
    with pytest.raises(WrongModelError, match="not 2-D"):
        FaceEmbedder(path, device="cpu")


def test_not_onnx_and_missing_files(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    with pytest.raises(WrongModelError, match="not a readable ONNX model|could not be loaded"):
        FaceEmbedder(junk, device="cpu")
    with pytest.raises(FileNotFoundError, match="not found"):
        FaceEmbedder(tmp_path / "absent.onnx")


@pytest.mark.parametrize("kwargs", [dict(batch_size=0), dict(batch_size=2.5), dict(num_threads=-1),
                                    dict(device="gpu")])
def test_constructor_keywords_validated(tiny, kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        FaceEmbedder(tiny, **kwargs)
