"""``python -m gallery``: an entry point only; the command line lives in :mod:`facetrack.gallery_cli`
(and ``python -m gallery unknowns ...`` in :mod:`facetrack.unknowns_cli`)."""
import sys

from facetrack.gallery_cli import main
from facetrack.unknowns_cli import main as unknowns_main

if __name__ == "__main__":
    sys.exit(unknowns_main(sys.argv[2:]) if sys.argv[1:2] == ["unknowns"] else main())
