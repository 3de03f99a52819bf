"""``python -m gallery``: an entry point only; the command line lives in :mod:`facetrack.gallery_cli`."""
import sys

from facetrack.gallery_cli import main

if __name__ == "__main__":
    sys.exit(__import__("facetrack.unknowns_cli").unknowns_cli.main(sys.argv[2:]) if sys.argv[1:2] == ["unknowns"]
             else main())
