"""Pipeline scheduling and the run loop, with fake models and the real tracker and identifier."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from gallery.identifier import Identifier
from gallery.index import GalleryIndex
from pipeline.events import EventWriter, TracksWriter
from pipeline.loop import run
from pipeline.results import FrameResult
from pipeline.runner import Pipeline
from pipeline.sources import Frame
from tracker.detections import Detections
from tracker.tracker import Tracker

DIM = 128
W, H = 320, 240


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class Scene:
    """People moving linearly; person p's face is at x = x0 + vx * t."""

    def __init__(self, people):
        self.people = people      # list of (person_seed, x0, y0, vx, vy, size, first, last)

    def boxes(self, t):
        out, who = [], []
        for seed, x0, y0, vx, vy, size, first, last in self.people:
            if first <= t <= last:
                x, y = x0 + vx * t, y0 + vy * t
                out.append([x, y, x + size, y + size])
                who.append(seed)
        return np.asarray(out, np.float32).reshape(-1, 4), who

    def frame(self, t):
        img = np.zeros((H, W, 3), np.uint8)
        img[0, 0, 0] = t % 256
        img[0, 0, 1] = t // 256
        return img


def frame_time(frame) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])


class FakeDetector:
    def __init__(self, scene):
        self.scene = scene
        self.calls = []

    def detect(self, frame):
        t = frame_time(frame)
        self.calls.append(t)
        boxes, _ = self.scene.boxes(t)
        return Detections(boxes, np.full(len(boxes), 0.9, np.float32))


class FakeEmbedder:
    """Embeds each box as its person's vector (found by the box position at that time) plus noise."""

    def __init__(self, scene, noise=0.05):
        self.scene = scene
        self.noise = noise
        self.faces = 0
        self.rng = np.random.default_rng(0)

    def embed(self, frame, detections):
        t = frame_time(frame)
        boxes, who = self.scene.boxes(t)
        out = []
        for box in detections.xyxy:
            k = int(np.argmin(np.abs(boxes - box).sum(axis=1)))
            v = unit(who[k]) + self.noise * self.rng.normal(size=DIM).astype(np.float32)
            out.append(v / np.linalg.norm(v))
        self.faces += len(out)
        return np.asarray(out, np.float32).reshape(-1, DIM)


class SpyTracker(Tracker):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = []
        self.elapsed = []

    def update(self, detections, scene_cut=False, elapsed_frames=1, **kw):
        self.calls.append((len(detections), bool(scene_cut), detections.embedding is not None))
        self.elapsed.append(elapsed_frames)
        return super().update(detections, scene_cut=scene_cut, elapsed_frames=elapsed_frames, **kw)


class SpyIdentifier(Identifier):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.evidence = []
        self.forgotten = []

    def forget(self, track_ids):
        self.forgotten.extend(int(t) for t in track_ids)
        return super().forget(track_ids)

    def update(self, tracks, detections, quality=None, **kw):
        self.evidence.extend(int(t.track_id) for t in tracks)
        return super().update(tracks, detections, quality, **kw)


def make_pipeline(scene, *, enrolled=(1,), names=("alice",), scene_cut_detector=None, tracker_kw=None, **kw):
    index = GalleryIndex(list(names), np.stack([unit(s) for s in enrolled]))
    identifier = SpyIdentifier(index, similarity_threshold=0.5, min_margin=0.05, min_observations=2)
    tracker = SpyTracker(**{"n_init": 2, "max_age": 5, "reid_min_confidence": 0.0, **(tracker_kw or {})})
    return Pipeline(FakeDetector(scene), FakeEmbedder(scene), tracker, identifier, scene_cut_detector,
                    **{**BASELINE, **kw})


#: The every-frame baseline: detect and embed every frame (the tests below opt into the schedule).
BASELINE = dict(detect_interval=1, warmup_detect_interval=1, embed_policy="all", fast_motion_fraction=0.0)


def drive(pipeline, scene, n):
    return [pipeline.process(scene.frame(t), t, t / 25.0) for t in range(n)]


ONE_PERSON = Scene([(1, 40, 60, 2.0, 0.5, 60, 0, 1000)])
TWO_PEOPLE = Scene([(1, 20, 40, 1.5, 0.0, 50, 0, 1000), (2, 200, 100, -1.0, 0.5, 50, 0, 1000)])


def test_baseline_names_the_enrolled_person_and_results_have_documented_shapes():
    p = make_pipeline(ONE_PERSON)
    results = drive(p, ONE_PERSON, 20)
    last = results[-1]
    assert isinstance(last, FrameResult)
    assert last.xyxy.shape == (1, 4) and last.xyxy.dtype == np.float32
    assert last.track_ids.shape == (1,) and last.scores.shape == (1,) and last.confidence.shape == (1,)
    assert last.names == ["alice"]
    assert last.detected and not last.predicted.any()
    assert set(last.timings) >= {"scene_cut", "detect", "embed", "track", "identify"}
    # Every frame detected and every face embedded in the baseline.
    assert p.detector.calls == list(range(20))
    assert p.embedder.faces == 20


def test_unknown_person_is_not_named():
    scene = Scene([(7, 40, 60, 1.0, 0.0, 60, 0, 1000)])
    p = make_pipeline(scene)
    last = drive(p, scene, 15)[-1]
    assert len(last) == 1 and last.names == [None]


def test_detect_interval_updates_the_tracker_only_on_detection_frames_and_predicts_between():
    p = make_pipeline(ONE_PERSON, detect_interval=3, warmup_detect_interval=3)
    results = drive(p, ONE_PERSON, 30)
    assert p.detector.calls == list(range(0, 30, 3))
    assert len(p.tracker.calls) == 10
    predicted = [r for r in results[9:] if not r.detected]
    assert predicted and all(r.predicted.all() and len(r) == 1 for r in predicted)
    for r in predicted:   # constant-velocity extrapolation follows the linear motion
        truth, _ = ONE_PERSON.boxes(r.frame_index)
        assert np.abs(r.xyxy[0] - truth[0]).max() < 1.0
    # The same track id throughout, and it is named on the predicted frames too.
    assert len({int(r.track_ids[0]) for r in results[9:]}) == 1
    assert results[-1].names == ["alice"]


def test_the_tracker_is_told_how_many_frames_passed_since_its_last_update():
    p = make_pipeline(ONE_PERSON, detect_interval=3, warmup_detect_interval=1, embed_policy="needed",
                      scene_cut_detector=ScriptedCuts({20}))
    drive(p, ONE_PERSON, 30)
    calls = p.detector.calls
    assert p.tracker.elapsed == [1] + [b - a for a, b in zip(calls, calls[1:])]
    assert 1 in p.tracker.elapsed[1:] and 3 in p.tracker.elapsed  # warm-up, then the interval
    assert 20 in calls and p.tracker.elapsed[calls.index(20)] == 20 - calls[calls.index(20) - 1]


# Two faces meeting: person 2 walks left into person 1, overlapping them for a while.
MEETING = Scene([(1, 100, 100, 0.0, 0.0, 60, 0, 1000), (2, 260, 100, -2.0, 0.0, 60, 0, 1000)])


def test_overlapping_faces_never_borrow_a_tracks_embedding():
    # Borrowing the last embedding of the track a face overlaps is safe for an
    # isolated face; where two faces overlap it can hand one person's
    # embedding to the other and let the tracker swap them.
    p = make_pipeline(MEETING, enrolled=(1, 2), names=("alice", "bob"), detect_interval=2,
                      warmup_detect_interval=1, embed_policy="needed", embed_refresh_interval=1000,
                      settled_observations=3)
    results = drive(p, MEETING, 80)
    overlapping = 0
    for r in results:
        if not r.detected or r.num_detections != 2:
            continue
        boxes = r.detections.xyxy
        ix = min(boxes[0, 2], boxes[1, 2]) - max(boxes[0, 0], boxes[1, 0])
        if ix > 0:
            overlapping += 1
            assert r.num_embedded == 2, r.frame_index
    assert overlapping >= 5
    # Apart, settled faces still reuse their embeddings.
    assert sum(r.num_embedded for r in results[10:40] if r.detected) < 10


class ScriptedCuts:
    def __init__(self, cuts):
        self.cuts = set(cuts)
        self.t = 0
        self.resets = 0

    def update(self, frame):
        cut = frame_time(frame) in self.cuts
        return cut

    def reset(self):
        self.resets += 1


def test_a_cut_forces_detection_off_schedule_and_calls_the_tracker_cut_mode():
    p = make_pipeline(ONE_PERSON, detect_interval=4, warmup_detect_interval=4,
                      scene_cut_detector=ScriptedCuts({10}))
    results = drive(p, ONE_PERSON, 16)
    assert 10 in p.detector.calls                 # off the 0, 4, 8, 12 schedule
    assert results[10].scene_cut and results[10].detected
    cut_flags = [c[1] for c in p.tracker.calls]
    assert cut_flags.count(True) == 1
    # The schedule restarts from the cut: next detection 4 frames later.
    assert p.detector.calls[p.detector.calls.index(10) + 1] == 14


def test_embed_needed_embeds_fewer_faces_and_names_like_the_baseline():
    base = make_pipeline(TWO_PEOPLE, enrolled=(1, 2), names=("alice", "bob"))
    fast = make_pipeline(TWO_PEOPLE, enrolled=(1, 2), names=("alice", "bob"), detect_interval=2,
                         embed_policy="needed", embed_refresh_interval=10, settled_observations=3)
    rb = drive(base, TWO_PEOPLE, 60)
    rf = drive(fast, TWO_PEOPLE, 60)
    assert fast.embedder.faces < base.embedder.faces / 3
    named_base = {n for r in rb[-10:] for n in r.names}
    named_fast = {n for r in rf[-10:] for n in r.names}
    assert named_base == named_fast == {"alice", "bob"}
    # The tracker got an embedding for every detection on every detection frame.
    assert all(has_emb for _, _, has_emb in fast.tracker.calls)
    # The identifier got evidence only from fresh embeddings: at most one per embedded face.
    assert len(fast.identifier.evidence) <= fast.embedder.faces
    # The refresh interval bounds how stale an embedding gets: at least one embedding per person per 10 frames.
    assert fast.embedder.faces >= 2 * (60 // 10)


def test_young_tracks_are_detected_at_the_warmup_interval_then_at_the_detect_interval():
    p = make_pipeline(ONE_PERSON, detect_interval=4, warmup_detect_interval=1, embed_policy="needed",
                      settled_observations=3)
    results = drive(p, ONE_PERSON, 40)
    calls = p.detector.calls
    # Every frame until the track is confirmed (n_init 2) and embedded 3 times, then every 4th.
    assert calls[:4] == [0, 1, 2, 3]
    assert all(b - a == 4 for a, b in zip(calls[5:], calls[6:]))
    # Named as soon as in the every-frame mode.
    base = drive(make_pipeline(ONE_PERSON), ONE_PERSON, 40)
    first = lambda rs: next(r.frame_index for r in rs if "alice" in r.names)
    assert first(results) == first(base)


def test_max_faces_per_frame_caps_the_embedder():
    crowd = Scene([(s, 10 + 35 * s, 50, 0.0, 0.0, 30, 0, 1000) for s in range(1, 8)])
    p = make_pipeline(crowd, embed_policy="needed", max_faces_per_frame=3)
    results = drive(p, crowd, 10)
    assert all(r.num_embedded <= 3 for r in results)
    assert results[0].num_detections == 7
    # The capped embeddings are used, not thrown away: faces get embedded and named.
    assert sum(r.num_embedded for r in results) >= 7
    assert any("alice" in r.names for r in results)


def test_lost_and_ended_ids_reach_the_result_and_the_identifier_forgets_ended_tracks():
    scene = Scene([(1, 40, 60, 1.0, 0.0, 60, 0, 12)])
    p = make_pipeline(scene, tracker_kw={"lost_max_age": 10})
    results = drive(p, scene, 40)
    lost = [i for r in results for i in r.lost_ids]
    assert lost, "the track leaving the active set must be reported"
    assert all(len(r) == 0 for r in results[14:])
    ended = [i for r in results for i in r.ended_ids]
    assert ended, "the track must end for good once the lost buffer lets it go"
    assert set(ended) <= set(p.identifier.forgotten)
    assert all(p.identifier.get(i).observations == 0 for i in ended)


@pytest.mark.parametrize("keyword, value", [
    ("detect_interval", 0), ("detect_interval", 1.5), ("embed_policy", "some"),
    ("warmup_detect_interval", 0), ("warmup_detect_interval", 2),
    ("embed_refresh_interval", 0), ("settled_observations", 0), ("reuse_iou_threshold", 0.0),
    ("reuse_iou_threshold", 1.5), ("max_faces_per_frame", -1), ("fast_motion_fraction", -0.1),
    ("fast_motion_fraction", "fast"), ("reidentify_by_name", 1),
])
def test_bad_keywords_raise_value_error_naming_the_parameter(keyword, value):
    with pytest.raises(ValueError, match=keyword):
        make_pipeline(ONE_PERSON, **{keyword: value})


def test_process_rejects_a_non_image():
    p = make_pipeline(ONE_PERSON)
    with pytest.raises(ValueError, match="frame"):
        p.process(np.zeros((10, 10), np.uint8), 0)


# ------------------------------------------------------------------- run loop
class ListSource:
    is_live = False
    description = "list"
    dropped_frames = 0
    reconnects = 0

    def __init__(self, scene, n):
        self.frames = [Frame(scene.frame(t), t, t / 25.0) for t in range(n)]
        self.frame_count = n
        self.fps = 25.0
        self.closed = False

    def read(self):
        return self.frames.pop(0) if self.frames else None

    def close(self):
        self.closed = True


class ListSink:
    def __init__(self):
        self.frames = []
        self.closed = False

    def write(self, frame):
        self.frames.append(frame.copy())
        return True

    def close(self):
        self.closed = True


def test_run_writes_sinks_events_and_tracks(tmp_path):
    scene = Scene([(1, 40, 60, 1.0, 0.0, 60, 0, 15), (2, 200, 60, 0.0, 0.0, 60, 0, 40)])
    p = make_pipeline(scene)
    source, sink = ListSource(scene, 40), ListSink()
    events = EventWriter(tmp_path / "ev.jsonl")
    tracks = TracksWriter(tmp_path / "tr.txt")
    summary = run(p, source, [sink], event_writer=events, tracks_writer=tracks)
    assert summary.frames == 40 and len(sink.frames) == 40
    assert sink.closed and source.closed
    import json
    events = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events].count("appeared") == 2         # one per appearance, when it starts
    lines = [e for e in events if e["event"] == "ended"]
    assert {e["track_id"] for e in lines} == {1, 2}
    alice = next(e for e in lines if e["name"] == "alice")
    assert set(alice) == {"event", "time", "source", "track_id", "name", "score", "box", "first_frame",
                          "last_frame", "first_time", "last_time", "frames_seen", "first_seen", "last_seen",
                          "scene", "identity", "snapshot"}
    assert (tmp_path / alice["snapshot"]).is_file()
    assert alice["last_frame"] <= 15 and alice["first_time"] == pytest.approx(alice["first_frame"] / 25.0)
    other = next(e for e in lines if e["track_id"] != alice["track_id"])
    assert other["name"] is None and other["last_frame"] == 39      # written at exit
    rows = [r.split(",") for r in (tmp_path / "tr.txt").read_text().splitlines()]
    assert all(len(r) == 10 and r[7:] == ["-1", "-1", "-1"] for r in rows)
    assert min(int(r[0]) for r in rows) >= 1                       # MOT frames are 1-based
    assert summary.names_seen == ["alice"] and summary.appearances == 2


def test_run_stops_on_sigint_and_still_closes_everything(tmp_path):
    p = make_pipeline(ONE_PERSON)
    source, sink = ListSource(ONE_PERSON, 100), ListSink()
    events = EventWriter(tmp_path / "ev.jsonl")

    def on_frame(result):
        if result.frame_index == 10:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    summary = run(p, source, [sink], event_writer=events, on_frame=on_frame)
    assert summary.interrupted and summary.stop_reason == "interrupted"
    assert 11 <= summary.frames <= 12
    assert sink.closed and source.closed
    ended = [line for line in (tmp_path / "ev.jsonl").read_text().splitlines() if '"ended"' in line]
    assert len(ended) == 1                                             # the live track, written at exit
    # The previous SIGINT handler is back (whatever it was: pytest's, or one an earlier test left).
    assert signal.getsignal(signal.SIGINT) is before


def test_run_closes_sinks_when_a_stage_fails():
    class Boom(FakeDetector):
        def detect(self, frame):
            if frame_time(frame) == 3:
                raise RuntimeError("boom")
            return super().detect(frame)

    p = make_pipeline(ONE_PERSON)
    p.detector = Boom(ONE_PERSON)
    source, sink = ListSource(ONE_PERSON, 10), ListSink()
    with pytest.raises(RuntimeError, match="boom"):
        run(p, source, [sink])
    assert sink.closed and source.closed


def test_run_max_frames_and_a_sink_asking_to_stop():
    p = make_pipeline(ONE_PERSON)
    assert run(p, ListSource(ONE_PERSON, 50), [], max_frames=7).frames == 7

    class Closer(ListSink):
        def write(self, frame):
            super().write(frame)
            return len(self.frames) < 5

    p = make_pipeline(ONE_PERSON)
    summary = run(p, ListSource(ONE_PERSON, 50), [Closer()])
    assert summary.frames == 5 and summary.stop_reason == "window closed"
    with pytest.raises(ValueError, match="max_frames"):
        run(p, ListSource(ONE_PERSON, 5), [], max_frames=0)


def test_the_fps_readout_is_the_recent_rate_not_one_frames_rate():
    from pipeline.overlay import Overlay

    class SpyOverlay(Overlay):
        values = []

        def draw_fps(self, scene, fps):
            self.values.append(fps)
            return super().draw_fps(scene, fps)

    class SlowDetector(FakeDetector):
        def detect(self, frame):
            import time
            time.sleep(0.02)
            return super().detect(frame)

    p = make_pipeline(ONE_PERSON, detect_interval=3, warmup_detect_interval=3)
    p.detector = SlowDetector(ONE_PERSON)
    overlay = SpyOverlay(burn_fps=True)
    summary = run(p, ListSource(ONE_PERSON, 60), [ListSink()], overlay=overlay)
    late = [v for v in overlay.values[35:] if v is not None]
    assert late and all(0.5 * summary.fps < v < 2.0 * summary.fps for v in late), (summary.fps, late)


class EdgeEntryDetector(FakeDetector):
    """One face sliding in at the left edge: its box widens 6 px a frame (aspect changes fast)."""

    def detect(self, frame):
        t = frame_time(frame)
        self.calls.append(t)
        return Detections(self.box(t)[None], np.array([0.9], np.float32))

    @staticmethod
    def box(t):
        return np.array([0.0, 60.0, min(10.0 + 6.0 * t, 120.0), 160.0], np.float32)


class OnePersonEmbedder:
    def __init__(self):
        self.faces = 0

    def embed(self, frame, detections):
        self.faces += len(detections)
        return np.tile(unit(1), (len(detections), 1))


def test_a_matched_track_is_drawn_with_its_detections_box_not_the_lagging_kalman_box():
    tracker = Tracker(n_init=2, max_age=5, reid_min_confidence=0.0)
    p = Pipeline(EdgeEntryDetector(ONE_PERSON), OnePersonEmbedder(), tracker, **{**BASELINE, "detect_interval": 3})
    results = drive(p, ONE_PERSON, 30)
    shown = [r for r in results if r.detected and len(r)]
    assert len(shown) >= 5
    for r in shown:
        np.testing.assert_allclose(r.xyxy[0], EdgeEntryDetector.box(r.frame_index), atol=1e-3)
    # Frames without detection extrapolate the drawn boxes.
    between = [r for r in results if not r.detected and len(r)]
    assert between and all(r.predicted.all() for r in between)


def test_fast_faces_are_detected_at_the_warmup_interval():
    # 12 px per frame with a 40 px box: 48 px per interval of 4 frames, more
    # than 3/4 of the width, so the boxes extrapolated in between would leave
    # the face; a slow face (ONE_PERSON: 8 px per interval, 60 px box) keeps
    # the interval.
    fast = Scene([(1, 0, 60, 12.0, 0.0, 40, 0, 1000)])
    for fraction, every_frame in ((0.75, True), (0.0, False)):
        p = make_pipeline(fast, detect_interval=4, warmup_detect_interval=1, embed_policy="needed",
                          fast_motion_fraction=fraction)
        drive(p, fast, 20)
        gaps = {b - a for a, b in zip(p.detector.calls[6:], p.detector.calls[7:])}
        assert gaps == ({1} if every_frame else {4})
    p = make_pipeline(ONE_PERSON, detect_interval=4, embed_policy="needed", fast_motion_fraction=0.75)
    drive(p, ONE_PERSON, 30)
    assert {b - a for a, b in zip(p.detector.calls[6:], p.detector.calls[7:])} == {4}


class LookEmbedder(FakeEmbedder):
    """Each person's face is a given unit vector (plus a little noise)."""

    def __init__(self, scene, looks, noise=0.005):
        super().__init__(scene, noise)
        self.looks = looks

    def embed(self, frame, detections):
        boxes, who = self.scene.boxes(frame_time(frame))
        out = []
        for box in detections.xyxy:
            v = self.looks[who[int(np.argmin(np.abs(boxes - box).sum(axis=1)))]]
            v = v + self.noise * self.rng.normal(size=DIM).astype(np.float32)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, np.float32).reshape(-1, DIM)


def test_a_held_track_the_gallery_names_like_a_lost_track_takes_its_id():
    # Alice leaves, and comes back in a new shot looking different (another
    # photo): 0.55 from her old track, beyond the tracker's re-id distance
    # (0.45) but within its hold distance (0.65), so the new track is held.
    # The gallery (between both looks) names it alice like the lost track:
    # it continues under alice's old id, and no other id is ever shown.
    look1 = unit(1)
    other = unit(7) - (unit(7) @ look1) * look1
    look2 = 0.45 * look1 + np.sqrt(1 - 0.45 ** 2) * other / np.linalg.norm(other)
    template = (look1 + look2) / np.linalg.norm(look1 + look2)
    scene = Scene([(1, 40, 60, 0.0, 0.0, 60, 0, 10), (2, 200, 100, 0.0, 0.0, 60, 25, 1000)])
    for by_name in (True, False):
        index = GalleryIndex(["alice"], template[None].astype(np.float32))
        identifier = SpyIdentifier(index, similarity_threshold=0.5, min_margin=0.05, min_observations=2)
        tracker = SpyTracker(n_init=2, max_age=5, reid_max_cosine_distance=0.45, hold_cosine_distance=0.65,
                             hold_max_hits=8, reid_min_confidence=0.0)
        p = Pipeline(FakeDetector(scene), LookEmbedder(scene, {1: look1, 2: look2.astype(np.float32)}), tracker,
                     identifier, reidentify_by_name=by_name, **BASELINE)
        results = drive(p, scene, 50)
        first_id = {int(i) for r in results[:11] for i in r.track_ids}
        later = [(int(i), n) for r in results[25:] for i, n in zip(r.track_ids, r.names)]
        assert len(first_id) == 1 and later
        if by_name:
            assert {i for i, _ in later} == first_id and {n for _, n in later} == {"alice"}
            assert set(p.identifier.forgotten) - first_id  # the held id ended, its evidence dropped
        else:
            assert not ({i for i, _ in later} & first_id)   # shown under a new id after hold_max_hits


def test_a_held_track_the_gallery_names_somebody_no_absent_track_is_shown_at_once():
    # Alice leaves; Bob comes in a new shot 0.55 from her lost track (within
    # the hold distance 0.65, beyond re-id 0.45), so his new track is held.
    # The gallery names him bob, and no absent track is bob: he cannot be
    # Alice's track, so he is shown, named, before hold_max_hits; without
    # name-based re-identification he waits out the hold.
    look1 = unit(1)
    other = unit(7) - (unit(7) @ look1) * look1
    look2 = (0.45 * look1 + np.sqrt(1 - 0.45 ** 2) * other / np.linalg.norm(other)).astype(np.float32)
    scene = Scene([(1, 40, 60, 0.0, 0.0, 60, 0, 10), (2, 200, 100, 0.0, 0.0, 60, 25, 1000)])
    first_shown = {}
    for by_name in (True, False):
        index = GalleryIndex(["alice", "bob"], np.stack([look1, look2]).astype(np.float32))
        identifier = SpyIdentifier(index, similarity_threshold=0.5, min_margin=0.05, min_observations=2)
        tracker = SpyTracker(n_init=2, max_age=5, reid_max_cosine_distance=0.45, hold_cosine_distance=0.65,
                             hold_max_hits=12, reid_min_confidence=0.0)
        p = Pipeline(FakeDetector(scene), LookEmbedder(scene, {1: look1, 2: look2}), tracker,
                     identifier, reidentify_by_name=by_name, **BASELINE)
        results = drive(p, scene, 50)
        alice = {int(i) for r in results[:11] for i in r.track_ids}
        later = [(r.frame_index, int(i), n) for r in results[25:] for i, n in zip(r.track_ids, r.names)]
        assert len(alice) == 1 and later and not ({i for _, i, _ in later} & alice)
        first_shown[by_name] = later[0]
    frame, _, name = first_shown[True]
    assert name == "bob" and frame <= 25 + 4              # confirmed at 2 hits, named at 2 observations
    assert first_shown[False][0] >= 25 + 11                # held for all 12 hits


class SizedDetector:
    """Records the input side of every full-frame call; no faces."""

    input_size = 640

    def __init__(self, fixed=None):
        self.sides = []
        self.fixed_input_size = fixed

    def detect(self, frame, input_size=None):
        self.sides.append((frame.shape[1], input_size or self.input_size))
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


def test_frames_larger_than_large_frame_side_are_detected_at_the_large_input():
    det = SizedDetector()
    pipe = Pipeline(det, None, Tracker(), large_frame_input_size=960, large_frame_side=960)
    for width, height in ((640, 360), (960, 540), (1280, 720), (1920, 1080)):
        pipe.reset()
        pipe.process(np.zeros((height, width, 3), np.uint8), 0)
    assert det.sides == [(640, 640), (960, 640), (1280, 960), (1920, 960)]
    assert pipe.full_frame_input_size(720, 1280) == 960 and pipe.full_frame_input_size(360, 640) == 640
    default = Pipeline(SizedDetector(), None, Tracker())      # large_frame_side 480: 640x360 broadcast too
    assert [default.full_frame_input_size(h, w) for w, h in ((480, 270), (640, 360), (960, 540))] == [640, 960, 960]
    off = Pipeline(SizedDetector(), None, Tracker(), large_frame_input_size=0)
    assert off.full_frame_input_size(1080, 1920) == 640
    fixed = Pipeline(SizedDetector(fixed=640), None, Tracker(), large_frame_input_size=960)
    assert fixed.full_frame_input_size(1080, 1920) == 640         # a fixed-size export takes its own size only
    with pytest.raises(ValueError, match="large_frame_input_size"):
        Pipeline(SizedDetector(), None, Tracker(), large_frame_input_size=1000)
    plain = Pipeline(FakeDetector(Scene([])), None, Tracker())      # its detect takes no input_size
    assert plain.large_frame_input_size == 0
    plain.process(np.zeros((1080, 1920, 3), np.uint8), 0)            # ...and it is called as it can be
    assert Pipeline(SizedDetector(), None, Tracker()).full_frame_input_size(1080, 1920) == 960   # the default
