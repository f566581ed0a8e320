"""Shortest flyable paths around no-fly polygons: a visibility graph over buffered polygon vertices.

Why a visibility graph: the shortest path between two points around polygonal
obstacles bends only at obstacle vertices, so the vertices of each no-fly
polygon grown by a safety buffer, plus the two endpoints, are all the nodes a
path needs. Vertex-to-vertex times are solved once at start (per airspeed, in
the configured wind, so the graph is directed); a query then only checks which
vertices its endpoints see. Most city legs miss every polygon; a cheap
bounding-circle test settles those without shapely.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse.csgraph import shortest_path
from shapely.geometry import Polygon

from controller.dispatch.flight import leg_time_s

#: Destinations whose view of the graph is remembered (waiting incidents are routed to on every pass).
DEST_CACHE = 4096


class _Convex:
    """Vectorised segment-vs-convex-polygon test (separating axes), the same verdict as shapely.intersects.

    Why: the no-fly zones are usually convex (an airport circle); testing thousands of legs per
    decision through shapely's per-geometry calls was the engine's main cost.
    """

    def __init__(self, polygon: Polygon) -> None:
        pts = np.asarray(polygon.exterior.coords)[:-1]
        edges = np.roll(pts, -1, axis=0) - pts
        normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
        self.pts = pts
        self.normals = normals
        proj = pts @ normals.T  # (vertex, axis)
        self.lo, self.hi = proj.min(axis=0), proj.max(axis=0)

    @staticmethod
    def fits(polygon: Polygon) -> bool:
        return not polygon.interiors and polygon.convex_hull.area <= polygon.area * (1 + 1e-9)

    def intersects(self, ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray) -> np.ndarray:
        nx, ny = self.normals[:, 0], self.normals[:, 1]
        pa = ax[:, None] * nx + ay[:, None] * ny
        pb = bx[:, None] * nx + by[:, None] * ny
        apart = ((np.maximum(pa, pb) < self.lo) | (np.minimum(pa, pb) > self.hi)).any(axis=1)
        sx, sy = -(by - ay), bx - ax  # the segment's own normal
        poly = self.pts[:, 0][None, :] * sx[:, None] + self.pts[:, 1][None, :] * sy[:, None]
        own = ax * sx + ay * sy
        apart |= (own < poly.min(axis=1)) | (own > poly.max(axis=1))
        return ~apart


@dataclass(frozen=True)
class _Graph:
    """Vertex-to-vertex best times and the lengths of those paths, for one airspeed."""

    time: np.ndarray  # (V, V), inf where unreachable
    length: np.ndarray  # (V, V)


class NoFlyRouter:
    """Routes legs around no-fly polygons given in local metres. Answers depend only on the arguments
    (the graph is fixed at construction; stations' and scenes' views of it are cached)."""

    def __init__(
        self, polygons: Sequence[Polygon], buffer_m: float, airspeeds: Iterable[float], wind: tuple[float, float]
    ) -> None:
        self.wind = wind
        self.zones = [p for p in polygons if not p.is_empty]
        # Segments are tested against the polygons grown by slightly less than the buffer, so legs along
        # the buffered outline (the graph's edges) stay legal while anything cutting closer is refused.
        self._blockers = [p.buffer(0.9 * buffer_m, join_style="mitre") if buffer_m > 0 else p for p in self.zones]
        for b in self._blockers:
            shapely.prepare(b)
        for z in self.zones:
            shapely.prepare(z)
        self._convex = [(_Convex(b) if _Convex.fits(b) else None, _Convex(z) if _Convex.fits(z) else None)
                        for b, z in zip(self._blockers, self.zones, strict=True)]
        centres = [b.centroid for b in self._blockers]
        self._circles = np.array(
            [[c.x, c.y, shapely.hausdorff_distance(c, b.exterior) + 1.0] for c, b in zip(centres, self._blockers, strict=True)]
        ).reshape(-1, 3)
        outlines = [z.buffer(buffer_m, join_style="mitre") if buffer_m > 0 else z for z in self.zones]
        verts = [np.asarray(o.exterior.coords)[:-1] for o in outlines]
        self.vertices = np.vstack(verts) if verts else np.zeros((0, 2))
        self._graphs = {float(s): self._solve(float(s)) for s in set(airspeeds)}
        self._origin_views: dict[tuple[float, float, float], tuple[np.ndarray, np.ndarray]] = {}
        # Per fixed origin (station): best time to every graph vertex through the graph, and the first vertex.
        self._origin_reach: dict[tuple[float, float, float], tuple[np.ndarray, np.ndarray]] = {}
        # Per destination (an incident stays waiting over many passes): its view of the graph vertices.
        self._dest_views: dict[tuple[float, float, float], tuple[np.ndarray, np.ndarray]] = {}

    def precompute_origins(self, points: np.ndarray, airspeeds: Iterable[float]) -> None:
        """Solve, at construction time, which graph vertices fixed origins (stations) see."""
        if len(self.vertices) == 0 or len(points) == 0:
            return
        for speed in set(airspeeds):
            t, length = self._views(points[:, 0], points[:, 1], float(speed), True)
            g = self._graph(float(speed))
            via = t[:, :, None] + g.time[None, :, :]
            u_best = np.argmin(via, axis=1)
            reach = np.take_along_axis(via, u_best[:, None, :], axis=1)[:, 0, :]
            for (x, y), tr, lr, rr, ur in zip(points, t, length, reach, u_best, strict=True):
                key = (float(x), float(y), float(speed))
                self._origin_views[key] = (tr, lr)
                self._origin_reach[key] = (rr, ur)

    # --- geometry --------------------------------------------------------------

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Which points lie inside a no-fly polygon itself (not merely in its buffer)."""
        out = np.zeros(np.shape(x), dtype=bool)
        for z in self.zones:
            out |= shapely.contains_xy(z, x, y)
        return out

    def blocked(self, ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray) -> np.ndarray:
        """Which straight segments (broadcast shapes) pass through a (buffered) no-fly polygon."""
        ax, ay, bx, by = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (ax, ay, bx, by)))
        out = np.zeros(ax.shape, dtype=bool)
        for (cx, cy, r), blocker, zone, (cb, cz) in zip(
            self._circles, self._blockers, self.zones, self._convex, strict=True
        ):
            near = _segment_point_distance(ax, ay, bx, by, cx, cy) < r
            if not near.any():
                continue
            idx = np.nonzero(near)
            sa, sb, ea, eb = ax[idx], ay[idx], bx[idx], by[idx]
            hit = cb.intersects(sa, sb, ea, eb) if cb is not None else _shapely_hits(sa, sb, ea, eb, blocker)
            # An endpoint inside the buffer but outside the zone (a station near the fence) may leave
            # or reach it directly, as long as the leg does not cross the zone itself.
            edge = hit & (shapely.contains_xy(blocker, sa, sb) | shapely.contains_xy(blocker, ea, eb))
            if edge.any():
                e = (sa[edge], sb[edge], ea[edge], eb[edge])
                hit[edge] = cz.intersects(*e) if cz is not None else _shapely_hits(*e, zone)
            out[idx] |= hit
        return out

    # --- times -------------------------------------------------------------------

    def _solve(self, airspeed: float) -> _Graph:
        v = self.vertices
        n = len(v)
        if n == 0:
            return _Graph(np.zeros((0, 0)), np.zeros((0, 0)))
        ax, ay = v[:, 0][:, None], v[:, 1][:, None]
        bx, by = v[:, 0][None, :], v[:, 1][None, :]
        t, length = leg_time_s(bx - ax, by - ay, airspeed, *self.wind)
        visible = ~self.blocked(ax, ay, bx, by)
        w = np.where(visible & np.isfinite(t), t, np.inf)
        np.fill_diagonal(w, 0.0)
        dense = np.where(np.isfinite(w), w, 0.0)
        dense[np.isfinite(w) & (w == 0)] = 1e-9  # keep zero-time edges (coincident vertices) in the sparse graph
        np.fill_diagonal(dense, 0.0)
        time, pred = shortest_path(dense, method="D", directed=True, return_predecessors=True)
        lengths = np.zeros((n, n))
        for src in range(n):  # walk predecessors once at start to get each best path's length
            for dst in range(n):
                if src == dst or not np.isfinite(time[src, dst]):
                    continue
                total, node = 0.0, dst
                while node != src:
                    prev = pred[src, node]
                    total += length[prev, node]
                    node = prev
                lengths[src, dst] = total
        return _Graph(time, lengths)

    def _graph(self, airspeed: float) -> _Graph:
        g = self._graphs.get(float(airspeed))
        return g if g is not None else self._solve(float(airspeed))

    def leg(
        self, ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray, airspeed: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time s, path length m, detoured?) for legs a->b (broadcast), routed around the zones.

        Time is NaN/inf where no path exists (wind or obstacles). `airspeed` broadcasts like the points.
        Detoured legs are solved together: each distinct endpoint's view of the graph is computed once.
        """
        ax, ay, bx, by, spd = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (ax, ay, bx, by, airspeed)))
        t, dist = leg_time_s(bx - ax, by - ay, spd, *self.wind)
        t, dist = t.copy(), dist.copy()
        if not self.zones:
            return t, dist, np.zeros(t.shape, dtype=bool)
        hit = self.blocked(ax, ay, bx, by)
        if hit.any():
            idx = np.nonzero(hit)
            for speed in np.unique(spd[idx]):
                sel = tuple(i[spd[idx] == speed] for i in idx)
                t[sel], dist[sel] = self._detours(ax[sel], ay[sel], bx[sel], by[sel], float(speed))
        return t, dist, hit

    def _views(self, px: np.ndarray, py: np.ndarray, speed: float, outbound: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per point, time and length to (outbound) or from each graph vertex in straight sight, inf if hidden."""
        v = self.vertices
        cache = self._origin_views if outbound else self._dest_views
        if cache:
            known = [cache.get((float(x), float(y), speed)) for x, y in zip(px, py, strict=True)]
            if all(k is not None for k in known):
                return np.array([k[0] for k in known]), np.array([k[1] for k in known])
        if outbound:
            dx, dy = v[None, :, 0] - px[:, None], v[None, :, 1] - py[:, None]
            hidden = self.blocked(px[:, None], py[:, None], v[None, :, 0], v[None, :, 1])
        else:
            dx, dy = px[:, None] - v[None, :, 0], py[:, None] - v[None, :, 1]
            hidden = self.blocked(v[None, :, 0], v[None, :, 1], px[:, None], py[:, None])
        t, length = leg_time_s(dx, dy, speed, *self.wind)
        t = np.where(hidden | np.isnan(t), np.inf, t)
        if not outbound:
            if len(self._dest_views) > DEST_CACHE:
                self._dest_views.clear()
            for x, y, tr, lr in zip(px, py, t, length, strict=True):
                self._dest_views[(float(x), float(y), speed)] = (tr, lr)
        return t, length

    def _detours(self, ax, ay, bx, by, speed: float) -> tuple[np.ndarray, np.ndarray]:
        """Best time (and its path length) a -> visible vertex -> graph -> visible vertex -> b, for many legs."""
        g = self._graph(speed)
        n_v = len(self.vertices)
        a_keys, a_inv = np.unique(np.stack([ax, ay], 1), axis=0, return_inverse=True)
        b_keys, b_inv = np.unique(np.stack([bx, by], 1), axis=0, return_inverse=True)
        ta, la = self._views(a_keys[:, 0], a_keys[:, 1], speed, True)
        tb, lb = self._views(b_keys[:, 0], b_keys[:, 1], speed, False)
        known = [self._origin_reach.get((float(x), float(y), speed)) for x, y in a_keys]
        if all(k is not None for k in known):  # all from stations: solved at construction
            reach = np.array([k[0] for k in known])
            u_best = np.array([k[1] for k in known])
        else:
            via = ta[:, :, None] + g.time[None, :, :]  # (origin, first vertex u, vertex v)
            u_best = np.argmin(via, axis=1)  # (origin, v)
            reach = np.take_along_axis(via, u_best[:, None, :], axis=1)[:, 0, :]
        a_inv, b_inv = a_inv.ravel(), b_inv.ravel()
        total = reach[a_inv] + tb[b_inv]  # (leg, v)
        v_best = np.argmin(total, axis=1)
        rows = np.arange(len(ax))
        best = total[rows, v_best]
        u = u_best[a_inv, v_best]
        length = la[a_inv, u] + g.length[u, v_best] + lb[b_inv, v_best]
        ok = np.isfinite(best)
        del n_v
        return np.where(ok, best, np.inf), np.where(ok, length, np.inf)


def _shapely_hits(ax, ay, bx, by, polygon: Polygon) -> np.ndarray:
    """Which segments intersect a (non-convex) polygon, through shapely."""
    coords = np.stack([np.stack([ax, ay], -1), np.stack([bx, by], -1)], axis=1)
    return shapely.intersects(shapely.linestrings(coords), polygon)


def _segment_point_distance(ax, ay, bx, by, px, py) -> np.ndarray:
    """Distance from point p to each segment a-b (arrays broadcast)."""
    dx, dy = bx - ax, by - ay
    len2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.clip(np.where(len2 > 0, ((px - ax) * dx + (py - ay) * dy) / np.where(len2 > 0, len2, 1.0), 0.0), 0.0, 1.0)
    return np.hypot(ax + s * dx - px, ay + s * dy - py)
