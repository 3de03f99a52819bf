"""One thread that owns the gallery: every read and write of the page runs on it, one at a time.

SQLite connections belong to the thread that opened them, and enrollment
runs the models, so the page hands each gallery job to this thread
(:meth:`GalleryWorker.run`) and awaits it; jobs never overlap, so two uploads
are two transactions one after the other.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

logger = logging.getLogger(__name__)


class GalleryWorker:
    """The gallery's thread.

    Parameters
    ----------
    open_store : callable
        ``() -> GalleryStore``, called once on the worker thread.
    make_enroller : callable, optional
        ``() -> gallery.enroll.Enroller``, called on the first enrollment (the models load then);
        None when the page cannot enroll.
    """

    def __init__(self, open_store: Callable, make_enroller: Optional[Callable] = None) -> None:
        self._open_store = open_store
        self._make_enroller = make_enroller
        self._store = None
        self._enroller = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gallery")

    @property
    def can_enroll(self) -> bool:
        return self._make_enroller is not None

    def store(self):
        """The open store (on the worker thread only)."""
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def enroller(self):
        """The enroller (on the worker thread only); built on first use."""
        if self._make_enroller is None:
            raise RuntimeError("this server cannot enroll photos (no models)")
        if self._enroller is None:
            self._enroller = self._make_enroller()
        return self._enroller

    async def run(self, job: Callable, *args):
        """``job(*args)`` on the worker thread, awaited."""
        return await asyncio.wrap_future(self._pool.submit(job, *args))

    def close(self) -> None:
        """Close the store on its thread and stop the thread."""
        def _close():
            if self._store is not None:
                self._store.close()
                self._store = None
        self._pool.submit(_close).result()
        self._pool.shutdown(wait=True)
