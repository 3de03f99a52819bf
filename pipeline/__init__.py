"""The streaming pipeline: the one place that composes every part.

Modules (nothing is imported here, so ``import pipeline`` stays cheap):

- :mod:`pipeline.sources` -- cameras, files, image folders, network streams (``open_source``).
- :mod:`pipeline.scene_cut` -- colour-histogram shot-cut detection (the tracker's cut mode).
- :mod:`pipeline.runner` -- ``Pipeline.process(frame, frame_index, timestamp) -> FrameResult`` and ``run``.
- :mod:`pipeline.overlay` -- boxes, names and the FPS readout.
- :mod:`pipeline.sinks` -- window, video file, ffmpeg re-stream.
- :mod:`pipeline.events` -- appearances (JSON lines), MOTChallenge track rows and per-frame names.
- :mod:`pipeline.config` -- the strict YAML loader used by ``demo.py`` and the other command lines.
- :mod:`pipeline.build` -- every part built from a configuration dict (models, gallery, pipeline).
- :mod:`pipeline.bench` -- ``python -m pipeline.bench``: tuned scheduling against every-frame.
"""
