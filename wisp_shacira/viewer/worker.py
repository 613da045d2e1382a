"""Progressive rendering on a background thread: coarse while the view changes, refined
once it rests.

Every request replaces the pending one (the latest view wins). A request is first
rendered at ``preview_scale`` of the full resolution; if no newer request arrives
within ``idle_s`` seconds it is rendered again at full resolution. A render that
polls its ``cancelled`` callback can give up (return None) as soon as a newer
request is waiting, so a slow refined frame never delays the next preview.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Generic, TypeVar

import numpy as np

log = logging.getLogger(__name__)

Request = TypeVar("Request")


class ProgressiveRenderer(Generic[Request]):
    """Background render loop.

    Args:
        render: ``render(request, scale, cancelled) -> [h, w, 3] uint8``, or None when
            it gave up because ``cancelled()`` became true; ``scale`` in (0, 1].
        show: ``show(image, request, scale, seconds)`` publishes a finished render.
        preview_scale: resolution factor of the first, fast render (1 = no preview).
        idle_s: how long a view must rest before it is refined.
    """

    def __init__(self, render: Callable[[Request, float, Callable[[], bool]], np.ndarray | None],
                 show: Callable[[np.ndarray, Request, float, float], None],
                 preview_scale: float = 0.25, idle_s: float = 0.3) -> None:
        self._render, self._show = render, show
        self.preview_scale, self.idle_s = preview_scale, idle_s
        self._pending: Request | None = None
        self._stopped = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="viewer-render", daemon=True)
        self._thread.start()

    def request(self, request: Request) -> None:
        """Ask for ``request`` to be rendered (replaces any request not yet started)."""
        with self._cond:
            self._pending = request
            self._cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop after the render in progress."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout)

    def _superseded(self) -> bool:
        return self._pending is not None or self._stopped

    def _take(self, timeout: float | None) -> Request | None:
        with self._cond:
            self._cond.wait_for(lambda: self._pending is not None or self._stopped, timeout)
            request, self._pending = self._pending, None
            return None if self._stopped else request

    def _draw(self, request: Request, scale: float) -> None:
        start = time.perf_counter()
        try:
            image = self._render(request, scale, self._superseded)
            if image is not None:
                self._show(image, request, scale, time.perf_counter() - start)
        except Exception:  # a failed frame must not end the viewer; the next request retries
            log.exception("render failed")

    def _loop(self) -> None:
        request = None
        while not self._stopped:
            if request is None:
                request = self._take(None)
                if request is None:
                    return
            if self.preview_scale < 1.0:
                self._draw(request, self.preview_scale)
                newer = self._take(self.idle_s)
                if newer is not None:
                    request = newer
                    continue
                if self._stopped:
                    return
            self._draw(request, 1.0)
            request = None
