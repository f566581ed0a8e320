"""Dispatch: which drone goes to which incident. `Dispatcher` is the interface the rest of the controller uses."""

from controller.dispatch.base import Assignment, Decision, Dispatcher, DroneCandidate, IncidentRequest

__all__ = ["Assignment", "Decision", "Dispatcher", "DroneCandidate", "IncidentRequest"]
