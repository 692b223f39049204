"""What a camera source is doing now, as the heartbeat and the Gates page report it; a module of its own so that
the service and the store can name it without loading OpenCV and numpy (gate.vision.sources)."""

from __future__ import annotations

from typing import Literal

# "waiting" (no frame yet: a camera not reachable so far), "streaming", "lost" (a camera that gave frames and
# stopped: being reconnected), "ended" (a recording played to its end), "off" (closed by the gate: a stop). A camera
# given up after [camera] max_reconnects stays "waiting" or "lost": it is still away, and the run ends for a restart.
CameraState = Literal["waiting", "streaming", "lost", "ended", "off"]
