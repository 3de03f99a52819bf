"""The Unknowns API: the persistent Unknown clusters (:mod:`gallery.unknowns`) with thumbnails;
name, merge and dismiss.

Naming a cluster enrolls its appearances as a person (new or existing) in
one transaction; the next run names that face. Every call runs on the
gallery's thread (:class:`web.worker.GalleryWorker`).
"""
from __future__ import annotations

from typing import Callable, List

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gallery.store import GalleryError
from web.people import gallery_error

#: Thumbnails shown per cluster.
THUMBNAILS = 3


class Cluster(BaseModel):
    cluster_id: int
    label: str
    appearances: int
    first_seen: float
    last_seen: float
    sources: List[str]
    thumbnails: List[str]


class Naming(BaseModel):
    person: str


class Merging(BaseModel):
    cluster_ids: List[int] = Field(..., min_length=2, description="the first one is kept")


def _clusters(unknowns) -> list:
    out = []
    for c in unknowns.clusters():
        count = len(unknowns.thumbnails(c.cluster_id, THUMBNAILS))
        out.append(Cluster(cluster_id=c.cluster_id, label=c.label, appearances=c.appearances,
                           first_seen=c.first_seen, last_seen=c.last_seen, sources=[s for s in c.sources if s],
                           thumbnails=[f"/api/unknowns/{c.cluster_id}/thumbnails/{i}" for i in range(count)]))
    return out


def _thumbnail(unknowns, cluster_id: int, number: int) -> bytes:
    crops = unknowns.thumbnails(cluster_id, THUMBNAILS)
    if not 0 <= number < len(crops):
        raise HTTPException(404, f"Unknown #{cluster_id} has no thumbnail {number}")
    return crops[number]


def router(worker, make_unknowns: Callable) -> APIRouter:
    """The ``/api/unknowns`` routes; ``make_unknowns(store) -> UnknownGallery`` (on the gallery's thread)."""
    api = APIRouter(prefix="/api/unknowns", tags=["unknowns"])

    async def call(job: Callable):
        try:
            return await worker.run(lambda: job(make_unknowns(worker.store())))
        except (ValueError, GalleryError) as exc:
            raise gallery_error(exc) from None

    @api.get("", response_model=List[Cluster], summary="The Unknown clusters, most recently seen first")
    async def clusters():
        return await call(_clusters)

    @api.get("/{cluster_id}/thumbnails/{number}", response_class=Response, summary="A face crop (JPEG)",
             responses={200: {"content": {"image/jpeg": {}}}})
    async def thumbnail(cluster_id: int, number: int):
        data = await call(lambda u: _thumbnail(u, cluster_id, number))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})

    @api.post("/{cluster_id}/name", summary="Enroll the cluster's appearances as a person (new or existing)")
    async def name(cluster_id: int, body: Naming):
        added = await call(lambda u: u.name(cluster_id, body.person))
        return {"cluster_id": cluster_id, "person": body.person, "embeddings_added": added}

    @api.post("/merge", summary="Merge clusters into the first one")
    async def merge(body: Merging):
        kept = await call(lambda u: u.merge(body.cluster_ids))
        return {"cluster_id": kept}

    @api.delete("/{cluster_id}", summary="Dismiss a cluster: delete its appearances and crops")
    async def dismiss(cluster_id: int):
        deleted = await call(lambda u: u.dismiss(cluster_id))
        return {"cluster_id": cluster_id, "appearances_deleted": deleted}

    return api
