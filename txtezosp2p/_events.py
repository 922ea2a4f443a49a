"""
Logger namespaces and event names, aligned with Octez's structured events
(``src/lib_p2p/p2p_events.ml``, behaviour.md §14).

Every log call of the library passes ``event=<name>`` among its fields, so
that a JSON log sink can be filtered the way Octez operators filter
``p2p.socket`` or ``p2p.connect_handler`` events.  Namespaces are
``txtezosp2p.<octez section>``.
"""

from __future__ import annotations

from twisted.logger import Logger


def logger(section: str) -> Logger:
    """The logger of an Octez event section, e.g. ``logger("p2p.socket")``."""
    return Logger(namespace=f"txtezosp2p.{section}")


# [p2p.socket]
SENDING_AUTHENTICATION = "sending_authentication"
NACK_POINT_WITH_LIST = "nack_point_with_list"
NACK_POINT_NO_POINT = "nack_point_no_point"
CONNECTION_CLOSED = "connection_closed"
SOCKET_READ_ERROR = "socket_read_error"
SOCKET_WRITE_ERROR = "socket_write_error"

# [p2p.connect_handler]
AUTHENTICATE_START = "authenticate_start"
AUTHENTICATE = "authenticate"
AUTHENTICATE_STATUS = "authenticate_status"
AUTHENTICATION_ERROR = "authentication_error"
CONNECTION_REJECTED_BY_PEERS = "connection_rejected_by_peers"
NEW_CONNECTION = "new_connection"
DISCONNECTED = "disconnected"
CONNECT_ERROR = "connect_error"

# [p2p]
ACTIVATE_LAYER = "activate_layer"
ACTIVATE_NETWORK = "activate_network"
SHUTDOWN_WELCOME_WORKER = "shutdown_welcome_worker"
SHUTDOWN_CONNECTION_HANDLER = "shutdown_connection_handler"

# [p2p.welcome]
INCOMING_CONNECTION_ERROR = "incoming_connection_error"

# [files] (no Octez counterpart: Octez leaves crash leftovers in place)
STALE_TEMP_FILES_REMOVED = "stale_temp_files_removed"

# [main] identity (octez-node identity)
IDENTITY_GENERATED = "identity_generated"
IDENTITY_LOADED = "identity_loaded"
