"""Enrollment: a folder of photos into the gallery.

Layout of ``photo_dir``
-----------------------
- one subfolder per person, the folder name is the person's name
  (``photos/ada_lovelace/1.jpg``), unless the folder holds a ``name.txt``
  whose first line is the display name (``Ada Lovelace``; see
  :mod:`gallery.person_names`); it is read when a photo is enrolled, so a
  photo already in the gallery keeps its name (``rename`` changes that);
- or flat files named ``Person_Name_<n>.<ext>`` directly in ``photo_dir``
  (the trailing ``_<n>`` is dropped: ``Ada_Lovelace_2.jpg`` -> ``Ada_Lovelace``).

Hidden files (``.*``) and folders nested inside a person's folder are
ignored; every other entry is tried, so a stray ``notes.txt``, a FIFO or a
dangling symbolic link is reported as skipped rather than silently ignored.

For each photo: detect faces; exactly one clear face is enrolled (other faces
much smaller than it are tolerated as bystanders); no face, several
comparable faces, a face too small or too blurred, an unreadable or non-image
file are skipped with the reason.

Incremental: a photo whose path and content hash are already in the gallery
is not recomputed ("unchanged", even after ``rename``); a changed photo
replaces its old embedding. With ``sync=True`` embeddings whose photos under
``photo_dir`` are gone are removed, and so are people left without any.

The gallery is changed in batches of ``commit_every`` changed photos, each
batch one transaction: a photo's old embedding and its new one are always
in the same batch, so no reader ever sees a photo half-updated. An
exception, Ctrl-C or a killed process loses only the batch in progress; the
next run finds the committed photos unchanged and goes on where it stopped.
Removals of ``sync`` are one last transaction.
"""
from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from gallery.person_names import DISPLAY_NAME_FILE, folder_person_name
from gallery.photos import choose_face, default_image_reader, default_quality_fn, embed_rows, sha256_file
from tracker.checks import check_int, check_number

logger = logging.getLogger(__name__)

_COUNTER_SUFFIX = re.compile(r"^(.*?)[_ -]\d+$")

#: Status values of :class:`PhotoResult`.
ENROLLED, UPDATED, UNCHANGED, SKIPPED, REMOVED = "enrolled", "updated", "unchanged", "skipped", "removed"


@dataclass(frozen=True)
class PhotoResult:
    """What happened to one photo.

    Attributes
    ----------
    path : Path
        The photo.
    person : str
        The person it belongs to.
    status : str
        ``enrolled``, ``updated`` (content changed), ``unchanged``,
        ``skipped`` or ``removed`` (``sync``: the photo is gone).
    reason : str
        Why it was skipped (empty otherwise).
    """

    path: Path
    person: str
    status: str
    reason: str = ""


@dataclass
class EnrollReport:
    """The outcome of one enrollment run."""

    results: list = field(default_factory=list)
    removed_people: list = field(default_factory=list)

    def counts(self) -> Counter:
        """Number of photos per status."""
        return Counter(r.status for r in self.results)

    def skipped(self) -> list:
        """The skipped photos."""
        return [r for r in self.results if r.status == SKIPPED]

    def table(self) -> str:
        """A plain-text summary: counts per person and status, then every skipped photo with its reason."""
        people = sorted({r.person for r in self.results})
        statuses = [ENROLLED, UPDATED, UNCHANGED, SKIPPED, REMOVED]
        width = max([len("person")] + [len(p) for p in people])
        lines = [f"{'person':{width}s} " + " ".join(f"{s:>9s}" for s in statuses)]
        for p in people:
            c = Counter(r.status for r in self.results if r.person == p)
            lines.append(f"{p:{width}s} " + " ".join(f"{c.get(s, 0):9d}" for s in statuses))
        total = self.counts()
        lines.append(f"{'total':{width}s} " + " ".join(f"{total.get(s, 0):9d}" for s in statuses))
        skipped = self.skipped()
        if skipped:
            lines.append("")
            lines.append("skipped:")
            lines.extend(f"  {r.path}: {r.reason}" for r in skipped)
        if self.removed_people:
            lines.append("")
            lines.append("people removed (no photos left): " + ", ".join(self.removed_people))
        return "\n".join(lines)


def person_from_filename(stem: str) -> str:
    """``Person_Name_1`` -> ``Person_Name`` (a trailing counter is dropped)."""
    m = _COUNTER_SUFFIX.match(stem)
    name = m.group(1) if m and m.group(1) else stem
    return name.strip() or stem


def scan_photo_dir(photo_dir: str | Path, *, every_entry: bool = False) -> list[tuple[str, Path]]:
    """The ``(person, photo path)`` pairs of a photo folder, sorted (see the module doc).

    Only regular files (and links to them), unless ``every_entry``: then also
    FIFOs, sockets, devices and dangling links, for enrollment to list as
    skipped (see :func:`not_a_photo_file`; never open them). A person's
    ``name.txt`` is their name (:func:`folder_person_name`), not a photo.

    Raises
    ------
    ValueError
        When ``photo_dir`` does not exist or is not a folder, or a ``name.txt`` is unusable.
    """
    root = Path(photo_dir).expanduser()
    if not root.exists():
        raise ValueError(f"photo folder {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"photo folder {root} is not a folder")
    root = root.resolve()
    items: list[tuple[str, Path]] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            person = folder_person_name(entry)
            for photo in sorted(entry.iterdir()):
                if photo.name.startswith(".") or photo.name == DISPLAY_NAME_FILE:
                    continue
                if photo.is_file() or every_entry and not photo.is_dir():
                    items.append((person, photo))
        elif entry.is_file() or every_entry:
            items.append((person_from_filename(entry.stem), entry))
    return items


def not_a_photo_file(path: Path) -> str:
    """Why ``path`` cannot be a photo (a dangling link, a FIFO, a device), or empty for a regular file.

    Checked before the file is opened: reading a FIFO would wait forever.
    """
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a symbolic link to nothing" if os.path.islink(path) else "the file is gone"
    except OSError as exc:
        return f"cannot read file ({exc.strerror})"
    if stat.S_ISREG(mode):
        return ""
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    return f"not a photo: {kind}"


class Enroller:
    """Turns photos into gallery embeddings.

    Parameters
    ----------
    detector : FaceDetector
        Anything with ``detect(image) -> Detections``.
    embedder : FaceEmbedder
        Anything with ``embed(image, detections) -> (N, D)``.
    min_face_size : float
        Smallest short side of the enrolled face box, in pixels.
    min_sharpness : float
        Smallest ``FaceQuality.sharpness`` (variance of the Laplacian of the
        normalised 64x64 face crop; sharp faces 0.01-0.1); 0 disables it.
    comparable_face_ratio : float
        A second face whose short side is at least this fraction of the
        largest face's makes the photo ambiguous (skipped).
    image_reader : callable, optional
        ``path -> BGR image`` raising ``ValueError`` for bad files (default
        ``models.io.read_image``).
    quality_fn : callable, optional
        ``(image, detections) -> FaceQuality`` (default ``models.quality.face_quality``).
    commit_every : int
        Changed photos per transaction (>= 1): what an interrupted run can lose.
    """

    def __init__(
        self,
        detector,
        embedder,
        *,
        min_face_size: float = 40.0,
        min_sharpness: float = 0.002,
        comparable_face_ratio: float = 0.6,
        image_reader: Optional[Callable] = None,
        quality_fn: Optional[Callable] = None,
        commit_every: int = 16,
    ) -> None:
        if not hasattr(detector, "detect"):
            raise ValueError("detector must have a detect(image) method")
        if not hasattr(embedder, "embed"):
            raise ValueError("embedder must have an embed(image, detections) method")
        self.detector = detector
        self.embedder = embedder
        self.min_face_size = check_number("min_face_size", min_face_size, 0)
        self.min_sharpness = check_number("min_sharpness", min_sharpness, 0)
        self.comparable_face_ratio = check_number("comparable_face_ratio", comparable_face_ratio, 0, 1,
                                                  low_open=True)
        self._read = image_reader
        self._quality = quality_fn
        self.commit_every = check_int("commit_every", commit_every, 1)

    def embed_photo(self, path: Path) -> tuple[Optional[np.ndarray], float, str]:
        """Embedding of the one clear face of a photo.

        Returns
        -------
        embedding : ndarray or None
            ``(D,)`` float32, ``None`` when the photo is skipped.
        quality : float
            ``FaceQuality.score`` of the face (nan when skipped).
        reason : str
            Why the photo is skipped (empty otherwise).
        """
        read = self._read or default_image_reader()
        try:
            image = read(path)
        except (ValueError, OSError) as exc:
            return None, float("nan"), f"unreadable or not an image ({exc})"
        dets = self.detector.detect(image)
        quality = None
        if len(dets):
            quality = (self._quality or default_quality_fn())(image, dets)
        choice = choose_face(
            dets, None if quality is None else quality.sharpness,
            min_face_size=self.min_face_size, min_sharpness=self.min_sharpness,
            comparable_face_ratio=self.comparable_face_ratio,
        )
        if choice.row is None:
            return None, float("nan"), choice.reason
        emb = embed_rows(self.embedder, image, dets[choice.row])[0]
        return emb, float(quality.score[choice.row]), ""

    def enroll_folder(self, photo_dir: str | Path, store, *, sync: bool = False,
                      progress: bool = True) -> EnrollReport:
        """Enroll every photo of ``photo_dir`` into ``store``, ``commit_every`` changed photos per transaction.

        Parameters
        ----------
        photo_dir : str or Path
            The photo folder (see the module doc for its layout).
        store : GalleryStore
            The gallery, opened with the embedder's model identity.
        sync : bool
            Also remove embeddings whose photos under ``photo_dir`` are gone.
        progress : bool
            Show a tqdm progress bar.
        """
        from tqdm import tqdm

        items = scan_photo_dir(photo_dir, every_entry=True)
        root = Path(photo_dir).expanduser().resolve()
        plan = _EnrollPlan(store.sources())
        for person, path in tqdm(items, desc="enrolling", unit="photo", disable=not progress):
            self._plan_photo(plan, person, path)
            if plan.changed_photos >= self.commit_every:
                _commit(plan, store)
        if sync:
            plan.remove_gone(root)
        _commit(plan, store, sync=sync)
        logger.info("enrollment of %s: %s", root, dict(plan.report.counts()))
        return plan.report

    def _plan_photo(self, plan: "_EnrollPlan", person: str, path: Path) -> None:
        """Decide what one photo changes (embedding it when new or changed) and record it in ``plan``."""
        key = str(path)
        plan.scanned.add(key)
        odd = not_a_photo_file(path)
        if odd:
            plan.add_result(path, person, SKIPPED, odd)
            return
        try:
            sha = sha256_file(path)
        except OSError as exc:
            plan.add_result(path, person, SKIPPED, f"cannot read file ({exc.strerror})")
            return
        old = plan.by_path.get(key, [])
        if old and all(r.source_sha256 == sha for r in old):
            plan.add_result(path, old[0].person, UNCHANGED)
            plan.seen_hashes[sha] = (old[0].person, key)
            return
        dup = plan.duplicate_of(sha, key)
        if dup is not None:
            plan.add_result(path, person, SKIPPED, f"same photo as {dup[1]} (enrolled as {dup[0]})")
            return
        emb, quality, reason = self.embed_photo(path)
        plan.removals.extend(r.embedding_id for r in old)       # a changed photo replaces its old embedding
        plan.changed_photos += bool(old) or emb is not None
        if emb is None:
            note = "; its old embedding is removed" if old else ""
            plan.add_result(path, person, SKIPPED, reason + note)
            return
        plan.seen_hashes[sha] = (person, key)
        plan.additions.append((person, emb, key, sha, quality))
        plan.add_result(path, person, UPDATED if old else ENROLLED)


class _EnrollPlan:
    """What one enrollment run will change, gathered before the one write transaction."""

    def __init__(self, sources) -> None:
        #: The stored embeddings' provenance by photo path.
        self.by_path: dict[str, list] = {}
        for rec in sources:
            if rec.source_path:
                self.by_path.setdefault(rec.source_path, []).append(rec)
        self.known_hashes = {rec.source_sha256: rec for recs in self.by_path.values() for rec in recs
                             if rec.source_sha256}
        self.report = EnrollReport()
        self.additions: list[tuple[str, np.ndarray, str, str, float]] = []   # person, vector, path, sha, quality
        self.removals: list[int] = []
        self.seen_hashes: dict[str, tuple[str, str]] = {}                   # sha -> (person, path) this run
        self.scanned: set = set()
        #: Photos with additions or removals not committed yet.
        self.changed_photos = 0

    def add_result(self, path: Path, person: str, status: str, reason: str = "") -> None:
        self.report.results.append(PhotoResult(path, person, status, reason))

    def duplicate_of(self, sha: str, key: str) -> Optional[tuple[str, str]]:
        """``(person, path)`` of another photo with the same content (this run or stored), else None."""
        if sha in self.seen_hashes:
            return self.seen_hashes[sha]
        known = self.known_hashes.get(sha)
        if known is not None and known.source_path != key:
            return known.person, known.source_path
        return None

    def remove_gone(self, root: Path) -> None:
        """``sync``: remove the embeddings of photos under ``root`` that were not scanned."""
        for key, recs in self.by_path.items():
            if key not in self.scanned and _is_under(Path(key), root):
                self.removals.extend(r.embedding_id for r in recs)
                self.add_result(Path(key), recs[0].person, REMOVED, "photo is gone")


def _commit(plan: _EnrollPlan, store, *, sync: bool = False) -> None:
    """Write the plan's pending removals and additions in one transaction, then forget them."""
    if plan.additions or plan.removals or sync:
        with store.write() as w:
            w.remove_embeddings(plan.removals)
            for person, emb, key, sha, quality in plan.additions:
                w.add_embedding(person, emb, source_path=key, source_sha256=sha,
                                quality=None if not np.isfinite(quality) else quality)
            if sync:
                plan.report.removed_people = w.remove_empty_people()
    plan.additions, plan.removals, plan.changed_photos = [], [], 0


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False
