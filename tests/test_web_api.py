"""The REST API of ``facetrack serve`` on a real uvicorn server: enrollment by upload, and every refusal.

The server runs in a subprocess on a free localhost port with the real models
of ``../shared`` (they load on the first upload).
"""
from __future__ import annotations

import http.client
import select
import socket
import subprocess
import time

import cv2
import numpy as np
import pytest
import requests

from web_server import Server, listening, models_env, serve_command

pytestmark = pytest.mark.integration

OBAMA = "gallery/barack_obama/fr_obama.jpg"
TOKEN = "a-token-of-more-than-16-characters"


def make_gallery(path, embedder_weights):
    """An empty gallery made with the embedder the server will use."""
    from gallery.store import GalleryStore
    from models.embedder import FaceEmbedder

    GalleryStore(path, FaceEmbedder(embedder_weights, device="cpu").identity).close()
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory, shared_models, detector_weights, embedder_weights):
    root = tmp_path_factory.mktemp("web")
    db = make_gallery(root / "gallery.db", embedder_weights)
    server = Server("--gallery", db, "--detector", detector_weights, "--embedder", embedder_weights,
                    "--device", "cpu", "--max-upload-mb", "10", env=models_env(shared_models),
                    log=root / "server.log")
    yield server, root
    server.stop()


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_the_openapi_description_has_every_page_action(site):
    server, _ = site
    paths = requests.get(server.url + "/openapi.json", timeout=10).json()["paths"]
    assert set(paths["/api/people"]) == {"get"}
    assert set(paths["/api/people/{name}"]) == {"put", "delete"}
    assert "multipart/form-data" in paths["/api/people/{name}/photos"]["post"]["requestBody"]["content"]
    assert {"/api/events", "/api/events/snapshots/{track_id}/{first_frame}", "/api/live", "/api/live.mjpg"} <= set(paths)


def test_a_photo_uploaded_is_enrolled_shown_renamed_and_removed(site, shared_data):
    server, root = site
    photo = (shared_data / OBAMA).read_bytes()
    r = requests.post(server.url + "/api/people/Barack Obama/photos", files={"photo": ("obama.jpg", photo)},
                      timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "enrolled"
    people = requests.get(server.url + "/api/people", timeout=10).json()
    person = next(p for p in people if p["name"] == "Barack Obama")
    assert person["embeddings"] == 1 and len(person["photos"]) == 1
    thumb = requests.get(server.url + person["photos"][0]["url"], timeout=10)
    image = cv2.imdecode(np.frombuffer(thumb.content, np.uint8), cv2.IMREAD_COLOR)
    assert thumb.headers["content-type"] == "image/jpeg" and max(image.shape[:2]) == 240
    stored = list((root / "gallery.db.photos" / "Barack Obama").iterdir())
    assert len(stored) == 1 and stored[0].read_bytes() == photo and oct(stored[0].stat().st_mode & 0o777) == "0o600"

    r = requests.put(server.url + "/api/people/Barack Obama", json={"new_name": "Obama"}, timeout=10)
    assert r.status_code == 200, r.text
    assert [p["name"] for p in requests.get(server.url + "/api/people", timeout=10).json()] == ["Obama"]
    assert requests.put(server.url + "/api/people/Nobody", json={"new_name": "X"}, timeout=10).status_code == 404
    r = requests.delete(server.url + "/api/people/Obama", timeout=10)
    assert r.status_code == 200 and r.json()["embeddings_removed"] == 1
    assert requests.get(server.url + "/api/people", timeout=10).json() == []
    assert not stored[0].exists()


def test_a_photo_without_a_face_is_refused_with_the_reason_and_not_kept(site):
    server, root = site
    blank = cv2.imencode(".png", np.full((200, 200, 3), 200, np.uint8))[1].tobytes()
    r = requests.post(server.url + "/api/people/Nobody/photos", files={"photo": ("blank.png", blank)}, timeout=120)
    assert r.status_code == 422 and "blank.png was not enrolled: no face" in r.json()["detail"]
    assert not (root / "gallery.db.photos" / "Nobody").exists()


@pytest.mark.parametrize("name, body, status, message", [
    ("notes.txt", b"just some text", 415, "not an image"),
    ("script.jpg", b"#!/bin/sh\nrm -rf /\n", 415, "not an image"),
    ("../../../../tmp/evil.jpg", None, 400, "is a path"),
    ("..\\..\\evil.jpg", None, 400, "is a path"),
])
def test_bad_uploads_are_refused_cleanly_and_nothing_is_written(site, shared_data, name, body, status, message):
    server, root = site
    before = files_under(root)
    body = body if body is not None else (shared_data / OBAMA).read_bytes()
    r = requests.post(server.url + "/api/people/Eve/photos", files={"photo": (name, body)}, timeout=30)
    assert r.status_code == status and message in r.json()["detail"]
    assert files_under(root) == before


@pytest.mark.parametrize("person", ["..", ".", "a\\b", "%2E%2E"])
def test_a_person_name_that_is_a_path_is_refused(site, shared_data, person):
    server, root = site
    before = files_under(root)
    r = requests.post(server.url + f"/api/people/{person}/photos",
                      files={"photo": ("x.jpg", (shared_data / OBAMA).read_bytes())}, timeout=30)
    assert r.status_code in (400, 404, 405), r.text
    assert files_under(root) == before


def _send_big_upload(port: int, *, chunked: bool) -> tuple:
    """Send (up to) a 100 MB multipart upload, 1 MB at a time, until the server answers;
    returns (status line, bytes sent before the answer)."""
    size = 100 * 1024 * 1024
    head = (f"POST /api/people/Big/photos HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n")
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
    sent, chunk = 0, b"\xff\xd8\xff" + b"\0" * (1024 * 1024 - 3)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(head.encode())
        part = (b'--xyz\r\nContent-Disposition: form-data; name="photo"; filename="big.jpg"\r\n'
                b"Content-Type: image/jpeg\r\n\r\n")
        s.sendall((f"{len(part):x}\r\n".encode() + part + b"\r\n") if chunked else part)
        while sent < size and not select.select([s], [], [], 0)[0]:
            try:
                s.sendall((f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked else chunk)
            except (socket.timeout, ConnectionError):
                break                                   # the server stopped reading: its answer is waiting
            sent += len(chunk)
        s.settimeout(30)
        answer = s.recv(65536)
    return answer.split(b"\r\n", 1)[0].decode(), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_100_mb_upload_is_refused_without_reading_it_all(site, chunked):
    server, root = site
    before = files_under(root)
    status, sent = _send_big_upload(server.port, chunked=chunked)
    assert status == "HTTP/1.1 413 Request Entity Too Large", status
    assert sent < 40 * 1024 * 1024, f"the server read {sent} bytes before refusing"
    assert requests.get(server.url + "/api/people", timeout=10).status_code == 200     # still serving
    assert files_under(root) == before


def test_a_request_naming_another_host_or_from_another_origin_is_refused(site):
    server, _ = site
    r = requests.get(server.url + "/api/people", headers={"Host": "evil.example"}, timeout=10)
    assert r.status_code == 403 and "not localhost" in r.json()["detail"]
    r = requests.delete(server.url + "/api/people/Anyone", headers={"Origin": "http://evil.example"}, timeout=10)
    assert r.status_code == 403 and "cross-origin" in r.json()["detail"]


def test_binding_beyond_localhost_without_a_token_is_refused_with_one_error(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != "FACETRACK_TOKEN"}
    port = __import__("web_server").free_port()
    proc = subprocess.run(serve_command("--gallery", tmp_path / "g.db", "--host", "0.0.0.0", "--port", port),
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to listen on 0.0.0.0")
    assert "--token" in lines[0] and "FACETRACK_TOKEN" in lines[0]
    assert not listening(port) and not (tmp_path / "g.db").exists()


@pytest.fixture(scope="module")
def locked(tmp_path_factory, embedder_weights):
    root = tmp_path_factory.mktemp("web-token")
    db = make_gallery(root / "gallery.db", embedder_weights)
    env = dict(__import__("os").environ, FACETRACK_TOKEN=TOKEN)
    server = Server("--gallery", db, env=env, log=root / "server.log")
    yield server
    server.stop()


def test_with_a_token_every_request_carries_it(locked):
    url = locked.url
    for path in ("/api/people", "/openapi.json", "/api/events", "/api/live.mjpg", "/people", "/unknowns"):
        assert requests.get(url + path, timeout=10).status_code == 401, path
    r = requests.get(url + "/people", headers={"Accept": "text/html"}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert requests.get(url + "/api/people", headers={"X-Facetrack-Token": TOKEN}, timeout=10).json() == []
    assert requests.get(url + "/api/people", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).ok
    assert requests.get(url + "/api/people", headers={"X-Facetrack-Token": TOKEN + "x"}, timeout=10).status_code == 401


def test_the_login_form_sets_the_token_cookie(locked):
    session = requests.Session()
    assert session.post(locked.url + "/login", data={"token": "wrong"}, timeout=10).status_code == 401
    r = session.post(locked.url + "/login", data={"token": TOKEN}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
    assert session.get(locked.url + "/api/people", timeout=10).json() == []
    assert "People" in session.get(locked.url + "/people", timeout=10).text


def _record_strangers(db, count: int) -> list:
    """``count`` Unknown appearances of clearly different (random) faces, each with one crop."""
    from gallery.store import GalleryStore
    from gallery.unknowns import Appearance, UnknownGallery

    rng = np.random.default_rng(0)
    crop = cv2.imencode(".jpg", np.full((40, 32, 3), 90, np.uint8))[1].tobytes()
    with GalleryStore(db, create=False) as store:
        unknowns = UnknownGallery(store)
        return [unknowns.record(Appearance(rng.normal(size=store.dim), 10, (60.0,) * 10, 1000.0 + i, 1010.0 + i,
                                           source="clip.mp4", track_id=i, crops=((0.9, crop),)))
                for i in range(count)]


@pytest.fixture
def strangers(tmp_path, embedder_weights):
    db = make_gallery(tmp_path / "gallery.db", embedder_weights)
    ids = _record_strangers(db, 4)
    server = Server("--gallery", db, log=tmp_path / "server.log")
    yield server, ids
    server.stop()


def test_unknown_clusters_are_listed_merged_dismissed_and_named(strangers):
    server, ids = strangers
    url = server.url + "/api/unknowns"
    clusters = requests.get(url, timeout=10).json()
    assert sorted(c["cluster_id"] for c in clusters) == sorted(ids) and len(set(ids)) == 4
    thumb = requests.get(server.url + clusters[0]["thumbnails"][0], timeout=10)
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content.startswith(b"\xff\xd8")
    r = requests.post(url + "/merge", json={"cluster_ids": [ids[0], ids[1]]}, timeout=10)
    assert r.json() == {"cluster_id": ids[0]}
    by_id = {c["cluster_id"]: c for c in requests.get(url, timeout=10).json()}
    assert set(by_id) == {ids[0], ids[2], ids[3]} and by_id[ids[0]]["appearances"] == 2
    assert requests.delete(url + f"/{ids[3]}", timeout=10).json()["appearances_deleted"] == 1
    r = requests.post(url + f"/{ids[0]}/name", json={"person": "Ada Lovelace"}, timeout=10)
    assert r.json()["embeddings_added"] == 2
    assert [c["cluster_id"] for c in requests.get(url, timeout=10).json()] == [ids[2]]
    people = requests.get(server.url + "/api/people", timeout=10).json()
    assert people == [{"name": "Ada Lovelace", "embeddings": 2, "photos": []}]


def test_bad_unknowns_requests_are_refused_with_the_reason(strangers):
    server, ids = strangers
    url = server.url + "/api/unknowns"
    r = requests.post(url + "/999/name", json={"person": "X"}, timeout=10)
    assert r.status_code == 404 and "no Unknown cluster #999" in r.json()["detail"]
    r = requests.post(url + f"/{ids[0]}/name", json={"person": "../etc"}, timeout=10)
    assert r.status_code == 400 and "must not contain /" in r.json()["detail"]
    assert requests.post(url + "/merge", json={"cluster_ids": [ids[0]]}, timeout=10).status_code == 422
    assert requests.delete(url + "/999", timeout=10).status_code == 404
    assert len(requests.get(url, timeout=10).json()) == 4


def test_an_hls_folder_is_served_and_listed_without_a_live_source(tmp_path, embedder_weights):
    db = make_gallery(tmp_path / "gallery.db", embedder_weights)
    hls = tmp_path / "hls"
    hls.mkdir()
    (hls / "out.m3u8").write_text("#EXTM3U\n#EXT-X-VERSION:3\nseg0.ts\n")
    (hls / "seg0.ts").write_bytes(b"\x47" * 188)
    server = Server("--gallery", db, "--hls", hls, log=tmp_path / "server.log")
    try:
        status = requests.get(server.url + "/api/live", timeout=10).json()
        assert status["running"] is False and status["hls"] == ["/hls/out.m3u8"]
        assert requests.get(server.url + "/hls/out.m3u8", timeout=10).text.startswith("#EXTM3U")
        assert requests.get(server.url + "/hls/seg0.ts", timeout=10).content == b"\x47" * 188
        for path in ("/hls/../gallery.db", "/hls/%2e%2e/gallery.db", "/hls/..%2fgallery.db"):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", path)                       # sent as written, not normalised by a client
            response = conn.getresponse()
            assert response.status == 404 and b"SQLite" not in response.read(), path
            conn.close()
        r = requests.get(server.url + "/api/live.mjpg", timeout=10)
        assert r.status_code == 404 and "--source" in r.json()["detail"]
    finally:
        server.stop()
