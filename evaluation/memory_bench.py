"""Memory over a long run: RSS of the real pipeline over a file played in a loop, at checkpoints.

``python -m facetrack.bench memory VIDEO --frames 100000 --loop`` runs the
configured pipeline (detector, embedder, tracker, gallery identifier, overlay
and an mp4 file sink, through :func:`pipeline.loop.run`) over ``VIDEO``
restarted at its end (:class:`LoopedSource`; each restart is a discontinuity,
so the pipeline treats it as a shot cut), and records the resident set size
of the process at the reference frame (5,000 by default), every ``every``
frames and at the end, with the sizes of the long-lived structures (tracks,
lost buffer, appearance samples, identifier evidence, ended Unknowns, open
appearances, per-track policy state). Each checkpoint is appended to a JSON
lines log as it is taken, so a run stopped early (``SIGTERM``, Ctrl-C: the
run loop stops cleanly) still has its figures.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from pipeline.source_base import Frame, Source

from .bench import current_rss_bytes

log = logging.getLogger(__name__)


class LoopedSource(Source):
    """A video file read again from its start each time it ends, up to ``loops`` times (None: without end).

    Frames are numbered on (``index`` and ``timestamp`` keep increasing over
    the restarts) and the first frame of each restart has ``discontinuity=True``.

    Parameters
    ----------
    path : str or Path
        A video file (opened with :func:`pipeline.sources.open_source`).
    loops : int or None
        Plays of the file (>= 1), None for no limit.
    source_options : dict
        Keywords of ``open_source`` (the configuration's ``source`` section).
    """

    def __init__(self, path, *, loops: Optional[int] = None, source_options: Optional[dict] = None) -> None:
        from pipeline.sources import open_source

        super().__init__(f"{path} (looped)")
        if loops is not None and int(loops) < 1:
            raise ValueError(f"loops must be >= 1 or None, got {loops!r}")
        self._open = lambda: open_source(str(path), **(source_options or {}))
        self._loops = loops
        self._plays = 1
        self._inner = self._open()
        self.fps, self.width, self.height = self._inner.fps, self._inner.width, self._inner.height
        self._count = 0
        self._offset = 0.0
        self._last_timestamp = 0.0

    def read(self) -> Optional[Frame]:
        frame = self._inner.read()
        restarted = False
        if frame is None:
            self._inner.close()
            if self._loops is not None and self._plays >= self._loops:
                return None
            self._plays += 1
            self._offset = self._last_timestamp + 1.0 / self.fps
            self._inner = self._open()
            frame = self._inner.read()
            restarted = True
            if frame is None:
                return None
        self._last_timestamp = self._offset + frame.timestamp
        out = Frame(frame.image, self._count, self._last_timestamp, restarted or frame.discontinuity,
                    frame.decode_seconds)
        self._count += 1
        return out

    def close(self) -> None:
        self._inner.close()


def structure_sizes(pipeline) -> Dict[str, int]:
    """Sizes of the pipeline's long-lived containers (a diagnostic: what would grow without bound)."""
    probes = {
        "tracks": ("tracker", "tracks"),
        "lost": ("tracker", "lost", "_tracks"),
        "appearance_samples": ("tracker", "metric", "samples"),
        "young_features": ("tracker", "_young_features"),
        "identifier_tracks": ("identifier", "_tracks"),
        "ended_unknowns": ("identifier", "_ended_unknowns"),
        "shown_boxes": ("shown", "_by_id"),
        "reuse": ("reuse", "_by_id"),
    }
    out = {}
    for name, chain in probes.items():
        obj = pipeline
        for attr in chain:
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if obj is not None:
            out[name] = len(obj)
    return out


@dataclass
class Checkpoint:
    """One measurement: ``frame`` (frames processed), ``seconds`` since the start, ``rss_mb``, container sizes."""

    frame: int
    seconds: float
    rss_mb: float
    sizes: Dict[str, int] = field(default_factory=dict)


class MemoryProbe:
    """``on_frame`` callback of the run loop: a :class:`Checkpoint` at ``reference``, every ``every`` frames.

    Parameters
    ----------
    pipeline : Pipeline
        Whose structures are measured.
    reference : int
        The frame whose RSS the others are compared with (>= 1).
    every : int
        Frames between checkpoints (>= 1).
    log_path : Path or None
        Each checkpoint is appended here as a JSON line when taken.
    extra : callable or None
        ``extra() -> dict`` of more sizes (the run loop's own bookkeeping).
    """

    def __init__(self, pipeline, *, reference: int = 5000, every: int = 5000, log_path: Optional[Path] = None,
                 extra=None) -> None:
        if int(reference) < 1 or int(every) < 1:
            raise ValueError(f"reference and every must be >= 1, got {reference!r}, {every!r}")
        self.pipeline, self.reference, self.every = pipeline, int(reference), int(every)
        self.log_path, self.extra = log_path, extra
        self.frames = 0
        self.checkpoints: List[Checkpoint] = []
        self._t0 = time.perf_counter()

    def __call__(self, result) -> None:
        self.frames += 1
        if self.frames == self.reference or self.frames % self.every == 0 or self.frames == 1:
            self.take()

    def take(self) -> Checkpoint:
        """Measure now (also called once more at the end of the run)."""
        sizes = structure_sizes(self.pipeline)
        if self.extra is not None:
            sizes.update(self.extra())
        cp = Checkpoint(self.frames, round(time.perf_counter() - self._t0, 1),
                        round(current_rss_bytes() / 2 ** 20, 1), sizes)
        if self.checkpoints and self.checkpoints[-1].frame == cp.frame:
            self.checkpoints[-1] = cp
        else:
            self.checkpoints.append(cp)
        if self.log_path is not None:
            with open(self.log_path, "a") as fh:
                fh.write(json.dumps(asdict(cp)) + "\n")
        log.info("frame %d: RSS %.1f MiB %s", cp.frame, cp.rss_mb, cp.sizes)
        return cp


def format_memory(checkpoints: List[Checkpoint], reference: int) -> str:
    """The checkpoints as a Markdown table, each RSS also as a ratio to the reference frame's."""
    ref = next((c for c in checkpoints if c.frame == reference), None)
    keys = sorted({k for c in checkpoints for k in c.sizes})
    lines = ["| frame | seconds | RSS MiB | RSS / RSS at frame %d | %s |" % (reference, " | ".join(keys)),
             "|" + "---|" * (4 + len(keys))]
    for c in checkpoints:
        ratio = f"{c.rss_mb / ref.rss_mb:.3f}" if ref is not None and c.frame >= reference else "-"
        lines.append(f"| {c.frame} | {c.seconds:.0f} | {c.rss_mb:.1f} | {ratio} | "
                     + " | ".join(str(c.sizes.get(k, "")) for k in keys) + " |")
    if ref is None:
        lines.append(f"(the run ended before frame {reference}: no ratio)")
    return "\n".join(lines)


def run_memory(video: Path, parts, *, frames: int, loop: bool, reference: int = 5000, every: int = 5000,
               log_path: Optional[Path] = None, work_dir: Path) -> List[Checkpoint]:
    """Run the configured pipeline over ``video`` (looped when ``loop``) for ``frames`` frames; the checkpoints.

    ``parts`` is :class:`evaluation.bench.Parts` (models and the enrolled gallery).
    """
    from pipeline.loop import run
    from pipeline.overlay import Overlay
    from pipeline.sinks import make_output_sink

    from .bench import make_pipeline

    pipeline = make_pipeline(parts)
    source = LoopedSource(video, loops=None if loop else 1, source_options=parts.config.get("source") or {})
    sink = make_output_sink(str(Path(work_dir) / "memory.mp4"), fps=source.fps)
    probe = MemoryProbe(pipeline, reference=reference, every=every, log_path=log_path)
    summary = run(pipeline, source, [sink], overlay=Overlay(**(parts.config.get("overlay") or {})),
                  max_frames=frames, on_frame=probe)
    probe.take()
    log.info("memory run: %d frames, stopped by %s", summary.frames, summary.stop_reason)
    return probe.checkpoints
