"""The composition layer: the one package that knows every part.

Above ``tracker``, ``models``, ``gallery`` and ``pipeline``; none of them
imports it. Nothing heavy is imported here, so ``import facetrack`` stays cheap.

- :mod:`facetrack.api` -- the Python API: ``from facetrack import FaceTracker`` (imported when first used).
- :mod:`facetrack.config` -- the strict YAML loader (the application edge).
- :mod:`facetrack.build` -- every part built from a configuration dict.
- :mod:`facetrack.demo_cli` -- ``python demo.py``: sources through the pipeline to sinks.
- :mod:`facetrack.gallery_cli` -- ``python -m gallery``: enroll, list, rename, remove, identify, calibrate.
- :mod:`facetrack.text` -- names and paths made safe to print (control characters escaped).
- :mod:`facetrack.bench` -- ``python -m facetrack.bench``: tuned scheduling against every frame.
- :mod:`facetrack.identify` -- naming many photos in one call, as a table, CSV or JSON.
"""

#: Names of :mod:`facetrack.api` importable from the package (the heavy modules load on first use).
__all__ = ["FaceTracker", "TrackedFrame"]


def __getattr__(name: str):
    if name in __all__:
        from facetrack import api

        return getattr(api, name)
    raise AttributeError(f"module 'facetrack' has no attribute {name!r}")

