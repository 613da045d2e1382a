"""Browser viewer of ``.shac`` files (``wisp-shacira view``); see :mod:`wisp_shacira.viewer.app`.

viser is an optional dependency (``pip install 'wisp-shacira[viewer]'``), imported
only by :mod:`wisp_shacira.viewer.app`.
"""
from __future__ import annotations

import socket

from wisp_shacira.errors import ConfigError


def check_port(host: str, port: int) -> None:
    """Raise :class:`ConfigError` unless ``port`` can be listened on at ``host``.

    viser would silently move to the next free port, which breaks an SSH tunnel set
    up for the requested one, so the viewer refuses a busy port instead.
    """
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be in 1..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: cannot resolve ({exc.strerror})") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"port {port} on {host} is not available ({exc.strerror}); "
                              f"choose another with --port") from exc
