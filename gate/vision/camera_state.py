"""What a camera source is doing now, as the heartbeat and the Gates page report it; a module of its own so that
the service and the store can name it without loading OpenCV and numpy (gate.vision.sources)."""

from __future__ import annotations

from typing import Literal

# "waiting" (no frame yet: a camera not reachable so far), "streaming", "lost" (a camera that gave frames and
# stopped: being reconnected, or given up after [camera] max_reconnects), "ended" (a recording played to its end,
# or a camera closed)
CameraState = Literal["waiting", "streaming", "lost", "ended"]
