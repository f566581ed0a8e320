"""Domain model: drones, incidents and missions with explicit, timestamped state machines."""
