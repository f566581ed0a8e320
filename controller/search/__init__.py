"""Missing-person searches: coverage planning, search areas, hotspots for ground teams."""
