"""The shared store for several gateway replicas: budgets, ledger and keys in Redis.

Every budget decision is one Lua script, which Redis runs atomically: the
reserve script checks every blocking budget and holds the worst case on all of
them, or refuses, with nothing in between for another replica to race; the
settle script releases the hold, adds the real cost and appends the ledger entry
in the same step, so budget counters and ledger never disagree. A reservation
is kept with an expiry: if its gateway dies, the periodic recovery script
charges it at its worst case (ledger status `unsettled`) instead of holding the
budget until the window ends. Standalone Redis (one shard) is assumed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis

from gateway.spend.budgets import Budget, Refusal
from gateway.spend.keys import KeyRecord
from gateway.spend.ledger import LedgerEntry, Reservation
from gateway.spend.windows import Window

_log = logging.getLogger(__name__)
COUNTER_TTL_S = 40 * 86400  # longer than any window, so a window's counter outlives it

RESERVE = """
local n = #KEYS - 2
local amount = tonumber(ARGV[1])
local levels = {}
for i = 1, n do
  local v = redis.call('HMGET', KEYS[i + 2], 'spent', 'reserved')
  local spent = tonumber(v[1]) or 0
  local reserved = tonumber(v[2]) or 0
  local limit = tonumber(ARGV[4 + i])
  if limit >= 0 and spent + reserved + amount > limit then
    return {i, spent, reserved}
  end
  levels[i] = spent
end
local names = {}
for i = 1, n do
  redis.call('HINCRBY', KEYS[i + 2], 'reserved', ARGV[1])
  redis.call('EXPIRE', KEYS[i + 2], ARGV[4])
  names[i] = KEYS[i + 2]
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), KEYS[2])
redis.call('HSET', KEYS[2], 'amount', ARGV[1], 'budgets', table.concat(names, '\\n'),
           'journal', ARGV[3])
return {0, unpack(levels)}
"""

SETTLE = """
local held = 0
if ARGV[1] == '1' then
  held = redis.call('ZREM', KEYS[1], KEYS[2])
  redis.call('DEL', KEYS[2])
  if held == 0 then
    return {0}
  end
end
local out = {1}
for i = 4, #KEYS do
  if held == 1 then
    redis.call('HINCRBY', KEYS[i], 'reserved', ARGV[2])
  end
  out[#out + 1] = redis.call('HINCRBY', KEYS[i], 'spent', ARGV[3])
  redis.call('EXPIRE', KEYS[i], ARGV[5])
end
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[4])
end
return out
"""

RECOVER = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[1]))
for _, rkey in ipairs(ids) do
  local h = redis.call('HMGET', rkey, 'amount', 'budgets', 'journal')
  if h[1] then
    for bkey in string.gmatch(h[2] or '', '[^\\n]+') do
      redis.call('HINCRBY', bkey, 'reserved', '-' .. h[1])
      redis.call('HINCRBY', bkey, 'spent', h[1])
    end
    redis.call('XADD', KEYS[2], '*', 'e', h[3])
  end
  redis.call('DEL', rkey)
  redis.call('ZREM', KEYS[1], rkey)
end
return #ids
"""

CREATE_KEY = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

REVOKE_KEY = """
local sha = redis.call('HGET', KEYS[2], ARGV[1])
if not sha then
  return 0
end
local record = cjson.decode(redis.call('HGET', KEYS[1], sha))
record['revoked_at'] = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], sha, cjson.encode(record))
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


class RedisStore:
    """Budgets, ledger, keys and notice claims under one key prefix."""

    def __init__(self, url: str, prefix: str = "llmgw:", *, reservation_ttl_s: float = 3600.0
                 ) -> None:
        self.url = url
        self.prefix = prefix
        self.reservation_ttl_ms = int(reservation_ttl_s * 1000)
        self.client: Any = aioredis.Redis.from_url(url, socket_connect_timeout=5)
        self._reserve = self.client.register_script(RESERVE)
        self._settle = self.client.register_script(SETTLE)
        self._recover = self.client.register_script(RECOVER)
        self._create_key = self.client.register_script(CREATE_KEY)
        self._revoke_key = self.client.register_script(REVOKE_KEY)
        self.ledger_key = f"{prefix}ledger"
        self.res_key = f"{prefix}res"
        self.keys_key = f"{prefix}keys"
        self.alias_key = f"{prefix}key_alias"

    async def open(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()

    def counter_key(self, budget: Budget, window: Window) -> str:
        return f"{self.prefix}b:{budget.name}:{window.id}"

    # --- budgets and ledger ---------------------------------------------------------
    async def reserve(self, res: Reservation) -> tuple[Refusal | None, list[int]]:
        """Hold the worst case on every budget atomically; returns (refusal, spent levels)."""
        counters = [self.counter_key(b, w) for b, w in zip(res.budgets, res.windows, strict=True)]
        limits = [str(b.limit_nanos if b.blocks else -1) for b in res.budgets]
        journal = orjson.dumps(res.journal.as_dict())
        reply = await self._reserve(
            keys=[self.res_key, f"{self.res_key}:{res.id}", *counters],
            args=[str(res.amount_nanos), str(self.reservation_ttl_ms), journal,
                  str(COUNTER_TTL_S), *limits])
        status = int(reply[0])
        if status == 0:
            return None, [int(v) for v in reply[1:]]
        res.held = False
        index = status - 1
        return Refusal(res.budgets[index], res.windows[index], int(reply[1]), int(reply[2]),
                       res.amount_nanos), []

    async def settle(self, res: Reservation | None, counters: Sequence[str], actual_nanos: int,
                     entry: LedgerEntry | None) -> list[int] | None:
        """Release the hold, add the real cost, append the entry; None if the hold had
        expired (its worst case was already charged by recovery)."""
        held = res is not None and res.held
        if res is not None:
            res.held = False
        amount = res.amount_nanos if res is not None else 0
        res_key = f"{self.res_key}:{res.id}" if res is not None else f"{self.res_key}:none"
        reply = await self._settle(
            keys=[self.res_key, res_key, self.ledger_key, *counters],
            args=["1" if held else "0", str(-amount), str(actual_nanos),
                  orjson.dumps(entry.as_dict()) if entry is not None else b"",
                  str(COUNTER_TTL_S)])
        if int(reply[0]) == 0:
            return None
        return [int(v) for v in reply[1:]]

    async def recover(self, limit: int = 100) -> int:
        """Charge reservations whose gateway died (expired holds) at their worst case."""
        return int(await self._recover(keys=[self.res_key, self.ledger_key], args=[limit]))

    async def levels(self, counters: Sequence[str]) -> list[tuple[int, int]]:
        """(spent, reserved) of each counter key."""
        if not counters:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for key in counters:
                pipe.hmget(key, "spent", "reserved")
            replies = await pipe.execute()
        return [(int(s or 0), int(r or 0)) for s, r in replies]

    async def claim(self, claim: str, ttl_s: float) -> bool:
        return bool(await self.client.set(f"{self.prefix}notice:{claim}", b"1", nx=True,
                                          ex=max(1, int(ttl_s))))

    async def entries(self, start: float, end: float) -> AsyncIterator[LedgerEntry]:
        """Ledger entries whose attempt started in [start, end)."""
        # Stream ids are append times, never before the attempt started; an entry can be
        # appended much later (recovery after downtime), so scan to the end of the stream.
        cursor = f"{max(0, int(start * 1000) - 1)}"
        while True:
            batch = await self.client.xrange(self.ledger_key, min=cursor, max="+", count=5000)
            if not batch:
                return
            for _stream_id, fields in batch:
                entry = LedgerEntry.from_dict(orjson.loads(fields[b"e"]))
                if start <= entry.ts < end:
                    yield entry
            last = batch[-1][0].decode()
            cursor = "(" + last

    # --- keys -----------------------------------------------------------------------
    async def load_keys(self) -> list[KeyRecord]:
        raw = await self.client.hgetall(self.keys_key)
        records = [_record(sha.decode(), orjson.loads(value)) for sha, value in raw.items()]
        return sorted(records, key=lambda r: r.created_at or 0)

    async def create_key(self, record: KeyRecord) -> bool:
        data = {"alias": record.alias, "team": record.team,
                "created_at": record.created_at or time.time(), "revoked_at": None,
                "allowed_models": sorted(record.allowed_models) if record.allowed_models else None,
                "budget_usd_per_day": _text(record.budget_usd_per_day),
                "budget_usd_per_month": _text(record.budget_usd_per_month),
                "expires_at": record.expires_at}
        return bool(await self._create_key(keys=[self.keys_key, self.alias_key],
                                           args=[record.alias, record.key_sha256,
                                                 orjson.dumps(data)]))

    async def revoke_key(self, alias: str, now: float) -> bool:
        return bool(await self._revoke_key(keys=[self.keys_key, self.alias_key],
                                           args=[alias, str(now)]))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _record(sha: str, data: dict[str, Any]) -> KeyRecord:
    models = data.get("allowed_models")
    day, month = data.get("budget_usd_per_day"), data.get("budget_usd_per_month")
    return KeyRecord(alias=data["alias"], team=data["team"], key_sha256=sha,
                     created_at=data.get("created_at"), revoked_at=data.get("revoked_at"),
                     allowed_models=frozenset(models) if models else None,
                     budget_usd_per_day=Decimal(day) if day else None,
                     budget_usd_per_month=Decimal(month) if month else None,
                     expires_at=data.get("expires_at"))
