"""Weights registry, resolution order, cache and downloads against a real HTTP server on 127.0.0.1."""
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from models import weights
from models.weights import (
    ChecksumMismatchError,
    DownloadError,
    WeightsNotFoundError,
    WeightsSpec,
    resolve_weights,
)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _zip_with(member_path: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pack/readme.txt", b"other member")
        zf.writestr(member_path, data)
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        if self.path == "/drop.onnx":  # promise more than we send, then hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    _Handler.files = {
        "/model.onnx": PAYLOAD,
        "/pack.zip": _zip_with("pack/inner/model.onnx", PAYLOAD),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated models folder and cache; no FACETRACK variables from the caller's shell."""
    monkeypatch.delenv(weights.MODELS_DIR_ENV, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv(weights.CACHE_DIR_ENV, str(cache))
    return tmp_path, cache


def _register(monkeypatch, name, **kwargs):
    monkeypatch.setitem(weights.REGISTRY, name, WeightsSpec(**kwargs))


def _leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_success_verifies_and_caches(server, env, monkeypatch):
    _, cache = env
    _register(monkeypatch, "tiny", filename="tiny.onnx", url=f"{server}/model.onnx", sha256=PAYLOAD_SHA)
    path = resolve_weights("tiny", progress=False)
    assert path == (cache / "tiny.onnx").resolve()
    assert path.read_bytes() == PAYLOAD
    assert _leftovers(cache) == ["tiny.onnx"]  # no temporary files left
    # Second call: found in the cache, no download needed (works with downloads off).
    assert resolve_weights("tiny", allow_download=False) == path


def test_registered_file_name_also_resolves_by_download(server, env, monkeypatch):
    _, cache = env
    _register(monkeypatch, "tiny", filename="tiny.onnx", url=f"{server}/model.onnx", sha256=PAYLOAD_SHA)
    assert resolve_weights("tiny.onnx", progress=False) == (cache / "tiny.onnx").resolve()


@pytest.mark.parametrize(
    "url_path, sha256, error, message",
    [
        ("model.onnx", "0" * 64, ChecksumMismatchError, "checksum mismatch.*tiny.onnx"),
        ("drop.onnx", None, DownloadError, "broke off"),       # Content-Length larger than the body, then closed
        ("missing.onnx", None, DownloadError, "HTTP 404"),
    ],
)
def test_failed_download_is_a_clear_error_and_leaves_nothing(server, env, monkeypatch, url_path, sha256, error, message):
    _, cache = env
    _register(monkeypatch, "tiny", filename="tiny.onnx", url=f"{server}/{url_path}", sha256=sha256)
    with pytest.raises(error, match=message):
        resolve_weights("tiny", progress=False)
    assert _leftovers(cache) == []


def test_zip_member_is_extracted_and_archive_discarded(server, env, monkeypatch):
    _, cache = env
    _register(monkeypatch, "zipped", filename="model.onnx", url=f"{server}/pack.zip", sha256=PAYLOAD_SHA,
              member="model.onnx")
    path = resolve_weights("zipped", progress=False)
    assert path.read_bytes() == PAYLOAD
    assert _leftovers(cache) == ["model.onnx"]


def test_zip_without_the_member_is_a_clear_error(server, env, monkeypatch):
    _, cache = env
    _register(monkeypatch, "zipped", filename="absent.onnx", url=f"{server}/pack.zip", member="absent.onnx")
    with pytest.raises(DownloadError, match="no member 'absent.onnx'"):
        resolve_weights("zipped", progress=False)
    assert _leftovers(cache) == []


def test_resolution_order(env, monkeypatch, tmp_path):
    root, cache = env
    explicit_dir, arg_dir, env_dir = root / "explicit", root / "arg", root / "envdir"
    for folder in (explicit_dir, arg_dir, env_dir, cache):
        folder.mkdir(parents=True)
        (folder / "m.onnx").write_bytes(folder.name.encode())
    _register(monkeypatch, "m", filename="m.onnx", url="http://127.0.0.1:9/never", sha256=None)
    monkeypatch.setenv(weights.MODELS_DIR_ENV, str(env_dir))
    # 1. an explicit existing path wins
    assert resolve_weights(explicit_dir / "m.onnx", models_dir=arg_dir) == (explicit_dir / "m.onnx").resolve()
    # 2. the models_dir argument, then 3. the environment variable, then 4. the cache
    assert resolve_weights("m", models_dir=arg_dir).read_bytes() == b"arg"
    assert resolve_weights("m").read_bytes() == b"envdir"
    monkeypatch.delenv(weights.MODELS_DIR_ENV)
    assert resolve_weights("m", models_dir=root / "empty").read_bytes() == b"cache"
    # an explicit cache_dir argument overrides the environment's cache
    other = root / "other_cache"
    other.mkdir()
    (other / "m.onnx").write_bytes(b"other")
    assert resolve_weights("m", cache_dir=other).read_bytes() == b"other"


def test_role_prefers_first_found_locally(env, monkeypatch):
    root, _ = env
    folder = root / "models"
    folder.mkdir()
    (folder / "edgeface_xs.onnx").write_bytes(b"e")
    assert resolve_weights("arcface", models_dir=folder).name == "edgeface_xs.onnx"
    (folder / "w600k_r50.onnx").write_bytes(b"w")
    assert resolve_weights("arcface", models_dir=folder).name == "w600k_r50.onnx"


def test_role_downloads_the_first_downloadable(server, env, monkeypatch):
    _, cache = env
    _register(monkeypatch, "r_local", filename="local_only.onnx", url=None)
    _register(monkeypatch, "r_remote", filename="remote.onnx", url=f"{server}/model.onnx", sha256=PAYLOAD_SHA)
    monkeypatch.setitem(weights.ROLES, "testrole", ("r_local", "r_remote"))
    assert resolve_weights("testrole", progress=False) == (cache / "remote.onnx").resolve()


def test_not_found_offline_names_file_folders_and_env_var(env, monkeypatch):
    root, cache = env
    folder = root / "mine"
    folder.mkdir()
    with pytest.raises(WeightsNotFoundError) as info:
        resolve_weights("w600k_r50", models_dir=folder, allow_download=False)
    message = str(info.value)
    for part in ("w600k_r50.onnx", str(folder), str(cache), weights.MODELS_DIR_ENV, "buffalo_l.zip"):
        assert part in message


def test_unknown_name_and_local_only_model(env):
    root, cache = env
    with pytest.raises(WeightsNotFoundError, match="not a registered model name"):
        resolve_weights("no_such_model")
    with pytest.raises(WeightsNotFoundError, match="no public download"):
        resolve_weights("edgeface_xs", models_dir=root)
    with pytest.raises(WeightsNotFoundError, match="folder"):
        resolve_weights(root)
    with pytest.raises(ValueError):
        resolve_weights("")


def test_unreachable_server_is_a_download_error(env, monkeypatch):
    _, cache = env
    # Port 9 (discard) on loopback is closed: connection refused.
    _register(monkeypatch, "tiny", filename="tiny.onnx", url="http://127.0.0.1:9/model.onnx")
    with pytest.raises(DownloadError, match="failed") as info:
        resolve_weights("tiny", progress=False)
    assert _leftovers(cache) == []
    # Offline: the one error also says which file to put where.
    message = str(info.value)
    assert "tiny.onnx" in message and str(cache) in message and "FACETRACK_MODELS_DIR" in message


def test_registry_entries_are_complete():
    for name in ("yolov8n-face", "yolov8n-face-onnx", "edgeface_xs", "w600k_r50"):
        spec = weights.REGISTRY[name]
        assert spec.filename and spec.note
    assert weights.REGISTRY["edgeface_xs"].url is None
    assert weights.REGISTRY["w600k_r50"].url.endswith("/v0.7/buffalo_l.zip")
    assert weights.REGISTRY["w600k_r50"].member == "w600k_r50.onnx"
    assert weights.ROLES["arcface"] == ("w600k_r50", "edgeface_xs")


@pytest.mark.integration
def test_shared_files_match_registered_checksums(shared_models):
    spec = weights.REGISTRY["edgeface_xs"]
    assert weights.sha256_file(shared_models / spec.filename) == spec.sha256
