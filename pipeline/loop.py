"""The run loop: a source through a pipeline to sinks and writers, with progress, FPS and a clean stop.

:func:`run` reads frames until the source ends, ``max_frames``, a sink asks
to stop (window closed), Ctrl-C, ``SIGTERM`` or ``SIGHUP``, or an output
cannot be written. The first signal finishes the current frame; a second
Ctrl-C aborts. Whatever ends it, the sinks, the writers and the source are
closed, and the appearances still open are written. A write error of any
output (:class:`OutputError`, which :class:`pipeline.sinks.SinkError` is)
ends the run at once; the other outputs are still closed and flushed, and
the summary says which output failed and why (``RunSummary.output_errors``).

With ``overlap_output`` the overlay, the blur and the sinks of
frame N run in an output thread while the pipeline processes frame N+1;
the loop waits for frame N's output before it counts frame N+1 (its
recorder, summary, tracks and events), so every output is the sequential
run's, frame for frame, and an error of the output thread is raised in the
loop as it would have been sequentially. A sink that must stay in the main
thread (``Sink.main_thread_only``: the window) turns the overlap off.

A ``recorder`` (:class:`gallery.unknown_recorder.UnknownRecorder`, which
remembers the run's Unknown people) gets ``observe(raw_image, result)`` on
every frame before anything is drawn on it, and ``finish()`` when the run ends.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, Sequence

from pipeline.events import AppearanceLog, OutputError, close_all
from pipeline.results import FrameResult, RunSummary

logger = logging.getLogger(__name__)

#: The FPS readout is the rate over this many most recent frames.
FPS_WINDOW_FRAMES = 30


#: The signals that stop a run cleanly (finish the frame, close the outputs).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class _StopFlag:
    """The first stop signal asks the loop to stop after the current frame; a second Ctrl-C raises.

    ``signum`` is the first signal received (None when none was).
    """

    def __init__(self, source) -> None:
        self.set = False
        self.signum: Optional[int] = None
        self._source = source
        self._previous: dict = {}

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.set:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return                          # a repeated SIGTERM/SIGHUP: already stopping
        self.set = True
        self.signum = signum
        name = signal.Signals(signum).name
        logger.warning("%s: stopping after this frame%s", name,
                       " (Ctrl-C again to abort)" if signum == signal.SIGINT else "")
        interrupt = getattr(self._source, "interrupt", None)
        if interrupt is not None:
            interrupt()

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}


class _FpsMeter:
    """Frames per second over the last :data:`FPS_WINDOW_FRAMES` frames (detection and
    prediction frames alternate, so one frame's rate means nothing)."""

    def __init__(self) -> None:
        self._ticks: deque = deque(maxlen=FPS_WINDOW_FRAMES)
        self.fps: Optional[float] = None

    def tick(self) -> Optional[float]:
        self._ticks.append(time.perf_counter())
        if len(self._ticks) >= 2 and self._ticks[-1] > self._ticks[0]:
            self.fps = (len(self._ticks) - 1) / (self._ticks[-1] - self._ticks[0])
        return self.fps


class _Run:
    """The state of one :func:`run`: what each frame adds to the summary and the outputs."""

    def __init__(self, pipeline, source, sinks, overlay, event_writer, tracks_writer, on_frame,
                 recorder=None, blur=None, overlap_output: bool = False) -> None:
        self.pipeline, self.source, self.sinks, self.overlay = pipeline, source, list(sinks), overlay
        self.blur = blur
        self.event_writer, self.tracks_writer, self.on_frame = event_writer, tracks_writer, on_frame
        self.recorder = recorder
        self.summary = RunSummary()
        self.log = AppearanceLog()
        self.seen_ids: set = set()
        self.fps = _FpsMeter()
        #: Per sink: a person watches it live (``Sink.live_view``, optional): it gets the FPS readout.
        self.live_view = [bool(getattr(sink, "live_view", False)) for sink in self.sinks]
        main_only = [type(s).__name__ for s in self.sinks if getattr(s, "main_thread_only", False)]
        if overlap_output and main_only:
            logger.info("output overlap off: %s must write from the main thread", ", ".join(main_only))
        #: The output thread (overlay, blur, sinks) when the output overlaps the next frame's processing.
        self.output = (ThreadPoolExecutor(1, thread_name_prefix="output")
                       if overlap_output and self.sinks and not main_only else None)
        self._pending = None                    # (future, result) of the frame the output thread has

    def step(self, frame) -> bool:
        """Process one source frame; False when a sink asked to stop (on this frame or, overlapped, the last)."""
        stage = self.summary.stage_seconds
        stage["decode"] += frame.decode_seconds
        result = self.pipeline.process(frame.image, frame.index, frame.timestamp,
                                       scene_cut=True if frame.discontinuity else None)
        for k, v in result.timings.items():
            stage[k] = stage.get(k, 0.0) + v
        if not self.finish_output():           # the previous frame's output first: outputs stay in order
            return False
        if self.recorder is not None:          # before drawing: the crops are of the raw frame
            self.recorder.observe(frame.image, result)
        try:
            self._count(result, frame.image)
        except OutputError:
            # A writer failed on this frame: the video still gets it, so every output ends on the same frame.
            if self.sinks:
                self._draw_and_write(frame.image, result, self.fps.tick())
            raise
        fps = self.fps.tick()
        if self.output is not None:
            self._pending = (self.output.submit(self._draw_and_write, frame.image, result, fps), result)
            return True
        if self.sinks and not self._draw_and_write(frame.image, result, fps):
            return False
        if self.on_frame is not None:
            self.on_frame(result)
        return True

    def finish_output(self) -> bool:
        """Wait for the output thread's frame (raising its error); False when a sink asked to stop.

        ``on_frame`` gets that frame's result once its sinks have it (as in the sequential run).
        """
        if self._pending is None:
            return True
        (future, result), self._pending = self._pending, None
        t0 = time.perf_counter()
        try:
            keep_going = future.result()
        finally:
            self.summary.stage_seconds["output_wait"] += time.perf_counter() - t0
        if not keep_going:
            return False
        if self.on_frame is not None:
            self.on_frame(result)
        return True

    def _count(self, result: FrameResult, image) -> None:
        s = self.summary
        s.frames += 1
        s.detection_frames += int(result.detected)
        s.faces_embedded += result.num_embedded
        self.seen_ids.update(int(t) for t in result.track_ids)
        step = self.log.step(result)
        if self.tracks_writer is not None:
            self.tracks_writer.write(result)
        if self.event_writer is not None:
            self.event_writer.record(result, image, step)      # the image before the overlay draws on it

    def _draw_and_write(self, image, result: FrameResult, fps: Optional[float]) -> bool:
        stage = self.summary.stage_seconds
        t0 = time.perf_counter()
        live = image
        if self.blur is not None:
            self.blur.apply(image, result)        # before the overlay: labels stay readable, faces do not
        if self.overlay is not None:
            self.overlay.annotate(image, result)
            if self.overlay.burn_fps:                      # the readout in every output
                self.overlay.draw_fps(image, fps)
            elif any(self.live_view):                      # only in the live window
                live = self.overlay.draw_fps(image.copy(), fps)
        stage["draw"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        keep_going = True
        for sink, watched in zip(self.sinks, self.live_view):
            keep_going = sink.write(live if watched else image) is not False and keep_going
        stage["encode"] += time.perf_counter() - t0
        return keep_going

    def _stop_output(self) -> list:
        """After an abort: let the output thread finish its frame; its error, if any, in a list."""
        errors = []
        if self._pending is not None:
            (future, _), self._pending = self._pending, None
            try:
                future.result()
            except BaseException as exc:  # noqa: BLE001 - reported by close() like a sink's error
                errors.append(exc)
        if self.output is not None:
            self.output.shutdown(wait=True)
        return errors

    def close(self) -> None:
        """Close sinks, writers and source, each even when another fails; the errors go to the summary."""
        s = self.summary
        errors = self._stop_output()
        errors.extend(close_all(self.sinks))
        for sink in self.sinks:
            s.stage_seconds["encode_busy"] += float(getattr(sink, "busy_seconds", 0.0))
        finished = self.log.finish()
        if self.recorder is not None:
            self.recorder.finish()
        if self.event_writer is not None:
            try:
                self.event_writer.write(finished)
            except OutputError as exc:
                errors.append(exc)
            errors.extend(close_all([self.event_writer]))
        if self.tracks_writer is not None:
            errors.extend(close_all([self.tracks_writer]))
        self.source.close()
        s.names_seen = sorted(self.log.names_seen)
        s.appearances = self.log.appearances
        s.track_ids = len(self.seen_ids)
        s.dropped_frames = int(getattr(self.source, "dropped_frames", 0))
        s.reconnects = int(getattr(self.source, "reconnects", 0))
        for error in errors:
            if not isinstance(error, OutputError):
                raise error
            if str(error) not in s.output_errors:
                s.output_errors.append(str(error))
        s.source_warning = str(getattr(self.source, "ended_early", "") or "")


def run(pipeline, source, sinks: Sequence = (), *, overlay=None, event_writer=None, tracks_writer=None,
        max_frames: Optional[int] = None, progress: bool = False,
        on_frame: Optional[Callable[[FrameResult], None]] = None, recorder=None, blur=None,
        overlap_output: bool = False) -> RunSummary:
    """Read ``source`` to the end (or ``max_frames``, or Ctrl-C) through ``pipeline``.

    Parameters
    ----------
    pipeline, source : Pipeline, Source
        Anything with ``process(image, index, timestamp, scene_cut=...) -> FrameResult``; a source from
        :func:`pipeline.sources.open_source`.
    sinks : sequence of Sink
        Each gets the annotated frame; one returning False stops the run.
    overlay, blur : Overlay or None, pipeline.blur.FaceBlur or None
        Draws tracks and the FPS readout; blurs faces before it (both only when there are sinks).
    event_writer, tracks_writer : EventWriter or None, TracksWriter or None
        ``record``s every frame (appearances started and ended, the undrawn image), ``write``s the open ones at the
        end; receives every :class:`FrameResult`.
    max_frames, progress : int or None, bool
        Stop after this many frames (>= 1); show a tqdm progress bar (with a total for files).
    on_frame, recorder : callable or None
        ``on_frame(result)`` after the sinks; ``recorder``: see the module's docstring.
    overlap_output : bool
        Draw and write frame N in a thread while frame N+1 is processed (the same outputs; module docstring).

    Returns
    -------
    RunSummary
        The source, sinks and writers are closed when it returns, also after Ctrl-C, SIGTERM, SIGHUP or an error.
        A write error of an output does not raise: it stops the run with ``stop_reason`` ``"write error"`` and is
        listed in ``output_errors`` (each a sentence naming the output and the cause); ``stop_signal`` is the
        signal that stopped the run (0 when none did).
    """
    if max_frames is not None and int(max_frames) < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames!r}")
    state = _Run(pipeline, source, sinks, overlay, event_writer, tracks_writer, on_frame, recorder, blur,
                 overlap_output=bool(overlap_output))
    summary = state.summary
    bar = _progress_bar(source, max_frames) if progress else None
    start = time.perf_counter()
    try:
        with _StopFlag(source) as stop:
            try:
                summary.stop_reason = _loop(state, source, stop, max_frames, bar)
            except OutputError as exc:
                summary.stop_reason = "write error"
                summary.output_errors.append(str(exc))
            if stop.set:
                summary.stop_reason = "interrupted"
                summary.stop_signal = int(stop.signum or 0)
    except KeyboardInterrupt:
        summary.stop_reason = "interrupted"
        summary.stop_signal = int(signal.SIGINT)
    finally:
        summary.interrupted = summary.stop_reason in ("interrupted", "window closed")
        summary.seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()
        state.close()
    return summary


def _loop(state: _Run, source, stop: _StopFlag, max_frames: Optional[int], bar) -> str:
    """Read and process frames until something ends the run; returns why."""
    while not stop.set:
        if max_frames is not None and state.summary.frames >= max_frames:
            return _last_output(state, "max_frames")
        t0 = time.perf_counter()
        frame = source.read()
        state.summary.stage_seconds["wait"] += time.perf_counter() - t0
        if frame is None:
            return _last_output(state, "interrupted" if stop.set else "end of source")
        if not state.step(frame):
            return "window closed"
        if bar is not None:
            bar.update(1)
    return _last_output(state, "interrupted")


def _last_output(state: _Run, reason: str) -> str:
    """Wait for the last frame's output; ``reason``, or ``window closed`` when its sink asked to stop."""
    return reason if state.finish_output() else "window closed"


def _progress_bar(source, max_frames: Optional[int]):
    from tqdm import tqdm

    total = source.frame_count if not getattr(source, "is_live", False) else None
    if max_frames is not None:
        total = min(total, int(max_frames)) if total else int(max_frames)
    return tqdm(total=total, unit="frame", desc=str(getattr(source, "description", "source")), dynamic_ncols=True)
