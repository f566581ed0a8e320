"""ArduCopter flight modes as a ground station sees them: HEARTBEAT custom_mode numbers and their rules.

The numbers are ArduCopter's. The rules are the ones a ground station runs
into: which modes need a position estimate, which allow arming, which set the
"guided" bit in HEARTBEAT base_mode (ArduCopter sets it while the horizontal
position controller runs), and which the simulator flies by holding position.
"""

from __future__ import annotations

from enum import IntEnum


class Mode(IntEnum):
    STABILIZE = 0
    ACRO = 1
    ALT_HOLD = 2
    AUTO = 3
    GUIDED = 4
    LOITER = 5
    RTL = 6
    CIRCLE = 7
    LAND = 9
    DRIFT = 11
    SPORT = 13
    FLIP = 14
    AUTOTUNE = 15
    POSHOLD = 16
    BRAKE = 17
    THROW = 18
    AVOID_ADSB = 19
    GUIDED_NOGPS = 20
    SMART_RTL = 21
    FLOWHOLD = 22
    FOLLOW = 23
    ZIGZAG = 24
    SYSTEMID = 25
    AUTOROTATE = 26
    AUTO_RTL = 27
    TURTLE = 28


#: Modes that fly on the position estimate: with motors armed, switching to them needs a good EKF.
NEEDS_POSITION = frozenset(
    {Mode.AUTO, Mode.GUIDED, Mode.LOITER, Mode.RTL, Mode.CIRCLE, Mode.DRIFT, Mode.POSHOLD, Mode.BRAKE,
     Mode.THROW, Mode.AVOID_ADSB, Mode.SMART_RTL, Mode.FOLLOW, Mode.ZIGZAG, Mode.AUTO_RTL}
)

#: Modes a ground station may arm in (RTL, LAND, CIRCLE and the like refuse: "Mode not armable").
ARMABLE = frozenset(
    {Mode.STABILIZE, Mode.ACRO, Mode.ALT_HOLD, Mode.AUTO, Mode.GUIDED, Mode.LOITER, Mode.DRIFT, Mode.SPORT,
     Mode.POSHOLD, Mode.GUIDED_NOGPS, Mode.FLOWHOLD, Mode.ZIGZAG, Mode.SYSTEMID, Mode.TURTLE, Mode.THROW}
)

#: Modes whose controller holds position in the air when given nothing else to do.
HOLDS_POSITION = frozenset(
    {Mode.GUIDED, Mode.LOITER, Mode.POSHOLD, Mode.BRAKE, Mode.CIRCLE, Mode.ALT_HOLD, Mode.FOLLOW,
     Mode.ZIGZAG, Mode.AVOID_ADSB, Mode.GUIDED_NOGPS, Mode.FLOWHOLD, Mode.SPORT, Mode.DRIFT}
)

#: Modes with no automatic throttle: in the air, with the sticks centred and throttle low, the copter sinks.
MANUAL_THROTTLE = frozenset({Mode.STABILIZE, Mode.ACRO, Mode.FLIP, Mode.AUTOTUNE, Mode.SYSTEMID, Mode.TURTLE})

#: Modes in which ArduCopter's horizontal position controller can run (base_mode's guided flag).
POSITION_CONTROLLED = frozenset(
    {Mode.AUTO, Mode.GUIDED, Mode.LOITER, Mode.RTL, Mode.CIRCLE, Mode.POSHOLD, Mode.BRAKE, Mode.SMART_RTL,
     Mode.FOLLOW, Mode.ZIGZAG, Mode.AVOID_ADSB, Mode.AUTO_RTL, Mode.LAND}
)


def is_known(number: int) -> bool:
    return number in Mode._value2member_map_


def name_of(number: int) -> str:
    return Mode(number).name if is_known(number) else f"MODE({number})"
