"""``python demo.py --source webcam``: the command line of :mod:`facetrack.demo_cli`, kept where users expect it."""
import sys

from facetrack.demo_cli import main

if __name__ == "__main__":
    sys.exit(main())
