"""The basemap: an XYZ tile URL or a local MBTiles file the controller serves (command rooms are often offline)."""
