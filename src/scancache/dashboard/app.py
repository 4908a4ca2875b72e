"""The dashboard's HTTP face: the page, its live event stream, the REST API and /metrics (Starlette).

Routes (all behind security.Guard):
  GET  /                                       the page (static files under /static, no CDN)
  GET  /api/events                             server-sent events: one frame a sample (about 1 s)
  GET  /api/history                            the frames of the last minutes, oldest first
  GET  /api/stats                              the monitoring data, the fleet and the alerts (JSON)
  GET  /api/caches                             the namespaces the REST API can manage
  GET  /api/caches/{namespace}/keys            ?prefix=&limit= (1..1000, default 100)
  GET  /api/caches/{namespace}/entries/{key}   value, expires_at, is_stale; 404 when absent
  DELETE /api/caches/{namespace}/entries/{key} {"deleted": bool}
  POST /api/caches/{namespace}/clear           {"removed": n}
  GET  /metrics                                Prometheus text, with scancache_alert_firing
  GET  /openapi.json                           this API as OpenAPI 3 (from the docstrings)
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncIterator, Callable, Mapping
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from scancache.dashboard.hub import Hub
from scancache.dashboard.security import Guard

__all__ = ["create_app"]

MAX_KEYS = 1000
_PAGE_HEADERS = {
    # Everything the page needs comes from this server; nothing inline, no framing by other sites.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_JSON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _plain(value: Any, depth: int = 0) -> Any:
    """value as JSON can hold it: bytes as {"base64": ...}, non-finite floats as None."""
    if isinstance(value, bytes | bytearray):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if depth > 32:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    return value


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(_plain(data), status_code=status, headers=_JSON_HEADERS)


class _NoNamespace(Exception):
    """The namespace in the path is none the dashboard manages (answered 404)."""


class _Guarded:
    """ASGI middleware: every HTTP request passes Guard.check before it reaches a route."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query_token = Request(scope).query_params.get("token")
        refusal = self.guard.check(scope["method"], headers, query_token)
        if refusal is not None:
            status, reason = refusal
            extra = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
            await JSONResponse({"error": reason}, status_code=status, headers=extra)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(hub: Hub, guard: Guard, caches: Callable[[], Mapping[str, Any]]) -> ASGIApp:
    """The ASGI app: hub gives frames and data, caches() the {namespace: Cache} the API manages."""
    static = resources.files("scancache.dashboard") / "static"

    async def page(request: Request) -> Response:
        return FileResponse(str(static / "index.html"), headers=_PAGE_HEADERS)

    async def events(request: Request) -> Response:
        """
        responses:
          200:
            description: text/event-stream, one JSON frame per sample
        """
        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            async for frame in hub.frames():
                yield f"data: {json.dumps(_plain(frame), separators=(',', ':'))}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def history(request: Request) -> Response:
        """
        responses:
          200:
            description: the frames of the last minutes, oldest first
        """
        return _json(hub.sampler.frames())

    async def stats(request: Request) -> Response:
        """
        responses:
          200:
            description: every source's stats, the fleet's workers and totals, the alerts
        """
        return _json(hub.sampler.latest_data or await hub.sample_now())

    def _cache(request: Request) -> Any:
        namespace = request.path_params["namespace"]
        cache = caches().get(namespace)
        if cache is None:
            raise _NoNamespace(namespace)
        return cache

    async def namespaces(request: Request) -> Response:
        """
        responses:
          200:
            description: the namespaces this dashboard manages, with each cache's backend
        """
        return _json({ns: {"backend": c.config.cache_type.value} for ns, c in caches().items()})

    async def keys(request: Request) -> Response:
        """
        parameters:
          - {name: prefix, in: query, schema: {type: string}}
          - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000}}
        responses:
          200:
            description: '{"namespace", "prefix", "keys": [...]} sorted, at most limit'
        """
        cache = _cache(request)
        prefix = request.query_params.get("prefix", "")
        try:
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_KEYS:
            return _json({"error": f"limit must be 1..{MAX_KEYS}"}, 400)
        found = await asyncio.to_thread(cache.backend.keys, prefix, limit)
        return _json({"namespace": request.path_params["namespace"], "prefix": prefix, "keys": found})

    async def entry(request: Request) -> Response:
        """
        responses:
          200:
            description: '{"key", "value", "expires_at", "is_stale"} (GET) or {"deleted": bool} (DELETE)'
          404:
            description: no such namespace or entry
        """
        cache = _cache(request)
        key = request.path_params["key"]
        if request.method == "DELETE":
            return _json({"key": key, "deleted": bool(await cache.adelete(key))})
        found = await cache.aget_entry(key)
        if found is None:
            return _json({"error": "no such entry", "key": key}, 404)
        return _json({"key": key, "value": found.value, "expires_at": found.expires_at,
                      "is_stale": found.is_stale})

    async def clear(request: Request) -> Response:
        """
        responses:
          200:
            description: '{"namespace", "removed": n}'
        """
        cache = _cache(request)
        return _json({"namespace": request.path_params["namespace"], "removed": int(await cache.aclear())})

    async def metrics(request: Request) -> Response:
        from scancache.metrics import CONTENT_TYPE, render_prometheus

        data = hub.sampler.latest_data or await hub.sample_now()
        return PlainTextResponse(render_prometheus(data), media_type=CONTENT_TYPE)

    async def openapi(request: Request) -> Response:
        return JSONResponse(_SCHEMAS.get_schema(routes=app.routes))

    async def not_found(request: Request, exc: Exception) -> Response:
        return _json({"error": f"no such namespace: {exc}"}, 404)

    app = Starlette(routes=[
        Route("/", page),
        Route("/api/events", events),
        Route("/api/history", history),
        Route("/api/stats", stats),
        Route("/api/caches", namespaces),
        Route("/api/caches/{namespace}/keys", keys),
        Route("/api/caches/{namespace}/entries/{key:path}", entry, methods=["GET", "DELETE"]),
        Route("/api/caches/{namespace}/clear", clear, methods=["POST"]),
        Route("/metrics", metrics, include_in_schema=False),
        Route("/openapi.json", openapi, include_in_schema=False),
        Mount("/static", StaticFiles(directory=str(static)), name="static"),
    ], exception_handlers={_NoNamespace: not_found})
    return _Guarded(app, guard)


_SCHEMAS = SchemaGenerator({"openapi": "3.0.0",
                            "info": {"title": "scancache dashboard", "version": "1"}})
