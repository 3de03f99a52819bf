"""The People API: list with photos, rename, remove, and upload a photo to enroll.

An uploaded photo is checked (:mod:`web.uploads`), written into the gallery's
photo folder as ``<folder>/<person>/<hash>.<ext>`` and enrolled by
:meth:`gallery.enroll.Enroller.enroll_folder`, the same incremental,
transactional path as ``python -m gallery enroll``. A photo that cannot be
enrolled (no face, two faces, too small) is removed again and the reason is
returned. Removing a person also deletes their photos in that folder
(otherwise the next enrollment would bring them back).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List

from fastapi import APIRouter, File, HTTPException, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from gallery.store import GalleryError, check_new_name
from web.uploads import UploadError, check_file_name, check_image, photo_path, write_private

logger = logging.getLogger(__name__)

#: Longest side of a photo thumbnail, in pixels.
THUMBNAIL_SIDE = 240


class Photo(BaseModel):
    id: int
    url: str


class Person(BaseModel):
    name: str
    embeddings: int
    photos: List[Photo]


class Rename(BaseModel):
    new_name: str


class Enrolled(BaseModel):
    person: str
    status: str
    reason: str = ""
    file_name: str


def gallery_error(exc: Exception) -> HTTPException:
    """A gallery or name error as an HTTP error: 404 for what is not there (a person, a cluster),
    409 for a conflict, 400 else."""
    text = str(exc)
    if isinstance(exc, GalleryError):
        return HTTPException(404 if text.startswith("no ") else 409, text)
    return HTTPException(400, text)


def _people(store) -> list:
    by_person: dict = {}
    for rec in store.sources():
        if rec.source_path and Path(rec.source_path).is_file():      # not the embeddings named from Unknowns
            by_person.setdefault(rec.person, []).append(rec.embedding_id)
    return [Person(name=p.name, embeddings=p.embeddings,
                   photos=[Photo(id=i, url=f"/api/people/photos/{i}") for i in by_person.get(p.name, [])])
            for p in store.people()]


def _thumbnail(store, embedding_id: int) -> bytes:
    import cv2

    rec = next((r for r in store.sources() if r.embedding_id == embedding_id), None)
    if rec is None or not rec.source_path:
        raise HTTPException(404, f"no photo with id {embedding_id}")
    image = cv2.imread(rec.source_path, cv2.IMREAD_COLOR)
    if image is None:
        raise HTTPException(404, f"the photo of embedding {embedding_id} is gone or unreadable")
    scale = THUMBNAIL_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def _remove(store, photos_dir: Path, name: str) -> int:
    root = photos_dir.resolve()
    paths = [Path(r.source_path) for r in store.sources() if r.person == name and r.source_path]
    removed = store.remove_person(name)
    for path in paths:
        if path.resolve().parent.parent == root:
            path.unlink(missing_ok=True)
            if path.parent.is_dir() and not any(path.parent.iterdir()):
                path.parent.rmdir()
    return removed


def _enroll(worker, photos_dir: Path, person: str, data: bytes, extension: str, file_name: str) -> Enrolled:
    from gallery.enroll import SKIPPED

    check_new_name(person, "person name")
    path = photo_path(photos_dir, person, data, extension)
    existed = path.exists()
    write_private(path, data)
    report = worker.enroller().enroll_folder(photos_dir, worker.store(), progress=False)
    result = next(r for r in report.results if Path(r.path) == path)
    if result.status == SKIPPED and not existed:
        path.unlink(missing_ok=True)
        if not any(path.parent.iterdir()):
            path.parent.rmdir()
    logger.info("upload %s for %s: %s %s", file_name, person, result.status, result.reason)
    return Enrolled(person=result.person, status=result.status, reason=result.reason, file_name=file_name)


def router(worker, photos_dir: Path, *, max_image_pixels: int) -> APIRouter:
    """The ``/api/people`` routes over ``worker`` (:class:`web.worker.GalleryWorker`), uploads into ``photos_dir``."""
    api = APIRouter(prefix="/api/people", tags=["people"])

    @api.get("", response_model=List[Person], summary="Everyone enrolled, with their photos")
    async def list_people():
        return await worker.run(lambda: _people(worker.store()))

    @api.get("/photos/{embedding_id}", summary="A thumbnail (JPEG) of an enrolled photo",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    async def photo(embedding_id: int):
        data = await worker.run(lambda: _thumbnail(worker.store(), embedding_id))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})

    @api.put("/{name}", summary="Rename a person")
    async def rename(name: str, body: Rename):
        try:
            await worker.run(lambda: worker.store().rename_person(name, body.new_name))
        except (ValueError, GalleryError) as exc:
            raise gallery_error(exc) from None
        return {"name": body.new_name}

    @api.delete("/{name}", summary="Remove a person, their embeddings and their uploaded photos")
    async def remove(name: str):
        try:
            count = await worker.run(lambda: _remove(worker.store(), photos_dir, name))
        except (ValueError, GalleryError) as exc:
            raise gallery_error(exc) from None
        return {"name": name, "embeddings_removed": count}

    @api.post("/{name}/photos", response_model=Enrolled, summary="Upload one photo and enroll it as this person",
              responses={400: {}, 413: {}, 415: {}, 422: {}})
    async def upload(name: str, photo: UploadFile = File(...)):
        return await _upload(worker, photos_dir, name, photo, max_image_pixels)

    return api


async def _upload(worker, photos_dir: Path, name: str, photo, max_image_pixels: int) -> Enrolled:
    if not worker.can_enroll:
        raise HTTPException(503, "this server was started without models: it cannot enroll photos")
    try:
        check_new_name(name, "person name")
        file_name = check_file_name(photo.filename or "")
        data = await photo.read()
        extension = check_image(data, max_pixels=max_image_pixels)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    try:
        result = await worker.run(_enroll, worker, photos_dir, name, data, extension, file_name)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except (ValueError, GalleryError) as exc:
        raise gallery_error(exc) from None
    if result.status == "skipped":
        raise HTTPException(422, f"{file_name} was not enrolled: {result.reason}")
    return result
