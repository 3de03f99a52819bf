"""``python -m facetrack``: the ``facetrack`` command (:mod:`facetrack.cli`) without the installed script."""
import sys

from facetrack.cli import main

if __name__ == "__main__":
    sys.exit(main())
