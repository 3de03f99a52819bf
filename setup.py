"""Real-time face tracking and identification: YOLO faces, ArcFace embeddings, DeepSORT.

Install with ``make install`` (see README.md): it installs this package and
then ``insightface`` with ``--no-deps``, because insightface's metadata asks
for the CPU ``onnxruntime`` distribution, which would shadow
``onnxruntime-gpu`` (both install the same ``onnxruntime`` module).
"""
from setuptools import setup

INSTALL_REQUIRES = [
    # The user's package list (insightface is installed separately, see above).
    "torch>=2.14",           # ultralytics runs the YOLO detector on it (CUDA build from PyPI)
    "torchvision>=0.29",     # imported by ultralytics (NMS ops), never by our code
    "ultralytics>=8.4,<8.5",
    "onnxruntime-gpu>=1.20",
    "opencv-python>=4.8",
    "filterpy>=1.4.5",       # only a test oracle for tracker/kalman_filter.py (tests/test_tracker_kalman.py)
    "scipy>=1.10",
    # What we truly need besides.
    "numpy>=1.24",
    "pyyaml>=6.0",
    "tqdm>=4.60",
    "onnx>=1.14",            # validating weights, tiny test models
    "requests>=2.28",        # insightface needs it (installed with --no-deps)
    "scikit-image>=0.20",    # insightface needs it (installed with --no-deps)
    "matplotlib>=3.7",       # calibration and report plots
    "motmetrics>=1.4",       # CLEAR MOT / ID metrics (evaluation)
    "trackeval>=1.3",        # HOTA (evaluation)
    "paho-mqtt>=2.0",        # the MQTT event sink (pipeline.event_sinks)
    "faiss-cpu>=1.8",        # the gallery's vector index from exact_below embeddings on (gallery/vector_index.py)
    "ai-edge-litert>=2.1.4; platform_system == 'Linux' and platform_machine == 'x86_64'",  # .tflite detectors
    "openvino>=2024.0",      # the detector's OpenVINO export on the CPU (models/export.py, docs/speed.md)
]

#: ``facetrack serve`` (the web page, package ``web``): ``pip install .[web]``.
WEB_REQUIRES = [
    "fastapi>=0.110",
    "uvicorn>=0.29",
    "python-multipart>=0.0.9",   # FastAPI's form and file uploads
]

setup(
    name="facetrack",
    version="0.1.0",
    description="Real-time face tracking and identification: YOLO + ArcFace + DeepSORT",
    python_requires=">=3.10",
    packages=["tracker", "models", "gallery", "pipeline", "evaluation", "facetrack", "web"],
    package_data={"web": ["static/*", "static/pages/*"]},
    py_modules=["demo"],
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "web": WEB_REQUIRES,
        # The browser tests drive Debian's /usr/bin/chromium through Playwright (no browser download).
        "dev": ["pytest>=7.4", "pytest-timeout>=2.1", "playwright>=1.40"] + WEB_REQUIRES,
    },
    # `facetrack COMMAND` (facetrack/cli.py) is the command; facetrack-demo is kept for existing scripts.
    entry_points={"console_scripts": ["facetrack=facetrack.cli:main", "facetrack-demo=facetrack.demo_cli:main"]},
)
