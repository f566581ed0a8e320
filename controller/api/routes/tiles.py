"""The MBTiles basemap, served as XYZ tiles: public map data (no token), no listing, cached by browsers.

Only integers reach the tileset (z, x, y are path integers checked for range,
the extension one of a fixed few), so no request names a file or a query.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool

from controller.api.deps import runtime
from controller.domain.errors import NotFound
from controller.maptiles.mbtiles import MAX_ZOOM
from controller.runtime import Runtime

router = APIRouter(include_in_schema=False)

#: Browsers keep tiles a day (the tileset changes only when the file is replaced and the controller restarted).
CACHE_CONTROL = "public, max-age=86400"



def _digits(value: Any) -> Any:
    """Plain decimal digits only: pydantic would also read "0.0" or " 1" as an integer."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise PydanticCustomError("int_parsing", "Input should be a whole number written in decimal digits")
    return value


Z = Annotated[int, BeforeValidator(_digits), Path(ge=0, le=MAX_ZOOM, description="zoom level")]
XY = Annotated[int, BeforeValidator(_digits), Path(ge=0, lt=2**MAX_ZOOM, description="XYZ column or row")]


@router.get("/tiles/{z}/{x}/{y}.{ext}")
async def tile(
    z: Z, x: XY, y: XY, ext: Literal["png", "jpg", "jpeg", "webp"], request: Request, rt: Runtime = Depends(runtime),
) -> Response:
    """One tile of the MBTiles basemap (XYZ numbering; the file's TMS rows are flipped). 404: no MBTiles basemap,
    another format than the tileset's, or no tile there."""
    tiles = rt.basemap.tiles if rt.basemap is not None else None
    where = f"{z}/{x}/{y}.{ext}"
    if tiles is None:
        raise NotFound("tile", f"{where} (no MBTiles basemap is configured)")
    if not tiles.serves(ext):
        raise NotFound("tile", f"{where} (this basemap's tiles are .{tiles.info.format})")
    data = await run_in_threadpool(tiles.tile, z, x, y)
    if data is None:
        raise NotFound("tile", where)
    etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=tiles.content_type, headers=headers)
