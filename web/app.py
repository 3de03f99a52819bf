"""The application: the pages, the REST API behind them, and the access rules, in one FastAPI app.

Pages are small static HTML files with a little plain JavaScript
(``web/static``; no build step) that call the API; every action of a page is
an API call described at ``/openapi.json`` (and browsable at ``/docs``).
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Optional

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from web import people, timeline
from web.live import BOUNDARY, mjpeg
from web.security import COOKIE, Access, token_matches
from web.uploads import MAX_IMAGE_PIXELS, MAX_UPLOAD_BYTES, MULTIPART_SLACK_BYTES, BodyLimit

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
PAGES = ("people", "unknowns", "events", "live")


def create_app(worker, photos_dir: Path, *, events_path: Optional[Path] = None,
               snapshots_dir: Optional[Path] = None, live=None, hls_dir: Optional[Path] = None,
               token: Optional[str] = None, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               max_image_pixels: int = MAX_IMAGE_PIXELS, extra_routers=()) -> FastAPI:
    """The web application.

    Parameters
    ----------
    worker : web.worker.GalleryWorker
        Owns the gallery (closed when the app shuts down).
    photos_dir : Path
        The gallery's photo folder: uploads are written there and nowhere else.
    events_path, snapshots_dir : Path, optional
        The ``events.jsonl`` of the Events page and its snapshots folder.
    live : web.live.LiveRun, optional
        A running pipeline for the Live page (stopped when the app shuts down).
    hls_dir : Path, optional
        A folder an HLS re-stream writes (``--output out.m3u8``), served under ``/hls/``.
    token : str, optional
        Required on every request when given (see :mod:`web.security`).
    max_upload_bytes : int
        Largest photo accepted (the request body may add multipart framing).
    max_image_pixels : int
        Largest image accepted, in pixels.
    extra_routers : sequence of APIRouter
        More API routes (the Unknowns page's).
    """
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if live is not None:
            live.stop()
        worker.close()

    # No /docs: Swagger UI loads its scripts from a CDN, and this page makes no outside requests.
    app = FastAPI(title="facetrack", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="The gallery, the unknowns, the events and the live view of facetrack.")
    app.include_router(people.router(worker, Path(photos_dir), max_image_pixels=max_image_pixels))
    app.include_router(timeline.router(events_path, snapshots_dir))
    for extra in extra_routers:
        app.include_router(extra)
    _live_routes(app, live, hls_dir)
    _pages(app, token)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if hls_dir is not None:
        app.mount("/hls", StaticFiles(directory=hls_dir, check_dir=False), name="hls")
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes + MULTIPART_SLACK_BYTES)
    app.add_middleware(Access, token=token)
    return app


def _live_routes(app: FastAPI, live, hls_dir: Optional[Path]) -> None:
    @app.get("/api/live", tags=["live"], summary="Whether a pipeline is running, and on what; the HLS playlists")
    def live_status():
        status = live.status() if live is not None else {"running": False, "source": None, "frames": 0,
                                                         "error": "no live source (start with --source)"}
        playlists = sorted(p.name for p in hls_dir.glob("*.m3u8")) if hls_dir is not None else []
        return dict(status, hls=[f"/hls/{name}" for name in playlists])

    @app.get("/api/live.mjpg", tags=["live"], summary="The annotated stream (MJPEG)",
             response_class=StreamingResponse,
             responses={200: {"content": {f"multipart/x-mixed-replace; boundary={BOUNDARY}": {}}}})
    async def live_stream(request: Request):
        if live is None:
            raise HTTPException(404, "no live source: start facetrack serve with --source")
        return StreamingResponse(mjpeg(live.frames, request.is_disconnected),
                                 media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                 headers={"Cache-Control": "no-store"})


def _pages(app: FastAPI, token: Optional[str]) -> None:
    @app.get("/", include_in_schema=False)
    def home():
        return RedirectResponse("/people")

    for page in PAGES:
        app.add_api_route(f"/{page}", _page(page), include_in_schema=False, methods=["GET"])

    @app.get("/login", include_in_schema=False)
    def login_form():
        return FileResponse(STATIC / "login.html")

    @app.post("/login", tags=["access"], summary="Log in with the token: sets the session cookie")
    def login(token_field: str = Form(..., alias="token")):
        if token is None:
            return RedirectResponse("/people", status_code=303)
        if not token_matches(token_field, token):
            return JSONResponse({"detail": "wrong token"}, status_code=401)
        response = RedirectResponse("/people", status_code=303)
        response.set_cookie(COOKIE, token_field, httponly=True, samesite="strict")
        return response


def _page(page: str):
    """The route of one page: the shared shell (``static/shell.html``) around ``static/pages/<page>.html``."""
    def show():
        shell = (STATIC / "shell.html").read_text(encoding="utf-8")
        body = (STATIC / "pages" / f"{page}.html").read_text(encoding="utf-8")
        return HTMLResponse(shell.replace("{title}", page.capitalize()).replace("{page}", page)
                            .replace("{body}", body))
    show.__name__ = f"page_{page}"
    return show
