"""Thermal hotspots for missing-person searches: from the drones' feeds to the ground teams."""
