"""The web page in a real browser: Debian's headless Chromium driven by Playwright.

One ``facetrack serve`` runs the pipeline on the Hamilton clip (for the Live
and Events pages) over a gallery enrolled from a copy of two people's photos
of ``../shared``; the browser enrolls a third person by upload and renames
them. Screenshots are kept under ``tests/artifacts/web/`` (printed).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from web_server import REPO, Server, models_env

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "web"
CLIP = "video/short_hamilton_clip.mp4"
ENROLLED = ("lin_manuel_miranda", "alex_lacamoire")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {ARTIFACTS}")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, shared_models, shared_data, detector_weights, embedder_weights):
    root = tmp_path_factory.mktemp("web-browser")
    photos = root / "photos"
    for person in ENROLLED:
        shutil.copytree(shared_data / "gallery" / person, photos / person)
    server = Server("--gallery", photos, "--gallery-db", root / "gallery.db", "--source", shared_data / CLIP,
                    "--max-frames", "150", "--events", root / "events.jsonl", "--detector", detector_weights,
                    "--embedder", embedder_weights, "--device", "cpu", env=models_env(shared_models),
                    log=root / "server.log")
    yield server, root
    server.stop()


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def test_enroll_by_upload_see_the_person_listed_and_rename(page, site, shared_data):
    server, root = site
    page.goto(server.url + "/people")
    for person in ENROLLED:
        page.wait_for_selector(f'.person[data-name="{person}"]')
    page.fill("#person-name", "Barack Obama")
    page.set_input_files("#photos", [str(p) for p in sorted((shared_data / "gallery" / "barack_obama").iterdir())])
    page.click("#enroll-button")
    card = page.wait_for_selector('.person[data-name="Barack Obama"]', timeout=120_000)
    assert "2 embeddings" in card.inner_text()
    page.wait_for_function("() => [...document.querySelectorAll('.person[data-name=\"Barack Obama\"] img')]"
                           ".every((img) => img.complete && img.naturalWidth > 0)")
    assert page.inner_text("#message") == "fr_obama.jpg: enrolled; fr_obama2.jpg: enrolled"
    page.screenshot(path=str(ARTIFACTS / "people-enrolled.png"), full_page=True)
    assert len(list((root / "photos" / "Barack Obama").iterdir())) == 2

    card.query_selector(".rename-input").fill("Barack H. Obama")
    card.query_selector(".rename-button").click()
    page.wait_for_selector('.person[data-name="Barack H. Obama"]')
    assert page.query_selector('.person[data-name="Barack Obama"]') is None
    page.screenshot(path=str(ARTIFACTS / "people-renamed.png"), full_page=True)
    names = [p["name"] for p in requests.get(server.url + "/api/people", timeout=10).json()]
    assert names == sorted(["Barack H. Obama", *ENROLLED])


def test_a_bad_upload_shows_why_it_was_refused(page, site, tmp_path):
    server, _ = site
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    page.goto(server.url + "/people")
    page.fill("#person-name", "Nobody")
    page.set_input_files("#photos", str(text))
    page.click("#enroll-button")
    page.wait_for_selector("#message.error")
    assert "notes.jpg: the upload is not an image" in page.inner_text("#message")
    page.screenshot(path=str(ARTIFACTS / "people-refused.png"), full_page=True)


def _first_mjpeg_frame(url: str):
    """The first JPEG of an MJPEG stream, decoded."""
    import cv2
    import numpy as np

    with requests.get(url, stream=True, timeout=30) as r:
        assert r.headers["content-type"].startswith("multipart/x-mixed-replace; boundary=")
        data = b""
        for piece in r.iter_content(65536):
            data += piece
            head, sep, rest = data.partition(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]) if sep else -1
            if sep and len(rest) >= length:
                return cv2.imdecode(np.frombuffer(rest[:length], np.uint8), cv2.IMREAD_COLOR)
    raise AssertionError("the stream ended before a whole frame")


def test_the_live_page_shows_the_annotated_stream(page, site, shared_data):
    import cv2

    server, _ = site
    video = cv2.VideoCapture(str(shared_data / CLIP))
    size = (int(video.get(cv2.CAP_PROP_FRAME_WIDTH)), int(video.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    video.release()
    frame = _first_mjpeg_frame(server.url + "/api/live.mjpg")
    assert (frame.shape[1], frame.shape[0]) == size
    page.goto(server.url + "/live")
    page.wait_for_function("() => { const i = document.getElementById('live-image');"
                           " return i.complete && i.naturalWidth > 0; }", timeout=60_000)
    assert page.evaluate("document.getElementById('live-image').naturalWidth") == size[0]
    status = page.inner_text("#live-status")
    assert status.startswith(f"running on {shared_data / CLIP}") or status.endswith("(max_frames, 150 frames)"), status
    page.screenshot(path=str(ARTIFACTS / "live.png"), full_page=True)


def _wait_for_the_run(server, seconds=300):
    deadline = time.monotonic() + seconds
    while requests.get(server.url + "/api/live", timeout=10).json()["running"]:
        assert time.monotonic() < deadline, "the live pipeline did not finish"
        time.sleep(1)
    return requests.get(server.url + "/api/live", timeout=10).json()


def test_the_events_page_shows_the_timeline_with_snapshots_and_filters_by_person(page, site):
    server, _ = site
    status = _wait_for_the_run(server)
    assert status["error"] is None and status["frames"] == 150
    data = requests.get(server.url + "/api/events", timeout=10).json()
    assert data["events"] and all(e["snapshot"] for e in data["events"])
    page.goto(server.url + "/events")
    page.wait_for_selector(".event")
    assert len(page.query_selector_all(".event")) == len(data["events"])
    page.wait_for_function("() => [...document.querySelectorAll('.event img')]"
                           ".every((img) => img.complete && img.naturalWidth > 0)")
    page.screenshot(path=str(ARTIFACTS / "events.png"), full_page=True)
    person = data["people"][0] if data["people"] else "Unknown"
    expected = [e for e in data["events"] if (e["name"] or "Unknown") == person]
    page.select_option("#person", person)
    page.wait_for_function(f"() => document.querySelectorAll('.event').length == {len(expected)}")
    assert {n.inner_text() for n in page.query_selector_all(".event-name")} == {person}
    page.screenshot(path=str(ARTIFACTS / "events-filtered.png"), full_page=True)


def test_name_an_unknown_cluster_seen_in_the_clip_and_see_the_name_on_the_next_run(page, site, shared_models,
                                                                                    shared_data):
    server, root = site
    _wait_for_the_run(server)
    clusters = requests.get(server.url + "/api/unknowns", timeout=10).json()
    assert clusters, "the clip's Unknown faces were not remembered"
    page.goto(server.url + "/unknowns")
    card = page.wait_for_selector(f'.cluster[data-id="{clusters[0]["cluster_id"]}"]')
    page.wait_for_function("() => [...document.querySelectorAll('.cluster img')]"
                           ".every((img) => img.complete && img.naturalWidth > 0)")
    page.screenshot(path=str(ARTIFACTS / "unknowns.png"), full_page=True)
    card.query_selector(".name-input").fill("Visitor One")
    card.query_selector(".name-button").click()
    page.wait_for_selector("#message.ok")
    assert page.inner_text("#message") == f"{clusters[0]['label']} is now Visitor One"
    page.wait_for_function(f"() => !document.querySelector('.cluster[data-id=\"{clusters[0]['cluster_id']}\"]')")
    page.screenshot(path=str(ARTIFACTS / "unknowns-named.png"), full_page=True)
    people = {p["name"]: p["embeddings"] for p in requests.get(server.url + "/api/people", timeout=10).json()}
    assert people["Visitor One"] == clusters[0]["appearances"]

    events = root / "events-next-run.jsonl"
    proc = subprocess.run([sys.executable, "demo.py", "--source", str(shared_data / CLIP), "--gallery",
                           str(root / "gallery.db"), "--max-frames", "150", "--events", str(events), "--no-show",
                           "--quiet", "--device", "cpu"], cwd=REPO, env=models_env(shared_models),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    names = {json.loads(line)["name"] for line in events.read_text().splitlines()}
    assert "Visitor One" in names, (names, proc.stderr)
