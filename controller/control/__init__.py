"""A pilot flying a mission in flight (issue 17): typed commands, the checks they pass before anything is sent,
and their MAVLink encoding.

- `commands`: the command dataclasses, their one-line descriptions, and the outcome of sending one.
- `checks`: pure checks of a command against the limits, the no-fly zones (with the routing buffer), the
  geofence and the battery the flight there and home takes; a refusal says why and nothing is sent.
- `mavlink`: what each command is on the wire (COMMAND_INT / COMMAND_LONG / PARAM_SET requests), as data, and
  the one function that sends such requests over a `DroneLink`.

Who may command a drone (the control token) is the dispatch centre's (`controller.center.control`); the
mission runner executes commands, since it owns the vehicle while the mission flies.
"""
