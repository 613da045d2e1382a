"""``wisp-shacira view``: browse a ``.shac`` file in a web browser at any level of detail.

Usage::

    wisp-shacira view FILE.shac [--host 127.0.0.1] [--port 8080]

Serves a viser page: an LOD slider with the bytes that LOD needs and the render
time; images and videos get a log2 zoom from the whole picture to single pixels, pan
by half a view, a centre in image pixels and click-to-centre (only the visible window
is evaluated; images pick the LOD from the zoom with "Auto LOD", coarse levels when
zoomed out), videos a frame slider, scenes an orbit camera rendered by the tracer. On a remote machine, forward the port
(``ssh -L 8080:localhost:8080 HOST``) and open http://localhost:8080. Ctrl-C stops.
A truncated or damaged file shows the levels it fully holds. On a CPU shared with
other work, ``OMP_NUM_THREADS=1`` keeps scene frames fast (small tensor ops lose
more to thread synchronisation than they gain).
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading

from wisp_shacira.cli.options import add_max_memory
from wisp_shacira.errors import ConfigError


def cmd_view(args: argparse.Namespace) -> None:
    """Serve ``args.file`` until interrupted (or for ``--seconds``)."""
    try:
        from wisp_shacira.viewer.app import open_viewer
    except ModuleNotFoundError as exc:
        if exc.name != "viser":
            raise
        raise ConfigError("the viewer needs viser: pip install 'wisp-shacira[viewer]'") from exc
    logging.getLogger("websockets").setLevel(logging.WARNING)
    viewer = open_viewer(args.file, args.host, args.port)
    stream = viewer.model.stream
    if stream.warning():
        print(f"warning: {stream.warning()}", file=sys.stderr)
    print(f"viewing {args.file} ({stream.task}, LOD 1..{stream.available}) at "
          f"http://{args.host}:{viewer.port}  (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``view`` subcommand to ``wisp-shacira``."""
    parser = subparsers.add_parser("view", help="browse a .shac file in a web browser (viser)")
    parser.add_argument("file", help=".shac file (image, video or scene; may be truncated)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for the network)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")
    add_max_memory(parser)
    parser.set_defaults(func=cmd_view)
