"""Replay: the real tracker and identifier over recorded model outputs.

Tuning the tracker or the identifier, or checking that a refactoring changed
nothing, needs the same detections and embeddings run after run. The models
take most of the time (about 100 ms per detector call on two CPU cores), and
the parts being tuned take very little. So the first run of a sequence
records every detector output and every embedding in a cache, keyed by the
frame's content and the face's box. Later runs answer from the cache and
run the real pipeline (schedule, tracker, identifier) around it.

A cache miss is not an error: the real model computes the answer and the
cache grows, so a replay always gives what a live run would give. The
number of misses is reported, so a run that should be pure replay shows it.

``python -m evaluation replay --seeds 0 1 2 --out runs/replay-after
--cache runs/replay-cache`` writes ``seedN/tracks.txt``, ``seedN/names.csv``
and ``seedN/score.json`` per sequence, and ``summary.json``.
``--compare runs/replay-before`` then lists every sequence whose rows differ.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from pipeline.detect_at import detect_at

log = logging.getLogger(__name__)

#: The broadcast preset with clothing (:mod:`evaluation.clothing`): its shots in this many scenes.
CLOTHING_PRESET = "broadcast-clothing"
CLOTHING_SCENES = 3

#: Simulator sequences replayed by default: the report's size and length.
DEFAULT_FRAMES = 2000
DEFAULT_SIZE = (1280, 720)


def frame_key(frame: np.ndarray) -> str:
    """A content key of a frame (blake2b of its pixels and shape)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(frame.shape, np.int64).tobytes())
    h.update(np.ascontiguousarray(frame).tobytes())
    return h.hexdigest()


def _row_key(frame_id: str, xyxy: np.ndarray, landmarks: Optional[np.ndarray]) -> str:
    parts = [frame_id, np.round(np.asarray(xyxy, np.float64), 2).tobytes().hex()]
    if landmarks is not None:
        parts.append(np.round(np.asarray(landmarks, np.float64), 2).tobytes().hex())
    return "|".join(parts)


class ModelCache:
    """Recorded detector outputs and embeddings of one sequence, in one ``.npz``.

    Parameters
    ----------
    path : path
        The cache file (created by :meth:`save`).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.detections: Dict[str, dict] = {}
        self.embeddings: Dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0
        self.changed = False
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        with np.load(self.path, allow_pickle=False) as z:
            keys, starts = list(z["det_keys"]), z["det_starts"]
            for i, key in enumerate(keys):
                a, b = int(starts[i]), int(starts[i + 1])
                self.detections[str(key)] = {
                    "xyxy": z["det_xyxy"][a:b], "confidence": z["det_conf"][a:b],
                    "landmarks": z["det_landmarks"][a:b] if bool(z["det_has_landmarks"][i]) else None,
                    "det_index": z["det_index"][a:b]}
            for key, vec in zip(z["emb_keys"], z["emb"]):
                self.embeddings[str(key)] = vec

    def save(self) -> None:
        """Write the cache (atomically) if anything was added."""
        if not self.changed:
            return
        keys = list(self.detections)
        rows = [self.detections[k] for k in keys]
        starts = np.cumsum([0] + [len(r["xyxy"]) for r in rows])
        cat = lambda name, shape, dtype: (np.concatenate([np.asarray(r[name], dtype).reshape((-1,) + shape)
                                                          for r in rows]) if rows else np.zeros((0,) + shape, dtype))
        lm = [r["landmarks"] if r["landmarks"] is not None else np.zeros((len(r["xyxy"]), 5, 2), np.float32)
              for r in rows]
        emb_keys = list(self.embeddings)
        dim = len(next(iter(self.embeddings.values()))) if emb_keys else 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, det_keys=np.asarray(keys, dtype=str), det_starts=starts,
                 det_xyxy=cat("xyxy", (4,), np.float32), det_conf=cat("confidence", (), np.float32),
                 det_landmarks=np.concatenate(lm).astype(np.float32) if lm else np.zeros((0, 5, 2), np.float32),
                 det_has_landmarks=np.asarray([r["landmarks"] is not None for r in rows], bool),
                 det_index=cat("det_index", (), np.int64),
                 emb_keys=np.asarray(emb_keys, dtype=str),
                 emb=np.stack([self.embeddings[k] for k in emb_keys]).astype(np.float32) if emb_keys
                 else np.zeros((0, dim), np.float32))
        tmp.replace(self.path)
        self.changed = False


def _row(det) -> dict:
    """A detector output as the cache keeps it."""
    return {"xyxy": det.xyxy, "confidence": det.confidence, "landmarks": det.landmarks, "det_index": det.det_index}


def _detections(row: dict):
    """A cached row as the detector returned it."""
    from tracker.detections import Detections

    return Detections(row["xyxy"], row["confidence"], landmarks=row["landmarks"], det_index=row["det_index"])


class CachedDetector:
    """A detector that answers from a :class:`ModelCache` and records what it computes."""

    def __init__(self, detector, cache: ModelCache) -> None:
        self._detector = detector
        self._cache = cache
        self.last_key: Optional[str] = None
        # Outputs depend on the detector's settings and form too: a cache of one input size, or of
        # the .pt in torch, never answers another.
        settings = [getattr(detector, k, None)
                    for k in ("input_size", "confidence_threshold", "nms_iou_threshold", "cpu_format")]
        self._settings = "" if settings == [640, 0.5, 0.45, None] else "|" + ",".join(map(str, settings))

    def __getattr__(self, name):
        return getattr(self._detector, name)

    def detect(self, frame: np.ndarray, input_size: Optional[int] = None):
        own = input_size is None or int(input_size) == getattr(self._detector, "input_size", None)
        key = self.last_key = frame_key(frame) + self._settings + ("" if own else f"|full{int(input_size)}")
        row = self._cache.detections.get(key)
        if row is None:
            self._cache.misses += 1
            det = detect_at(self._detector, frame, input_size)
            self._cache.detections[key] = _row(det)
            self._cache.changed = True
            return det
        self._cache.hits += 1
        return _detections(row)

    def detect_crops(self, crops, input_size: int):
        """:meth:`models.detector.FaceDetector.detect_crops`, each crop answered from the cache when it can be.

        A crop's key is its content, the input size and the detector's settings;
        the crops that miss are detected together in one call.
        """
        keys = [f"{frame_key(c)}|crop{int(input_size)}{self._settings}" for c in crops]
        missing = [i for i, k in enumerate(keys) if k not in self._cache.detections]
        if missing:
            self._cache.misses += 1
            found = self._detector.detect_crops([crops[i] for i in missing], input_size)
            for i, det in zip(missing, found):
                self._cache.detections[keys[i]] = _row(det)
            self._cache.changed = True
        else:
            self._cache.hits += 1
        return [_detections(self._cache.detections[k]) for k in keys]


class CachedEmbedder:
    """An embedder that answers each face from a :class:`ModelCache` and embeds only the misses."""

    def __init__(self, embedder, cache: ModelCache) -> None:
        self._embedder = embedder
        self._cache = cache

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def embed(self, frame: np.ndarray, detections) -> np.ndarray:
        if len(detections) == 0:
            return np.asarray(self._embedder.embed(frame, detections), np.float32)
        fid = frame_key(frame)
        lms = detections.landmarks
        keys = [_row_key(fid, detections.xyxy[i], None if lms is None else lms[i]) for i in range(len(detections))]
        missing = [i for i, k in enumerate(keys) if k not in self._cache.embeddings]
        if missing:
            self._cache.misses += 1
            vectors = np.asarray(self._embedder.embed(frame, detections[np.asarray(missing)]), np.float32)
            for i, vec in zip(missing, vectors):
                self._cache.embeddings[keys[i]] = vec
            self._cache.changed = True
        else:
            self._cache.hits += 1
        return np.stack([self._cache.embeddings[k] for k in keys])


def _scores(truth, tracks) -> dict:
    from . import metrics

    r = metrics.score(truth, tracks)
    n = r["naming"]
    return {"idf1": r["idf1"], "id_switches": r["id_switches"], "gt_boxes": r["gt_boxes"],
            "wrong_name_rate": n["wrong_name_rate"], "named_boxes": n["named_boxes"],
            "named_after_warmup": n["named_after_warmup"], "by_height": r.get("naming_by_height")}


def replay_video(video: Path, truth, parts, cache_path: Path, out_dir: Path, *, two_pass: bool = False) -> dict:
    """Run the configured pipeline over ``video`` with cached models; score against ``truth``.

    Writes ``tracks.txt``, ``names.csv`` and ``score.json`` under ``out_dir``.
    ``two_pass``: also score two-pass mode (scene linking on; :mod:`pipeline.analysis`):
    ``analysis.json`` and ``two_pass/tracks.txt``, ``names.csv``; the score's ``two_pass`` entry.
    """
    from . import bench

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = ModelCache(cache_path)
    detector, embedder = CachedDetector(parts.detector, cache), CachedEmbedder(parts.embedder, cache)
    cached_parts = replace(parts, detector=detector, embedder=embedder)
    try:
        run = bench.timed_run(bench.make_pipeline(cached_parts), video, warmup_frames=0,
                              tracks_path=out_dir / "tracks.txt", names_path=out_dir / "names.csv")
    finally:
        cache.save()
    result = {"video": str(video), "frames": run["frames"], "detection_frames": run["detection_frames"],
              "faces_embedded": run["faces_embedded"], "cache_hits": cache.hits, "cache_misses": cache.misses,
              "seconds": run["seconds"], "score": _scores(truth, run["tracks"]) if truth is not None else None}
    if two_pass:
        tracks = _two_pass(video, cached_parts, cache, out_dir)
        result["two_pass"] = _scores(truth, tracks) if truth is not None else None
    (out_dir / "score.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def _two_pass(video: Path, parts, cache: ModelCache, out_dir: Path):
    """Pass 1 with scene linking into ``out_dir/analysis.json``, pass 2 rendered from it; its rows."""
    from pipeline.analysis import AnalysisRecorder, AnalysisReplay, take_corroboration
    from pipeline.loop import run
    from pipeline.sources import open_source

    from . import bench

    config = {**parts.config, "link_scenes": True}
    linked = replace(parts, config=config)
    source = open_source(str(video))
    pipeline = bench.make_pipeline(linked)
    recorder = AnalysisRecorder(out_dir / "analysis.json", source=str(video), width=source.width,
                                height=source.height, fps=source.fps, **take_corroboration(pipeline.identifier))
    try:
        run(pipeline, source, [], tracks_writer=recorder)
    finally:
        cache.save()
    folder = out_dir / "two_pass"
    folder.mkdir(exist_ok=True)
    rendered = bench.timed_run(AnalysisReplay.load(out_dir / "analysis.json"), video, warmup_frames=0,
                               tracks_path=folder / "tracks.txt", names_path=folder / "names.csv")
    return rendered["tracks"]


def _sequence(folder: Path, seed: int, frames: int, size, preset: Optional[str], shared: Path, people: list) -> None:
    """Render simulator sequence ``seed`` into ``folder`` (the report's parameters, or the ``preset``'s)."""
    from . import broadcast, synth
    from .sprites import yolo_detect_fn

    detect = yolo_detect_fn(shared / "models" / "yolov8n-face.pt")
    gallery = shared / "data" / "gallery"
    photos = [shared / "data" / "probe", gallery]
    if not people:
        people.extend(synth.people_from_folders(photos, detect, gallery_dir=gallery))
    cast = list(people)
    kw = {}
    if preset in ("broadcast", CLOTHING_PRESET):
        crowd = [shared / "data" / c for c in broadcast.DEFAULT_CROWD_PHOTOS if (shared / "data" / c).exists()]
        cast += broadcast.crowd_people(crowd, detect)
        kw = {"codec": "h264"}
    sc = synth.plan_sequence(cast, seed=seed, num_frames=frames, width=size[0], height=size[1],
                             **({"preset": "broadcast" if preset == CLOTHING_PRESET else preset} if preset else {}))
    if preset == CLOTHING_PRESET:
        from .clothing import dress

        sc, kw["dress"] = dress(sc, cast, scenes=CLOTHING_SCENES, seed=seed)
    synth.write_sequence(folder, sc, cast, progress=True, extra_info={"photos": [str(p) for p in photos]}, **kw)


def replay(shared: Path, out: Path, cache_dir: Path, *, seeds: Sequence[int] = (), frames: int = DEFAULT_FRAMES,
           size=DEFAULT_SIZE, clips: Sequence[str] = ("short_hamilton_clip",), config_path: Optional[Path] = None,
           preset: Optional[str] = None, two_pass: bool = False, folders: Sequence[Path] = ()) -> dict:
    """Replay simulator ``seeds`` (of the ``preset``, e.g. ``"broadcast"``), hand-labelled real ``clips`` and
    sequence ``folders`` in the simulator's layout (a talking-head composite of :mod:`evaluation.composite`,
    a degraded copy of a sequence); write ``out/summary.json``.

    A folder is named against its own ``gallery/`` (a composite's speakers), when
    it has one, together with the shared gallery's people (:func:`folder_gallery`),
    so it is scored open-set.

    Sequences are rendered into ``cache_dir/seedN-...`` on first use (the report's
    parameters), and each one's model cache is ``cache_dir/<name>.npz``.
    """
    from . import bench
    from . import gt as gtio
    from .report import LABELS_DIR

    shared, out, cache_dir = Path(shared), Path(out), Path(cache_dir)
    detector_w = shared / "models" / "yolov8n-face.pt"
    embedder_w = shared / "models" / "edgeface_xs.onnx"
    gallery = shared / "data" / "gallery"
    parts = bench.build_parts(detector_w, embedder_w, gallery, device="cpu",
                              config=bench.load_settings(config_path), work_dir=cache_dir)
    people: list = []
    summary = {}
    for seed in seeds:
        folder = cache_dir / (f"seed{seed}-{frames}-{size[0]}x{size[1]}" + (f"-{preset}" if preset else ""))
        if not (folder / gtio.GT_FILE).exists():
            _sequence(folder, seed, frames, size, preset, shared, people)
        truth = gtio.load_ground_truth(folder)
        name = f"seed{seed}" + (f"-{preset}" if preset else "")
        summary[name] = replay_video(folder / "video.mp4", truth, parts, cache_dir / f"{folder.name}.npz", out / name,
                                     two_pass=two_pass)
        log.info("%s: %s", name, summary[name]["score"])
    for clip in clips:
        labels = LABELS_DIR / f"{clip}.csv"
        video = shared / "data" / "video" / f"{clip}.mp4"
        if not (labels.exists() and video.exists()):
            log.warning("skipping %s: %s or %s is missing", clip, labels, video)
            continue
        truth = gtio.read_sparse_labels(labels, gallery_dir=gallery)
        summary[clip] = replay_video(video, truth, parts, cache_dir / f"{clip}.npz", out / clip, two_pass=two_pass)
        log.info("%s: %s", clip, summary[clip]["score"])
    for folder in folders:
        folder = Path(folder)
        index = _gallery_index(parts, folder_gallery(folder, gallery, cache_dir), cache_dir)
        name = f"folder-{folder.name}"
        summary[name] = replay_video(folder / "video.mp4", gtio.load_ground_truth(folder),
                                     replace(parts, index=index), cache_dir / f"{name}.npz", out / name,
                                     two_pass=two_pass)
        log.info("%s: %s", name, summary[name]["score"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def folder_gallery(folder: Path, shared_gallery: Path, cache_dir: Path) -> Path:
    """A photo folder of a sequence's own people (``folder/gallery``, if any) and the shared gallery's.

    Built of symbolic links under ``cache_dir``; a person in both is an error.
    """
    merged = Path(cache_dir) / f"gallery-{Path(folder).name}"
    merged.mkdir(parents=True, exist_ok=True)
    own = Path(folder) / "gallery"
    sources = [p for p in sorted(own.iterdir()) if p.is_dir()] if own.is_dir() else []
    sources += [p for p in sorted(Path(shared_gallery).iterdir()) if p.is_dir()]
    names = [p.name for p in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"{folder}: a speaker has the name of a person of {shared_gallery}")
    for person in sources:
        link = merged / person.name
        if not link.exists():
            link.symlink_to(person.resolve(), target_is_directory=True)
    return merged


def _gallery_index(parts, photos: Path, cache_dir: Path):
    from facetrack.build import build_index, open_gallery

    db = Path(cache_dir) / f"{photos.name}-{parts.embedder.identity.name}.db"
    store, _ = open_gallery(photos, parts.detector, parts.embedder, parts.config, db_path=db, progress=False)
    with store:
        return build_index(store, parts.config)


def compare(before: Path, after: Path) -> Dict[str, str]:
    """For each sequence in both folders: ``"same"`` or what differs (rows, ids, boxes, names)."""
    from . import gt as gtio

    out = {}
    for folder in sorted(p for p in Path(before).iterdir() if (p / "tracks.txt").exists()):
        other = Path(after) / folder.name
        if not (other / "tracks.txt").exists():
            out[folder.name] = "missing in the second folder"
            continue
        a = gtio.attach_names(gtio.read_mot(folder / "tracks.txt"), names_file=folder / "names.csv")
        b = gtio.attach_names(gtio.read_mot(other / "tracks.txt"), names_file=other / "names.csv")
        if len(a) != len(b) or not np.array_equal(a.frame, b.frame):
            out[folder.name] = f"rows differ: {len(a)} vs {len(b)}"
        elif not np.array_equal(a.ids, b.ids):
            out[folder.name] = f"ids differ on {int((a.ids != b.ids).sum())} rows"
        elif not np.allclose(a.tlwh, b.tlwh, atol=0.01):
            out[folder.name] = f"boxes differ on {int((~np.isclose(a.tlwh, b.tlwh, atol=0.01)).any(1).sum())} rows"
        elif list(a.names or []) != list(b.names or []):
            out[folder.name] = f"names differ on {sum(x != y for x, y in zip(a.names, b.names))} rows"
        else:
            out[folder.name] = "same"
    return out
