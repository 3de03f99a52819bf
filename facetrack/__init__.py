"""The composition layer: the one package that knows every part.

Above ``tracker``, ``models``, ``gallery`` and ``pipeline``; none of them
imports it. Nothing is imported here, so ``import facetrack`` stays cheap.

- :mod:`facetrack.config` -- the strict YAML loader (the application edge).
- :mod:`facetrack.build` -- every part built from a configuration dict.
- :mod:`facetrack.demo_cli` -- ``python demo.py``: sources through the pipeline to sinks.
- :mod:`facetrack.gallery_cli` -- ``python -m gallery``: enroll, list, rename, remove, identify, calibrate.
- :mod:`facetrack.text` -- names and paths made safe to print (control characters escaped).
- :mod:`facetrack.bench` -- ``python -m facetrack.bench``: tuned scheduling against every frame.
"""
