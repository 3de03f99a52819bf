"""The local web page of ``facetrack serve``: People, Unknowns, Events and Live over a REST API.

:func:`web.app.create_app` builds the FastAPI application from parts the
composition layer (:mod:`facetrack.serve`) has built; nothing here reads
YAML, loads models or listens on a port by itself. No library package
imports this one.
"""
