"""``python demo.py --source webcam``: the command line of :mod:`facetrack.demo_cli`, kept where users expect it."""
from facetrack.demo_cli import main_and_exit

if __name__ == "__main__":
    main_and_exit()
