"""Names and defaults shared by the core and the CLI, listed in one place."""

from __future__ import annotations

DEFAULT_SERVER = "http://localhost:8887"

ENV_SERVER = "FORGE_URL"
ENV_TOKEN = "FORGE_TOKEN"
ENV_API = "FORGE_API"
ENV_PROFILE = "FORGE_PROFILE"
ENV_CACERT = "FORGE_CACERT"
ENV_DEBUG = "FORGECTL_DEBUG"
ENV_CONFIG_DIR = "FORGECTL_CONFIG_DIR"
ENV_KEYRING_TIMEOUT = "FORGECTL_KEYRING_TIMEOUT"
#: ``FORGECTL_TRANSPORT=websockets`` streams over websockets' asyncio client instead
#: of forgectl's own sans-I/O driver (:mod:`forgectl.transport.sansio`): an escape hatch, and
#: the baseline of the benchmarks. A proxy in the environment selects it too.
ENV_TRANSPORT = "FORGECTL_TRANSPORT"

#: Service name of the keyring entries (the user name is the normalized server URL).
KEYRING_SERVICE = "forgectl"

#: The spec's heartbeat: an app-level {"type":"ping"} every 30 s ...
DEFAULT_PING_INTERVAL = 30.0
#: ... and a peer silent for 60 s is dead.
DEFAULT_STALE_TIMEOUT = 60.0
#: The spec's reconnection strategy: 1 s, doubling, capped at 30 s.
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 30.0
#: How long a WebSocket handshake may take before we call the server unreachable.
DEFAULT_OPEN_TIMEOUT = 10.0
#: Without --follow, the backlog counts as complete once the server has been quiet
#: this long (the live streams have no end-of-history marker).
DEFAULT_SETTLE = 0.5

#: diff: how long to wait for the server's first diff update (computing a big
#: attempt's diff takes the real server seconds).
DEFAULT_FIRST_WAIT = 10.0

#: Largest message accepted. Diffs of big attempts run to many MiB, and the 1 MiB
#: default of websockets would cut them off; 256 MiB still stops a runaway peer from
#: exhausting memory.
MAX_MESSAGE_SIZE = 256 * 1024 * 1024

#: ``logs --tool-output``: how much of a coding agent's tool output pretty mode shows
#: (the first and last lines, all of it, none); see forgectl/output/agent.py.
TOOL_OUTPUT_CHOICES = ("compact", "all", "none")
