"""Time-to-scene coverage of the city: the grid model (`grid`) and its outputs (`render`)."""
