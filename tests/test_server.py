"""The socket ``runql serve --workers N`` shares between its workers.

Guards the ~40 ms stall of every multi-worker response: connections accepted on uvicorn's
own shared socket kept Nagle's algorithm (see ``runql.web.server``). The check is the socket
option itself, not a timing.
"""

from __future__ import annotations

import asyncio
import socket

from runql.web.server import APP, TCPConfig
from tests.waiting import DEADLINE


async def test_connections_accepted_on_the_workers_socket_send_without_delay() -> None:
    config = TCPConfig(APP, factory=True, host="127.0.0.1", port=0, workers=2)
    listener = config.bind_socket()
    accepted: asyncio.Queue[int] = asyncio.Queue()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.put_nowait(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        nodelay = await asyncio.wait_for(accepted.get(), timeout=DEADLINE)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert nodelay != 0
    assert listener.proto == socket.IPPROTO_TCP
