"""The dispatch centre, split along its seams.

- `journal`: the database writer and the event bus (created once): changes are
  committed in order, then published as numbered events.
- `state`: live drones, open incidents and missions, their indexes and the
  incident status derived from missions.
- `view`: the read-only view of live state that fleet, video, hotspot and API
  code get instead of the centre's dictionaries.
- `changes`: the primitive changes (a transition, its row and event, an alert,
  releasing a mission's drone) that commands are made of.
- `dispatch_pass`: the dispatcher's snapshot (rebuilt incrementally), its
  decisions turned into offers, preemption.
- `offers`: offer timers.
- `commands`: what people do (open, merge, close, accept, decline, abort,
  maintenance, add search drones).
- `flight_reports`: what the flight layer reports (steps, take-off, landing,
  failures, search plans and progress, links, telemetry).
- `dispatch_center`: assembles the parts and owns their life cycle.
"""

from controller.center.commands import NewIncident
from controller.center.dispatch_center import DispatchCenter
from controller.center.journal import ServiceUnavailable
from controller.center.view import LiveView

__all__ = ["DispatchCenter", "LiveView", "NewIncident", "ServiceUnavailable"]
