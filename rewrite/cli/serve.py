"""The ``serve`` subcommand: the local web playground (docs/web.md), its options and limits.

Starlette and uvicorn (the optional extra ``tracegrad[web]``) are imported only when the server
starts, so the rest of the command line works without them.

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers(dest="cmd")
>>> add_parser(sub)
>>> args = sub.choices["serve"].parse_args(["--port", "8001"])
>>> config_from(args)["settings"].seconds, args.host, args.port
(5.0, '127.0.0.1', 8001)
"""

from __future__ import annotations

import sys

from ..errors import TracegradError

#: the one line printed when the web extra is missing
MISSING = "tracegrad: error: serve needs the web extra: pip install 'tracegrad[web]'"


def add_parser(sub) -> None:
    """The ``serve`` sub-parser (called by :func:`rewrite.cli.main.build_parser`)."""
    from ..web.settings import Settings

    d = Settings()
    sp = sub.add_parser("serve", help="start the local web playground (needs tracegrad[web])",
                        description="Serve the playground page and its JSON API (docs/web.md). "
                        "Every request runs in a worker process under the limits below; a request "
                        "past its deadline has its worker killed and replaced.")
    sp.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only)")
    sp.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sp.add_argument("--open", action="store_true", help="open the page in a web browser")
    g = sp.add_argument_group("limits per request")
    g.add_argument("--workers", type=int, default=2, metavar="N",
                   help="worker processes, each running one request at a time (default 2)")
    g.add_argument("--timeout", type=float, default=d.seconds, metavar="SECONDS",
                   help=f"engine time limit of a derivation (default {d.seconds:g})")
    g.add_argument("--deadline", type=float, default=20.0, metavar="SECONDS",
                   help="wall-clock deadline of a request; past it the worker is killed and the "
                   "answer is 504 (default 20)")
    g.add_argument("--max-enodes", type=int, default=d.enodes, metavar="N",
                   help=f"e-nodes (default {d.enodes:,})")
    g.add_argument("--max-iterations", type=int, default=0, metavar="N",
                   help="iterations per phase (default: the engine's, 60)")
    g.add_argument("--max-memory", type=float, default=d.memory_mb, metavar="MB",
                   help=f"memory growth of a derivation in MB (default {d.memory_mb:g})")
    g.add_argument("--address-space", type=float, default=3072.0, metavar="MB",
                   help="address-space limit of a worker process in MB (RLIMIT_AS; default 3072; "
                   "0: none)")
    g.add_argument("--max-chars", type=int, default=d.max_chars, metavar="N",
                   help=f"characters of an expression (default {d.max_chars:,})")
    g.add_argument("--max-body", type=int, default=16_384, metavar="BYTES",
                   help="bytes of a request body (default 16,384; larger: 413)")


def config_from(args) -> dict:
    """The fields of the server configuration (:class:`rewrite.web.app.ServeConfig`) the
    options ask for; a TracegradError when one is out of range."""
    from ..web.settings import Settings

    for name in ("workers", "timeout", "deadline", "max_enodes", "max_memory", "max_chars", "max_body"):
        if getattr(args, name) <= 0:
            raise TracegradError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name):g}")
    if args.max_iterations < 0 or args.address_space < 0:
        raise TracegradError("--max-iterations and --address-space must not be negative")
    settings = Settings(max_chars=args.max_chars, seconds=args.timeout, enodes=args.max_enodes,
                        memory_mb=args.max_memory, iterations=args.max_iterations)

    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    hosts = ("127.0.0.1", "localhost", "::1", "[::1]") if loopback else ("*",)
    return {"settings": settings, "workers": args.workers, "deadline": args.deadline,
            "address_space_mb": args.address_space, "max_body": args.max_body, "hosts": hosts}


def cannot_listen(host: str, port: int) -> str | None:
    """Why a server could not listen on ``host:port`` (e.g. the port is taken), or None.

    >>> cannot_listen("127.0.0.1", 0) is None
    True
    """
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        return str(e)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind(address)
        except OSError as e:
            return e.strerror or str(e)
    return None


def cmd_serve(args) -> int:
    """``tracegrad serve [--host H] [--port P] [--open] [limits]``: serve until interrupted."""
    config = config_from(args)
    try:
        import uvicorn

        from ..web.app import ServeConfig, create_app
    except ImportError:
        print(MISSING, file=sys.stderr)
        return 2
    problem = cannot_listen(args.host, args.port)
    if problem:
        print(f"tracegrad: error: cannot listen on {args.host}:{args.port}: {problem}; choose another "
              "port with --port (or stop the program using it)", file=sys.stderr)
        return 2
    app = create_app(ServeConfig(**config))
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}/"
    print(f"tracegrad playground on {url} ({config['workers']} workers; Ctrl-C stops it)",
          file=sys.stderr, flush=True)
    if args.open:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, (url,)).start()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
