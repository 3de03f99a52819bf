"""The README's commands run as written.

Convention (also stated in the README): a fenced ```bash block whose previous non-blank line is
``<!-- test -->`` is run by this test. The marked blocks run in README order in one bash session
(``set -euo pipefail``), as a reader would type them into one terminal after the install step, so a
variable exported or a file written by one block is there for the next. Unmarked blocks (the install
itself, a camera, runs of an hour, placeholders such as ``photo.jpg``) are not run.

Where they run: a fresh folder ``work/`` beside a link ``shared`` -> the shared data, so the README's
``../shared/data`` paths resolve as they do from a checkout. The install step is stood in for by
``work/.venv/bin/activate``, which puts this interpreter and the ``facetrack`` console script that
setup.py declares (made from its entry point) first on ``PATH``, with this checkout importable.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MARKER = "<!-- test -->"
#: The whole session's limit; the blocks are meant to take about a minute on two idle cores.
TIMEOUT_S = 900


def bash_blocks(text: str):
    """``(line number, marked, code)`` of every fenced ```bash block of ``text``."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            i += 1
            body = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start + 1, previous == MARKER, "\n".join(body)))
        i += 1
    return blocks


def marked_blocks():
    return [(line, code) for line, marked, code in bash_blocks(README.read_text()) if marked]


def test_the_marker_finds_blocks_and_only_the_install_comes_before_the_first_one():
    blocks = bash_blocks(README.read_text())
    assert marked_blocks(), f"no block marked {MARKER} in the README"
    first = next(k for k, (_, marked, _) in enumerate(blocks) if marked)
    assert all("make install" in code for _, _, code in blocks[:first]), \
        "the README's first runnable example must be marked for testing (only the install step before it)"
    assert not re.search(r"--source\s+(webcam|\d+)\b", blocks[first][2]), "the first example must need no camera"


def test_the_parser_reads_markers_and_fences():
    text = "x\n<!-- test -->\n\n```bash\necho a\necho b\n```\n```bash\necho c\n```\n```text\nno\n```\n"
    assert bash_blocks(text) == [(4, True, "echo a\necho b"), (8, False, "echo c")]


def _stand_in_venv(work: Path) -> None:
    """``work/.venv/bin``: ``python`` and the ``facetrack`` script of setup.py's entry point, and ``activate``."""
    entry = re.search(r'"facetrack\s*=\s*([\w.]+):(\w+)"', (REPO / "setup.py").read_text())
    assert entry, "setup.py declares no facetrack console script"
    module, func = entry.groups()
    bin_dir = work / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "facetrack"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n")
    script.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "activate").write_text(
        f"export PATH={shlex.quote(str(bin_dir))}:\"$PATH\"\n"
        f"export PYTHONPATH={shlex.quote(str(REPO))}${{PYTHONPATH:+:$PYTHONPATH}}\n")


def _session(blocks) -> str:
    parts = ["set -euo pipefail", ". .venv/bin/activate"]
    for line, code in blocks:
        parts.append(f"echo '=== README.md line {line}' >&2")
        parts.append(code)
    return "\n".join(parts) + "\n"


def _files_named(blocks):
    """The files the commands are told to write (--db, --output, --events, --tracks, --names)."""
    words = shlex.split(" ".join(code.replace("\\\n", " ") for _, code in blocks), comments=True)
    return sorted({b for a, b in zip(words, words[1:])
                   if a in ("--db", "--output", "--events", "--tracks", "--names") and "://" not in b})


@pytest.mark.integration
@pytest.mark.slow
def test_the_readme_s_marked_blocks_run_as_written(tmp_path, shared_data, shared_models):
    (tmp_path / "shared").symlink_to(shared_data.parent, target_is_directory=True)
    work = tmp_path / "work"
    work.mkdir()
    _stand_in_venv(work)
    blocks = marked_blocks()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "FACETRACK_MODELS_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    env["FACETRACK_CACHE_DIR"] = str(tmp_path / "cache")   # nothing from the user's cache
    proc = subprocess.run(["bash", "-c", _session(blocks)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    where = [line for line in proc.stderr.splitlines() if line.startswith("=== README.md line")]
    assert proc.returncode == 0, (f"failed in the block at {where[-1] if where else '?'} (exit {proc.returncode})"
                                  f"\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
    assert len(where) == len(blocks)
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    for name in _files_named(blocks):
        path = work / name
        if name.endswith("/"):         # a folder output (a folder of images as the source)
            assert path.is_dir() and any(path.iterdir()), f"{name}: not written by the README's commands"
        else:
            assert path.is_file() and path.stat().st_size > 0, f"{name}: not written by the README's commands"
