"""Run an ASGI app (the scripted model, the fault proxy) with uvicorn on 127.0.0.1.

`BackgroundServer` serves in a thread of this process (tests, `parity conform --matrix`);
`serve_forever` serves in the foreground (the processes `parity local up --faults` starts).
Both bind to loopback only.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _config(app: Any, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=HOST, port=port, log_level="warning", access_log=False, lifespan="off"
    )


class BackgroundServer:
    """Serve `app` on 127.0.0.1 in a daemon thread for the duration of a `with` block.

    `url` is `http://127.0.0.1:<port>`; the port is free when chosen (0 = pick one). The
    server is answering when `__enter__` returns, and stopped when `__exit__` returns.
    """

    def __init__(self, app: Any, port: int = 0, startup_timeout_s: float = 10.0) -> None:
        self.port = port or _free_port()
        self._server = uvicorn.Server(_config(app, self.port))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._timeout = startup_timeout_s

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def serve_forever(app: Any, port: int) -> None:
    """Serve `app` on 127.0.0.1:`port` in the foreground until SIGINT/SIGTERM."""
    uvicorn.Server(_config(app, port)).run()
