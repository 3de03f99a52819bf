"""The streaming pipeline: sources, the per-frame pipeline and its policies, the run loop, outputs.

Modules (nothing is imported here, so ``import pipeline`` stays cheap):

- :mod:`pipeline.protocols` -- what every part must provide (detector, embedder, tracker, identifier, source, sink).
- :mod:`pipeline.sources` -- cameras, files, image folders, network streams (``open_source``); the base
  types in :mod:`pipeline.source_base`, the reconnecting stream reader in :mod:`pipeline.live_source`.
- :mod:`pipeline.scene_cut` -- colour-histogram shot-cut detection (the tracker's cut mode).
- :mod:`pipeline.schedule` -- when the detector runs.
- :mod:`pipeline.reuse` -- which faces are embedded and which borrow their track's embedding.
- :mod:`pipeline.display` -- the boxes shown between detections.
- :mod:`pipeline.naming` -- name-based re-identification of held tracks, inside the tracker's update.
- :mod:`pipeline.runner` -- ``Pipeline.process(frame, frame_index, timestamp) -> FrameResult``.
- :mod:`pipeline.results` -- ``FrameResult`` and ``RunSummary``.
- :mod:`pipeline.loop` -- ``run``: source -> pipeline -> overlay -> sinks and writers, with a clean stop.
- :mod:`pipeline.overlay` -- boxes, names and the FPS readout.
- :mod:`pipeline.sinks` -- window, background writing, ``make_output_sink``; the base types in
  :mod:`pipeline.sink_base`, crash-safe video files in :mod:`pipeline.video_file`, re-streams in
  :mod:`pipeline.restream`.
- :mod:`pipeline.events` -- appearances (JSON lines), MOTChallenge track rows and per-frame names.

Building the parts from a configuration is the composition layer's job (:mod:`facetrack.build`).
"""
