"""dronefleet controller: dispatch, fleet link, video relay and search for a police drone fleet."""

__version__ = "0.1.0"
