"""Live latency and drops: a clip served by ffmpeg at its real rate, read as a network stream by the real pipeline.

``python -m facetrack.bench live CLIP --fps 24 30 --seconds 20 --gallery DIR``
re-encodes ``CLIP`` at each frame rate (:func:`encode_at`, H.264 without
B-frames, a key frame a second), serves it on ``127.0.0.1`` with ``ffmpeg
-re -stream_loop -1`` as MPEG-TS over UDP (:class:`LocalStream`), and runs
the configured pipeline on it through :func:`pipeline.loop.run` as ``demo.py``
would (a :class:`pipeline.live_source.LiveSource` keeping the newest frame,
overlay, an mp4 file sink paced to the clock), once per output mode
(overlapped and sequential).

Per run (:func:`live_figures`):

* latency: from a frame's capture (when the source's reader thread got it
  from the decoder, ``LiveSource.clock_origin + frame.timestamp``) to its
  overlay being drawn and handed to every sink (:class:`WrittenClock`, the
  last sink), p50, p95 and p99 in milliseconds;
* drop rate: frames the source captured that the pipeline never processed
  (replaced by a newer frame), over all frames captured;
* processed FPS: frames processed over the run's wall-clock time.
"""
from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

log = logging.getLogger(__name__)


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("the live bench needs ffmpeg on PATH (apt-get install ffmpeg)")
    return exe


def encode_at(clip: Path, fps: float, out: Path) -> Path:
    """``clip`` re-encoded at ``fps`` (H.264, no B-frames, a key frame a second, no audio) as ``out``."""
    cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip), "-vf", f"fps={fps:g}", "-an",
           "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0", "-g", str(int(round(fps))),
           str(out)]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return out


class LocalStream:
    """``ffmpeg -re -stream_loop -1 -i CLIP -c copy -f mpegts udp://127.0.0.1:PORT``: a live stream, while open.

    Parameters
    ----------
    clip : Path
        The video served, looped without end at its own frame rate.
    port : int or None
        The UDP port on 127.0.0.1 (None: a free one).
    """

    def __init__(self, clip: Path, port: Optional[int] = None) -> None:
        self.port = int(port) if port is not None else free_udp_port()
        self.url = f"udp://127.0.0.1:{self.port}?overrun_nonfatal=1&fifo_size=50000000"
        cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
               "-i", str(clip), "-c", "copy", "-f", "mpegts", f"udp://127.0.0.1:{self.port}?pkt_size=1316"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stderr is not None:
            self._proc.stderr.close()

    def __enter__(self) -> "LocalStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WrittenClock:
    """A sink that only notes when each frame reached it (``time.monotonic()``); put it last."""

    live_view = False
    main_thread_only = False

    def __init__(self) -> None:
        self.times: List[float] = []

    def write(self, frame_bgr) -> bool:
        self.times.append(time.monotonic())
        return True

    def close(self) -> None:
        pass


def live_figures(capture_times: List[float], written_times: List[float], *, processed: int, dropped: int,
                 seconds: float) -> Dict[str, float]:
    """Latency percentiles (ms), drop rate and processed FPS of one live run.

    Parameters
    ----------
    capture_times, written_times : list of float
        Per processed frame, in order: when it was captured and when its overlay reached the sinks
        (``time.monotonic()``); the shorter list decides how many frames are paired.
    processed, dropped : int
        Frames the pipeline processed, and frames the source captured but replaced before they were read.
    seconds : float
        The run's wall-clock time.
    """
    n = min(len(capture_times), len(written_times))
    if n == 0:
        raise ValueError("no frame was processed: no latency to report")
    latency = 1000.0 * (np.asarray(written_times[:n]) - np.asarray(capture_times[:n]))
    p50, p95, p99 = (float(v) for v in np.percentile(latency, [50, 95, 99]))
    captured = processed + dropped
    return {"frames_captured": captured, "frames_processed": processed, "frames_dropped": dropped,
            "drop_rate": dropped / captured if captured else 0.0,
            "processed_fps": processed / seconds if seconds > 0 else 0.0,
            "captured_fps": captured / seconds if seconds > 0 else 0.0,
            "latency_ms_p50": p50, "latency_ms_p95": p95, "latency_ms_p99": p99,
            "latency_ms_max": float(latency.max())}


def live_run(pipeline, url: str, *, seconds: float, overlap_output: bool, work_dir: Path, config: dict) -> dict:
    """Run ``pipeline`` on the stream at ``url`` for ``seconds``; :func:`live_figures` plus ``stop_reason``."""
    from pipeline.loop import run
    from pipeline.overlay import Overlay
    from pipeline.sinks import make_output_sink
    from pipeline.sources import open_source

    source = open_source(url, **(config.get("source") or {}))
    clock = WrittenClock()
    video = make_output_sink(str(Path(work_dir) / f"live-{time.monotonic_ns()}.mp4"), fps=source.fps, live=True)
    captured: List[float] = []
    timer = threading.Timer(seconds, source.interrupt)
    timer.start()
    try:
        summary = run(pipeline, source, [video, clock], overlay=Overlay(**(config.get("overlay") or {})),
                      on_frame=lambda r: captured.append(source.clock_origin + r.timestamp),
                      overlap_output=overlap_output)
    finally:
        timer.cancel()
    figures = live_figures(captured, clock.times, processed=summary.frames, dropped=summary.dropped_frames,
                           seconds=summary.seconds)
    figures.update(stop_reason=summary.stop_reason, stream_fps=float(source.fps),
                   size=f"{source.width}x{source.height}", stage_ms=summary.stage_ms())
    return figures


def run_live(clip: Path, parts, *, fps_list, seconds: float, modes=("overlapped", "sequential"),
             work_dir: Path) -> List[dict]:
    """Every stream rate of ``fps_list`` through every output mode of ``modes``; one result per pair.

    ``parts`` is :class:`evaluation.bench.Parts`; each run gets a fresh pipeline (warmed up beforehand).
    """
    from .bench import _warm_up, make_pipeline

    results = []
    for fps in fps_list:
        encoded = encode_at(clip, fps, Path(work_dir) / f"stream-{fps:g}fps.mp4")
        for mode in modes:
            pipeline = make_pipeline(parts)
            _warm_up(pipeline, encoded, 3)
            with LocalStream(encoded) as stream:
                r = live_run(pipeline, stream.url, seconds=seconds, overlap_output=mode == "overlapped",
                             work_dir=work_dir, config=parts.config)
            r.update(fps=fps, mode=mode)
            log.info("%g fps %s: %s", fps, mode, r)
            results.append(r)
    return results


def format_live(results: List[dict]) -> str:
    """The results as a Markdown table."""
    lines = ["| stream | output | seconds | captured | processed | processed FPS | drop rate "
             "| latency p50 ms | p95 ms | p99 ms | max ms |", "|" + "---|" * 11]
    for r in results:
        lines.append(f"| {r['fps']:g} fps {r['size']} | {r['mode']} | {r['frames_captured'] / max(r['captured_fps'], 1e-9):.1f} "
                     f"| {r['frames_captured']} | {r['frames_processed']} | {r['processed_fps']:.1f} "
                     f"| {r['drop_rate']:.3f} | {r['latency_ms_p50']:.0f} | {r['latency_ms_p95']:.0f} "
                     f"| {r['latency_ms_p99']:.0f} | {r['latency_ms_max']:.0f} |")
    return "\n".join(lines)
