"""Incident categories: the one list, and the one that means a missing-person search.

A search is flown differently from every other category (the area is shared
among several drones as AUTO sweeps, thermal feeds are analysed, teams get
hotspots), so the rest of the controller asks `is_search` instead of comparing
strings of its own.
"""

from __future__ import annotations

INCIDENT_CATEGORIES = ("traffic_accident", "missing_person", "violent_crime", "fire", "other")
#: The category flown as a thermal area search.
SEARCH_CATEGORY = "missing_person"
assert SEARCH_CATEGORY in INCIDENT_CATEGORIES


def is_search(category: str | None) -> bool:
    return category == SEARCH_CATEGORY
