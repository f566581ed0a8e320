"""The fleet link: one MAVLink 2 connection per drone, telemetry, commands, mission flights, safety."""
