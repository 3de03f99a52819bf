"""Uploaded photos: the request size bound, the image check, safe file names and private atomic writes.

A request body larger than the limit is refused with ``413`` as soon as it is
seen to be too large: at once when ``Content-Length`` says so, otherwise when
the bytes received pass the limit, so a 100 MB upload is never held in memory
(:class:`BodyLimit`). What is accepted must decode as an image
(:func:`check_image`), and it is written under a folder only, under a name of
our own (:func:`photo_path`), atomically and readable by its owner only
(:func:`write_private`).
"""
from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

from gallery.schema import FILE_MODE, make_private_dir
from models.io import write_private as write_private_file

#: Largest accepted request body (one photo per request), in bytes.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Largest accepted image, in pixels (a small file can decode to a huge image).
MAX_IMAGE_PIXELS = 40_000_000
#: Multipart framing allowed on top of the photo itself.
MULTIPART_SLACK_BYTES = 64 * 1024

_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
_SAFE_NAME = re.compile(r"^[\w][\w .()+-]{0,199}$")


class UploadError(ValueError):
    """An upload is refused; ``status`` is the HTTP status and the message says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_file_name(name: str) -> str:
    """The client's file name when it is a plain name; :class:`UploadError` for a path or an odd name.

    A name with a folder in it (``../../etc/passwd``, ``a/b.jpg``, ``C:\\x.jpg``), a hidden name, a
    control character or more than 200 characters is refused. The name is only checked and
    reported: the stored file gets a name of its own (:func:`photo_path`).
    """
    if not isinstance(name, str) or not name:
        raise UploadError("the upload has no file name")
    if "/" in name or "\\" in name or ".." in name or ":" in name:
        raise UploadError(f"file name {name!r} is a path; only a plain file name is accepted")
    if not _SAFE_NAME.match(name):
        raise UploadError(f"file name {name!r} is not accepted (letters, digits, spaces and . _ - ( ) +, "
                          "not starting with a dot, at most 200 characters)")
    return name


def _image_class(data: bytes):
    """``(format, PIL image class)`` from the file's first bytes, or None for an unknown format.

    The plugin classes are used directly: ``PIL.Image.open`` is patched by ultralytics to
    install a package when it meets an unknown format.
    """
    from PIL import BmpImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin

    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG", JpegImagePlugin.JpegImageFile
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG", PngImagePlugin.PngImageFile
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP", WebPImagePlugin.WebPImageFile
    if data.startswith(b"BM"):
        return "BMP", BmpImagePlugin.BmpImageFile
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF", TiffImagePlugin.TiffImageFile
    return None


def check_image(data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS) -> str:
    """The file extension of the image's real format (``.jpg``), after decoding ``data`` fully.

    :class:`UploadError` (``415``) unless it is a readable JPEG, PNG, WebP, BMP or TIFF image;
    the header's size is checked against ``max_pixels`` (``413``) before the pixels are decoded.
    """
    if not data:
        raise UploadError("the upload is empty", 400)
    known = _image_class(data)
    if known is None:
        raise UploadError("the upload is not an image (JPEG, PNG, WebP, BMP or TIFF expected)", 415)
    fmt, image_class = known
    try:
        img = image_class(io.BytesIO(data))
        width, height = img.size
        if width * height > max_pixels:
            raise UploadError(f"the image is {width}x{height} pixels, more than {max_pixels} pixels", 413)
        img.load()
    except UploadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadError(f"the upload is not an image that can be decoded: a damaged {fmt} ({exc})", 415) from None
    return _FORMATS[fmt]


def photo_path(folder: Path, person: str, data: bytes, extension: str) -> Path:
    """Where an accepted photo of ``person`` is kept: ``folder/person/<sha256 prefix><ext>``.

    Raises :class:`UploadError` when the result would not be inside ``folder`` (the person's name
    is checked by :func:`gallery.store.check_new_name` before; this is the last guard).
    """
    root = Path(folder).resolve()
    path = (root / person / (hashlib.sha256(data).hexdigest()[:24] + extension)).resolve()
    if path.parent.parent != root:
        raise UploadError(f"person name {person!r} does not make a folder inside the gallery's folder")
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode ``0600`` (:func:`models.io.write_private`);
    the folders made for it are ``0700``."""
    make_private_dir(path.parent)
    write_private_file(path, data, FILE_MODE)


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with ``413`` before reading it all.

    When ``Content-Length`` is over the limit, the answer comes before any of the body is read.
    Otherwise (chunked), once the bytes received pass the limit the ``413`` is sent, the
    application is told the client went away, and whatever it still answers is dropped.

    Parameters
    ----------
    app : ASGI application
    max_bytes : int
        Largest request body accepted.
    """

    def __init__(self, app, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _refuse(send, int(length), self.max_bytes)
        state = {"received": 0, "started": False, "refused": False}

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes and not state["refused"]:
                    state["refused"] = True
                    if not state["started"]:
                        await _refuse(send, state["received"], self.max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if state["refused"]:
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["refused"]:
                raise


async def _refuse(send, size: int, limit: int) -> None:
    import json

    body = json.dumps({"detail": f"the upload is too large: more than {limit} bytes "
                                 f"(at least {size} bytes sent)"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})

