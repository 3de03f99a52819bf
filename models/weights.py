"""Registry of named model weights, their resolution, cache and download.

A weights argument is either a path or a registered name. ``resolve_weights``
looks for it, in this order:

1. the path itself, when it names an existing file;
2. the models folders: the ``models_dir`` argument (the config passes it),
   then the folder in the ``FACETRACK_MODELS_DIR`` environment variable;
3. the user cache: ``cache_dir`` argument, else ``FACETRACK_CACHE_DIR``, else
   ``~/.cache/facetrack/models``;
4. a download of the registered URL into the cache, with a tqdm progress bar,
   written atomically (a temporary file in the cache folder, fsync,
   ``os.replace``) and checked against the registered sha256 when known. A
   registered archive (``member`` set) is downloaded to a temporary file and
   only the named member is extracted into the cache.

When nothing is found and no download is possible one ``WeightsNotFoundError``
names the file, every folder searched and the environment variable to set.

Roles
-----
A role is a name that stands for the first of several models found locally.
``"arcface"`` (the default recognizer) resolves to the first of
``w600k_r50.onnx`` and ``edgeface_xs.onnx`` found in steps 1-3, else downloads
``w600k_r50`` (insightface buffalo_l's ResNet-50 ArcFace, the only one of the
two with a public download).

Nothing here runs at import time; downloads happen only in ``resolve_weights``
with ``allow_download=True``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

logger = logging.getLogger(__name__)

__all__ = [
    "WeightsSpec",
    "REGISTRY",
    "ROLES",
    "MODELS_DIR_ENV",
    "CACHE_DIR_ENV",
    "WeightsError",
    "WeightsNotFoundError",
    "DownloadError",
    "where_from",
    "ChecksumMismatchError",
    "WeightsFileError",
    "describe_weights_file",
    "default_cache_dir",
    "resolve_weights",
    "sha256_file",
]

MODELS_DIR_ENV = "FACETRACK_MODELS_DIR"
CACHE_DIR_ENV = "FACETRACK_CACHE_DIR"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsSpec:
    """One registered model file.

    Attributes
    ----------
    filename : str
        The file name looked for in the models folders and the cache.
    url : str or None
        Where to download it (``None``: local only).
    sha256 : str or None
        Hex digest of the file (of the extracted member for archives);
        ``None`` when the upstream file's digest is not known.
    member : str or None
        For a ``url`` that is a zip archive: the member to extract (matched by
        its base name anywhere in the archive).
    note : str
        Provenance and license in one line.
    """

    filename: str
    url: Optional[str] = None
    sha256: Optional[str] = None
    member: Optional[str] = None
    note: str = ""


#: Registered models by name.
REGISTRY: Dict[str, WeightsSpec] = {
    # Our local file is a conversion of the int8 TFLite (see ../shared/models/MANIFEST.md), so its digest does
    # not describe the upstream float checkpoint: the URL is clibdev's GitHub-release mirror of derronqi's
    # yolov8n-face (WIDER FACE, 5 landmarks; derronqi publishes on Google Drive only), digest unknown.
    # It may need an ultralytics version matching its export. AGPL-3.0.
    "yolov8n-face": WeightsSpec(
        filename="yolov8n-face.pt",
        url="https://github.com/clibdev/yolov8-face/releases/latest/download/yolov8n-face.pt",
        sha256=None,
        note="YOLOv8n-pose face detector with 5 landmarks (derronqi/yolov8-face, WIDER FACE), AGPL-3.0; "
        "the local file (sha256 95e8b5ce...) is a conversion that differs from the upstream file",
    ),
    "yolov8n-face-onnx": WeightsSpec(
        filename="yolov8n-face.onnx",
        url="https://github.com/clibdev/yolov8-face/releases/latest/download/yolov8n-face.onnx",
        sha256=None,
        note="ONNX export of yolov8n-face, AGPL-3.0; the local file (sha256 960fe931...) is our export and "
        "differs from the upstream one",
    ),
    "edgeface_xs": WeightsSpec(
        filename="edgeface_xs.onnx",
        url=None,
        sha256="fda57d7f2c24eeff04d89721157256edbcd94aeab9e86d2b3cdbb78f638bfa27",
        note="EdgeFace-XS 512-d recognizer converted to ONNX with ArcFace I/O; local only; CC BY-NC-SA 4.0",
    ),
    "w600k_r50": WeightsSpec(
        filename="w600k_r50.onnx",
        url="https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip",
        sha256=None,
        member="w600k_r50.onnx",
        note="insightface buffalo_l ArcFace ResNet-50 (WebFace600K), 512-d; non-commercial research use only",
    ),
}

#: Role names: the first of these registered models found locally, else a download of the first with a URL.
ROLES: Dict[str, Tuple[str, ...]] = {
    "arcface": ("w600k_r50", "edgeface_xs"),
}


class WeightsError(RuntimeError):
    """Base class of the weights errors."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """The weights are nowhere to be found and cannot be downloaded."""


class DownloadError(WeightsError):
    """A download failed (HTTP error, dropped connection, bad archive)."""


class ChecksumMismatchError(WeightsError):
    """A downloaded file's sha256 differs from the registered one."""


class WeightsFileError(WeightsError, ValueError):
    """A weights file exists but cannot be loaded (text, empty, truncated, damaged); the message says which."""


def describe_weights_file(path: Union[str, Path], error: Optional[BaseException] = None) -> str:
    """What is wrong with a weights file that failed to load, in one sentence.

    Looks at the file itself (empty, text, a truncated zip, the wrong format for
    its extension) and falls back to the first line of ``error``.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    suffix = path.suffix.lower()
    if size == 0:
        return "the file is empty"
    if b"\0" not in head:
        try:
            text = head.decode("utf-8")
            return f"it is a text file ({size} bytes, starting {text.strip()[:40]!r}), not a model"
        except UnicodeDecodeError:
            pass
    if suffix == ".pt":
        if head[:2] != b"PK" and head[:1] != b"\x80":
            return f"it is not a PyTorch checkpoint ({size} bytes; a .pt file is a zip archive)"
        if head[:2] == b"PK" and not zipfile.is_zipfile(path):
            return f"it is truncated or damaged ({size} bytes; the zip archive has no central directory)"
    first = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else ""
    if suffix == ".onnx":
        return f"it is not a valid ONNX model, truncated or damaged ({size} bytes{': ' + first if first else ''})"
    return f"it could not be loaded ({size} bytes{': ' + first[:200] if first else ''})"


def default_cache_dir() -> Path:
    """The user cache: ``$FACETRACK_CACHE_DIR`` or ``~/.cache/facetrack/models``."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facetrack" / "models"


def sha256_file(path: Union[str, Path]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights(
    name_or_path: Union[str, Path],
    *,
    models_dir: Optional[Union[str, Path]] = None,
    cache_dir: Optional[Union[str, Path]] = None,
    allow_download: bool = True,
    progress: bool = True,
) -> Path:
    """Find (or download) a model file.

    Parameters
    ----------
    name_or_path : str or Path
        A path to a file, a registered name (``REGISTRY``), a registered file
        name (e.g. ``"w600k_r50.onnx"``), a role (``ROLES``, e.g.
        ``"arcface"``), or a bare file name to look for in the folders.
    models_dir : str or Path, optional
        A models folder searched before ``$FACETRACK_MODELS_DIR``.
    cache_dir : str or Path, optional
        The cache folder; ``default_cache_dir()`` when ``None``.
    allow_download : bool
        Download registered files that are found nowhere.
    progress : bool
        Show a tqdm progress bar while downloading.

    Returns
    -------
    Path
        The absolute path of an existing file.

    Raises
    ------
    WeightsNotFoundError
        When the file is nowhere and cannot be downloaded.
    DownloadError, ChecksumMismatchError
        When a download fails; nothing is left in the cache then.
    ValueError
        For an empty name.
    """
    if name_or_path is None or str(name_or_path).strip() == "":
        raise ValueError("name_or_path must be a path or a registered model name, got an empty value")
    raw = str(name_or_path).strip()
    explicit = Path(raw).expanduser()
    if explicit.is_file():
        return explicit.resolve()
    if explicit.is_dir():
        raise WeightsNotFoundError(f"weights {raw!r} is a folder, not a model file")

    folders = _search_folders(models_dir, cache_dir)
    names = _candidates(raw)
    if not names:  # not registered: a path or bare file name to look for
        found = _find(explicit.name, folders)
        if found is None:
            raise WeightsNotFoundError(_not_found_message(raw, [explicit.name], folders))
        return found
    found = _find_registered(raw, names, folders)
    if found is not None:
        return found
    return _download_registered(raw, names, folders, cache_dir, allow_download=allow_download, progress=progress)


def _find_registered(raw: str, names: List[str], folders: List[Path]) -> Optional[Path]:
    """The first of the registered ``names`` whose file is in ``folders``."""
    for name in names:
        found = _find(REGISTRY[name].filename, folders)
        if found is not None:
            if raw in ROLES:
                logger.info("role %r resolved to %s", raw, found)
            return found
    return None


def _download_registered(raw: str, names: List[str], folders: List[Path], cache_dir, *, allow_download: bool,
                         progress: bool) -> Path:
    """Download the first of the registered ``names`` that has a URL, or say why it cannot be had."""
    downloadable = [n for n in names if REGISTRY[n].url]
    filenames = [REGISTRY[n].filename for n in names]
    origins = [where_from(REGISTRY[n]) for n in names]
    if allow_download and downloadable:
        cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        try:
            return _download_into(REGISTRY[downloadable[0]], cache, progress=progress)
        except ChecksumMismatchError:
            raise
        except DownloadError as exc:
            # Offline users need to know where to put the file, not only that the network failed.
            raise DownloadError(_not_found_message(raw, filenames, folders, origins=origins,
                                                   attempt=f"Tried to download: {exc}.")) from exc
    attempt = "" if allow_download else "Downloading is disabled here."
    raise WeightsNotFoundError(_not_found_message(raw, filenames, folders, origins=origins, attempt=attempt))


def _candidates(raw: str) -> List[str]:
    """Registered names ``raw`` stands for (a role, a name, or a registered file name)."""
    if raw in ROLES:
        return list(ROLES[raw])
    if raw in REGISTRY:
        return [raw]
    base = Path(raw).name
    if base == raw:  # a bare file name, not a path into some folder
        return [name for name, spec in REGISTRY.items() if spec.filename == base]
    return []


def _search_folders(models_dir, cache_dir) -> List[Path]:
    folders: List[Path] = []
    if models_dir is not None:
        folders.append(Path(models_dir).expanduser())
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        folders.append(Path(env).expanduser())
    folders.append(Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir())
    unique: List[Path] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def _find(filename: str, folders: Sequence[Path]) -> Optional[Path]:
    for folder in folders:
        candidate = folder / filename
        if candidate.is_file():
            return candidate.resolve()
    return None


def where_from(spec: WeightsSpec) -> str:
    """Where ``spec``'s file can come from, in one phrase (the offline error and ``python -m models info``)."""
    if spec.url is None:
        return f"{spec.filename} has no public download (copy it from a machine or folder that has it)"
    inside = " (it is extracted from that archive)" if spec.member else ""
    return f"{spec.filename} can be downloaded from {spec.url}{inside}"


def _not_found_message(raw, filenames, folders, *, origins=None, attempt="") -> str:
    """The one error for weights that are nowhere: what was looked for where, where each file can
    come from (``origins``; ``None``: not a registered name), what a download gave, and what to set."""
    files = " or ".join(filenames)
    searched = ", ".join(str(f) for f in folders)
    lines = [f"model weights {raw!r} not found: looked for {files} in {searched}."]
    if origins is None:
        lines.append(f"It is not a registered model name either (registered: {', '.join(sorted(REGISTRY))}; "
                     f"roles: {', '.join(sorted(ROLES))}).")
    else:
        lines.append("; ".join(origins) + ".")
    if attempt:
        lines.append(attempt)
    lines.append(f"With the file at hand: put it in a folder and set {MODELS_DIR_ENV}=<folder> (or pass "
                 "--models-dir <folder>, models_dir in the config), or pass the file's path.")
    return " ".join(lines)


def _download_into(spec: WeightsSpec, cache: Path, *, progress: bool) -> Path:
    """Download ``spec`` into ``cache`` atomically and return the final path."""
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / spec.filename
    logger.info("downloading %s from %s into %s", spec.filename, spec.url, cache)
    tmp_download = _fetch(spec.url, cache, progress=progress, label=Path(spec.url).name)
    try:
        if spec.member is not None:
            source = _extract_member(tmp_download, spec.member, cache, spec.url)
            tmp_download.unlink()
            tmp_download = source
        if spec.sha256 is not None:
            actual = sha256_file(tmp_download)
            if actual != spec.sha256.lower():
                raise ChecksumMismatchError(
                    f"checksum mismatch for {spec.filename} from {spec.url}: expected sha256 {spec.sha256}, "
                    f"got {actual}; the download was discarded (nothing written to {cache})"
                )
        else:
            logger.warning("%s has no registered sha256; it was not verified", spec.filename)
        os.replace(tmp_download, final)
        _fsync_dir(cache)
    except BaseException:
        tmp_download.unlink(missing_ok=True)
        raise
    return final.resolve()


def _fetch(url: str, folder: Path, *, progress: bool, label: str, timeout: float = 60.0) -> Path:
    """Stream ``url`` into a temporary file in ``folder``; fsync it; return its path."""
    import urllib.error
    import urllib.request

    from tqdm import tqdm

    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".download-", suffix=".part")
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "facetrack-weights/1"})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(f"download of {url} failed: {reason} (offline?)") from exc
        with response, os.fdopen(fd, "wb") as out:
            fd = -1
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            received = 0
            with tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                      disable=not progress, leave=False) as bar:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except Exception as exc:  # http.client.IncompleteRead, ConnectionResetError, timeouts
                        raise DownloadError(f"download of {url} broke off after {received} bytes: {exc!r}") from exc
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if expected is not None and received != expected:
                raise DownloadError(
                    f"download of {url} broke off: received {received} of {expected} bytes (connection dropped)"
                )
            if received == 0:
                raise DownloadError(f"download of {url} returned an empty body")
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _extract_member(archive: Path, member: str, folder: Path, url: str) -> Path:
    """Extract the zip member whose base name is ``member`` into a temporary file in ``folder``."""
    try:
        with zipfile.ZipFile(archive) as zf:
            matches = [info for info in zf.infolist() if not info.is_dir() and Path(info.filename).name == member]
            if not matches:
                names = ", ".join(i.filename for i in zf.infolist()[:20])
                raise DownloadError(f"archive {url} has no member {member!r} (members: {names})")
            fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".extract-", suffix=".part")
            tmp = Path(tmp_name)
            try:
                with zf.open(matches[0]) as src, os.fdopen(fd, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                    dst.flush()
                    os.fsync(dst.fileno())
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return tmp
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"download of {url} is not a valid zip archive: {exc}") from exc


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
