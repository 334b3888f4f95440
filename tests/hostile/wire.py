"""Raw-socket helpers for the hostile tests: bytes on a TCP connection, no HTTP client
to tidy them up, and a gateway subprocess whose CPU time can be read."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass

SIM_CONFIG = """
server: {server}
providers:
  sim: {{kind: mock, mock: {{latency_ms: 1, ms_per_chunk: 0, jitter: 0}}}}
models:
  gpt-4.1: {{provider: sim, price_per_mtok: {{input: 2.5, output: 8}}}}
  text-embedding-3-small: {{provider: sim, price_per_mtok: {{input: 0.02, output: 0}}}}
"""


def sim_config(**server: object) -> str:
    """A config with simulated models and these `server:` settings."""
    return SIM_CONFIG.format(server=json.dumps(server))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_after(self, limit_s: float) -> float:
        """Seconds until the server closes the connection (reading and dropping what it
        sends); raises TimeoutError after `limit_s`."""
        started = time.monotonic()
        async with asyncio.timeout(limit_s):
            try:
                while await self.reader.read(65536):
                    pass
            except ConnectionResetError:  # closed while the client was still sending: a reset
                pass
        return time.monotonic() - started

    async def status_line(self, limit_s: float = 10) -> bytes:
        async with asyncio.timeout(limit_s):
            return (await self.reader.readline()).strip()

    def close(self) -> None:
        self.writer.close()


async def connect(root: str) -> Connection:
    host, port = root.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    return Connection(reader, writer)
