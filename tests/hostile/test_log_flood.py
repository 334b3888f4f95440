"""Threat: filling the gateway's log. A library that warns once per bad item turns one
request into many lines (an 8 KB `baggage` header of malformed entries made
OpenTelemetry's propagator write 180 warnings), and aiohttp logged every malformed
HTTP request as an ERROR with a full traceback: a client could write to the
operator's disk, and bury real errors, as fast as it can send.

The gateway passes at most 10 lines per (logger, level, message) per minute, notes
on the tenth that more are being held back and later how many were, and logs a
malformed request as one INFO line without a traceback. This test floods a real
gateway process and reads its log.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from gateway.lograte import BURST
from tests.hostile.wire import connect, sim_config
from tests.support.process import gateway_process

pytestmark = pytest.mark.integration  # sockets or processes: the slow tier

BAD_BAGGAGE = ",".join(f"bad entry {i} ;;" for i in range(600))[:8000]
GARBAGE = (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
           b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 40,
           b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: nope\r\n\r\n")


async def test_a_flood_of_bad_headers_and_malformed_requests_writes_a_few_lines() -> None:
    """Five requests with an 8 KB malformed baggage header and 30 malformed HTTP requests
    leave a handful of log lines, no ERROR and no traceback."""
    async with gateway_process(sim_config()) as gw:
        async with aiohttp.ClientSession() as http:
            for _ in range(5):
                async with http.get(f"{gw.root}/v1/models",
                                    headers={"baggage": BAD_BAGGAGE}) as resp:
                    assert resp.status == 200
        for _ in range(10):
            for garbage in GARBAGE:
                conn = await connect(gw.root)
                await conn.send(garbage)
                await conn.closed_after(5)
                conn.close()
        await asyncio.sleep(0.3)
        log = gw.log()
    lines = log.splitlines()
    baggage = [line for line in lines if "aggage" in line]
    malformed = [line for line in lines if "malformed HTTP request" in line]
    assert 0 < len(baggage) <= 3 * BURST, log[-3000:]
    assert 0 < len(malformed) <= 3 * BURST
    assert any("more like this are not logged" in line for line in lines)
    assert "Traceback" not in log and " ERROR " not in log
