"""The limit bench: decode + detector floor, and the pipeline's fraction of it per stage."""
from __future__ import annotations

import json

import pytest

from tracker.detections import Detections


class CountingDetector:
    """Counts the frames it is shown (and their sizes); finds nothing."""

    input_size = 640

    def __init__(self):
        self.shapes = []

    def detect(self, frame):
        self.shapes.append(frame.shape)
        return Detections.empty(with_landmarks=True)


@pytest.fixture(scope="module")
def clip(shared_data):
    return shared_data / "video" / "short_hamilton_clip.mp4"


@pytest.mark.parametrize("every, frames, calls", [(1, 10, 10), (3, 10, 4), (4, 9, 3), (20, 7, 1)])
def test_the_floor_decodes_every_frame_and_detects_one_in_every(clip, every, frames, calls):
    from evaluation.bench import floor_run

    det = CountingDetector()
    r = floor_run(det, clip, every=every, max_frames=frames)
    assert r["frames"] == frames and r["detect_calls"] == calls == len(det.shapes)
    assert set(det.shapes) == {(360, 640, 3)}        # the whole decoded frame, as the pipeline gives it
    assert r["fps"] == pytest.approx(frames / r["seconds"]) and r["cpu_ms_per_frame"] >= 0


def test_the_floor_runs_to_the_end_without_a_frame_limit(clip):
    from evaluation.bench import floor_run

    assert floor_run(CountingDetector(), clip, every=50)["frames"] == 275   # the clip's frame count (MANIFEST)


@pytest.mark.parametrize("every", [0, -1, 1.5])
def test_a_bad_interval_is_refused(clip, every):
    from evaluation.bench import floor_run

    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        floor_run(CountingDetector(), clip, every=every, max_frames=2)


@pytest.mark.integration
@pytest.mark.slow
def test_the_limit_command_on_a_real_clip(clip, shared_data, shared_models, tmp_path, monkeypatch, capsys):
    from facetrack.bench import main

    monkeypatch.setenv("FACETRACK_MODELS_DIR", str(shared_models))
    out = tmp_path / "limit.json"
    assert main(["limit", str(clip), "--gallery", str(shared_data / "gallery"), "--max-frames", "6",
                 "--every", "1", "2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    (r,) = json.loads(out.read_text())
    # 640x360 is above pipeline.large_frame_side (480), so its full frames are detected at input 960.
    assert (r["width"], r["height"], r["frames"], r["input_size"]) == (640, 360, 6, 960)
    assert set(r["floors"]) == {"1", "2", str(r["detect_interval"])}
    assert r["floors"]["1"]["detect_calls"] == 6 and r["floors"]["2"]["detect_calls"] == 3
    for k, f in r["floors"].items():
        assert r["fraction_of_floor"][k] == pytest.approx(r["pipeline"]["fps"] / f["fps"])
        assert r["cpu_fraction_of_floor"][k] == pytest.approx(f["cpu_ms_per_frame"]
                                                              / r["pipeline"]["cpu_ms_per_frame"])
    assert r["floors"]["1"]["cpu_ms_per_frame"] > r["floors"]["2"]["cpu_ms_per_frame"] > 0   # half the passes
    stages = r["pipeline"]["stage_ms"]
    assert set(stages) == set(r["stage_share"]) and "wait" in stages and "identify" in stages
    assert stages["detect"] > 0 and stages["encode"] > 0
    assert 0.5 < sum(r["stage_share"].values()) < 1.2   # the stages account for the frame time
    assert "floor: decode + detect every 2 frames" in text and "share of the frame time" in text


def test_the_limit_command_refuses_a_missing_video(tmp_path, capsys):
    from facetrack.bench import main

    assert main(["limit", str(tmp_path / "no.mp4"), "--gallery", str(tmp_path)]) == 2
    assert "no such file or folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["limit", "detectors", "memory", "live"])
def test_a_bench_refuses_an_unwritable_output_before_it_runs(command, tmp_path, capsys, monkeypatch):
    import evaluation.bench as ebench
    from facetrack.bench import main

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")                         # exists: only the output is wrong
    monkeypatch.setattr(ebench, "build_parts", lambda *a, **k: pytest.fail("ran before checking the output"))
    flag = "--log" if command == "memory" else "--json"
    argv = [command, str(video), flag, str(tmp_path / "no-such-folder" / "out.json")]
    if command != "detectors":
        argv += ["--gallery", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no-such-folder" in err and "does not exist" in err
