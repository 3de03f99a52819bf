"""Face models: weights, device selection, detector, alignment, embedder, quality.

Heavy dependencies (torch, ultralytics, onnxruntime) live here and are imported
lazily, inside the functions and constructors that need them, so importing
``models`` or any of its modules has no side effects and stays cheap.

Modules
-------
weights    registry of named models, resolution, cache and download
device     ``resolve_device`` and ``onnx_providers``
io         ``read_image``: any path (non-ASCII too), any format OpenCV decodes -> BGR uint8
detector   ``FaceDetector``: YOLO face detector (ultralytics) -> ``Detections``
alignment  5-point similarity alignment to the ArcFace template (pure functions)
embedder   ``FaceEmbedder``: ArcFace-style ONNX recognizer -> (N, D) unit vectors
quality    ``face_quality``: size, sharpness, frontalness and a combined score
bench      detector / embedder timings
"""
