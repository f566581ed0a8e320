"""The vectorised convex-polygon segment test gives shapely's verdict, and the router's caches change no answer."""

from __future__ import annotations

import numpy as np
from shapely.geometry import Point, Polygon

from controller.dispatch.routing import NoFlyRouter, _Convex, _shapely_hits


def test_separating_axes_agree_with_shapely_on_random_segments() -> None:
    rng = np.random.default_rng(3)
    for poly in (Point(0, 0).buffer(1000, quad_segs=8), Polygon([(0, 0), (3000, 200), (2500, 1800), (-400, 900)])):
        assert _Convex.fits(poly)
        ax, ay, bx, by = rng.normal(0, 2500, (4, 20_000))
        got = _Convex(poly).intersects(ax, ay, bx, by)
        assert 0.05 < got.mean() < 0.95
        assert np.array_equal(got, _shapely_hits(ax, ay, bx, by, poly))


def test_a_non_convex_zone_is_left_to_shapely() -> None:
    u = Polygon([(0, 0), (3000, 0), (3000, 3000), (2000, 3000), (2000, 1000), (1000, 1000), (1000, 3000), (0, 3000)])
    assert not _Convex.fits(u)
    router = NoFlyRouter([u], 100.0, [15.0], (0.0, 0.0))
    # Across the notch of the U: clear of the polygon, though inside its hull.
    assert not router.blocked(np.array([1500.0]), np.array([2500.0]), np.array([1500.0]), np.array([1200.0]))[0]
    assert router.blocked(np.array([500.0]), np.array([-500.0]), np.array([500.0]), np.array([3500.0]))[0]


def test_cached_routes_equal_fresh_ones() -> None:
    zone = Point(0, 0).buffer(2000, quad_segs=8)
    rng = np.random.default_rng(4)
    ax, ay, bx, by = rng.uniform(-6000, 6000, (4, 300))
    cached = NoFlyRouter([zone], 150.0, [15.0], (2.0, -3.0))
    cached.precompute_origins(np.stack([ax, ay], 1), [15.0])
    first = cached.leg(ax, ay, bx, by, 15.0)
    again = cached.leg(ax, ay, bx, by, 15.0)  # destinations now cached too
    fresh = NoFlyRouter([zone], 150.0, [15.0], (2.0, -3.0)).leg(ax, ay, bx, by, 15.0)
    assert first[2].any()  # some legs really detour
    for a, b, c in zip(first, again, fresh, strict=True):
        assert np.allclose(a, c, equal_nan=True) and np.allclose(b, c, equal_nan=True)
