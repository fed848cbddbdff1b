"""GET /docs: the interactive reference of /openapi.json (Swagger UI), served offline.

Swagger UI's dist files come from the swagger-ui-py package (5.x, which reads
OpenAPI 3.1), never from a CDN: the page works on a machine with no network.
Only the files the page needs are served. The page sets a strict
Content-Security-Policy: scripts, styles and requests from this instance
only, no inline script (the start-up code is init.js).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from aiohttp import hdrs, web

from ..errors import not_found

HERE = Path(__file__).resolve().parent.parent / "swagger"
SWAGGER_UI = Path(str(files("swagger_ui").joinpath("static")))
# name: (file, type). Types named here, not guessed from the machine's
# mime.types, so every install answers what openapi.json says.
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui.css": (SWAGGER_UI / "swagger-ui.css", "text/css; charset=utf-8"),
    "swagger-ui-bundle.js": (SWAGGER_UI / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "init.js": (HERE / "init.js", "text/javascript; charset=utf-8"),
    "favicon-32x32.png": (SWAGGER_UI / "favicon-32x32.png", "image/png"),
    "favicon-16x16.png": (SWAGGER_UI / "favicon-16x16.png", "image/png"),
}
PAGE = (HERE / "index.html").read_bytes()

# data: images are the icons inside swagger-ui.css.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    hdrs.CONTENT_SECURITY_POLICY: CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    # The page is tiny: always asked again, so it never refers to assets a
    # newer release no longer has.
    hdrs.CACHE_CONTROL: "no-cache",
}
# An hour fresh, then revalidated with the ETag and Last-Modified that
# FileResponse sends (a 304 when unchanged).
ASSET_CACHE = "public, max-age=3600"


async def page(request: web.Request) -> web.Response:
    return web.Response(body=PAGE, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["asset"]
    found = ASSETS.get(name)
    if found is None:
        raise not_found(f"no file {name!r} under /docs")
    path, content_type = found
    headers = {hdrs.CONTENT_TYPE: content_type, hdrs.CACHE_CONTROL: ASSET_CACHE}
    return web.FileResponse(path, headers=headers)
