"""A sequence folder copied with its video blurred and re-encoded at a low bitrate.

The simulator's faces are drawn from sharp photos; real wide shots of a
sitcom are softer and more compressed, and their small faces carry less
identity. ``python -m evaluation degrade SRC DST --blur-sigma 1.0
--bitrate 300k`` copies the folder (ground truth, identities, cuts,
gallery) and writes ``DST/video.mp4`` through ffmpeg: a Gaussian blur of
``blur_sigma`` pixels, then H.264 at ``bitrate`` with a one-second GOP.
Frame count and timing are kept, so the ground truth still holds.

With ``--blur-sigma 1.0 --bitrate 300k`` the broadcast preset at 640x360
matches the real sitcom excerpt of the small-faces issue (``docs/tuning.md``):
a face under 30 px scores 0.16-0.19 on average against the right person's
template, and the default configuration names about the same share of them.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from . import gt as gtio
from .video import ffmpeg_path

log = logging.getLogger(__name__)

#: Files and folders of a sequence folder copied as they are.
COPIED = (gtio.GT_FILE.parent.name, gtio.IDENTITIES_FILE, gtio.CUTS_FILE, gtio.SEQINFO_FILE, "synth.json", "gallery")


def degrade(src: Path, dst: Path, *, blur_sigma: float = 1.0, bitrate: str = "300k") -> Path:
    """Copy sequence folder ``src`` to ``dst`` with its video degraded; return ``dst/video.mp4``.

    Raises
    ------
    FileNotFoundError
        ``src`` has no ``video.mp4`` or no ground truth, or ffmpeg is not on ``PATH``.
    ValueError
        ``blur_sigma`` is negative, or ``dst`` is ``src``.
    subprocess.CalledProcessError
        ffmpeg failed (its message is logged).
    """
    src, dst = Path(src), Path(dst)
    if not (src / "video.mp4").exists() or not (src / gtio.GT_FILE).exists():
        raise FileNotFoundError(f"{src} is not a sequence folder (video.mp4 and {gtio.GT_FILE} needed)")
    if blur_sigma < 0:
        raise ValueError(f"blur_sigma must be >= 0, got {blur_sigma}")
    if dst.resolve() == src.resolve():
        raise ValueError("the degraded copy needs a folder of its own")
    ffmpeg = ffmpeg_path()
    if ffmpeg is None:
        raise FileNotFoundError("ffmpeg is not on PATH (install it: apt-get install ffmpeg)")
    dst.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (src / name).is_dir():
            shutil.copytree(src / name, dst / name, dirs_exist_ok=True)
        elif (src / name).exists():
            shutil.copy2(src / name, dst / name)
    filters = f"gblur=sigma={blur_sigma:g}" if blur_sigma > 0 else "null"
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(src / "video.mp4"),
           "-vf", filters, "-c:v", "libx264", "-preset", "veryfast", "-x264-params", "threads=1",
           "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate, "-g", "30", "-pix_fmt", "yuv420p",
           "-an", str(dst / "video.mp4")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        log.error("ffmpeg failed: %s", done.stderr.strip())
        done.check_returncode()
    return dst / "video.mp4"
