"""`llm-gateway keys ... --gateway URL` and `llm-gateway spend --gateway URL`: the same
commands, over a running gateway's admin API instead of the store, for operators
who cannot reach the gateway's SQLite file or Redis. The admin key comes from
`GATEWAY_ADMIN_KEY` (or the first of `GATEWAY_ADMIN_KEYS`), never from the command
line (it would show in `ps` and shell history). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.spend import report, report_formats
from gateway.spend.budgets import Budget, to_nanos
from gateway.spend.windows import zone

ENV_KEY = "GATEWAY_ADMIN_KEY"
ENV_KEYS = "GATEWAY_ADMIN_KEYS"


class RemoteError(Exception):
    """The gateway could not be reached, or answered with an error (its message)."""


def admin_key(environ: Mapping[str, str]) -> str | None:
    single = environ.get(ENV_KEY, "").strip()
    if single:
        return single
    listed = [k.strip() for k in environ.get(ENV_KEYS, "").split(",") if k.strip()]
    return listed[0] if listed else None


class AdminClient:
    def __init__(self, base_url: str, key: str, timeout_s: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: Any = None,
             query: Mapping[str, str] | None = None) -> Any:
        url = self.base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={
            "authorization": f"Bearer {self.key}", "content-type": "application/json",
            "accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RemoteError(_message(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(f"cannot reach the gateway at {self.base_url}: {reason}") from None


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(exc.read())["error"]
        return f"the gateway answered {exc.code}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"the gateway answered {exc.code} {exc.reason}"


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    key = admin_key(environ)
    if key is None:
        print(f"error: --gateway needs an admin key in ${ENV_KEY} (or ${ENV_KEYS})",
              file=sys.stderr)
        return 2
    client = AdminClient(args.gateway, key)
    try:
        if args.command == "spend":
            return _spend(args, client)
        command = args.keys_command
        if command == "create":
            return _create(args, client)
        if command in ("revoke", "rotate"):
            return _change(args, client, command)
        return _list(client)
    except RemoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _create(args: argparse.Namespace, client: AdminClient) -> int:
    body: dict[str, Any] = {"alias": args.alias, "team": args.team}
    for flag, name in ((args.budget_usd_per_day, "budget_usd_per_day"),
                       (args.budget_usd_per_month, "budget_usd_per_month")):
        if flag is not None:
            body[name] = flag
    if args.models:
        body["allowed_models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.expires_in_days is not None:
        body["expires_in_s"] = float(args.expires_in_days) * 86400
    created = client.call("POST", "/admin/keys", body)
    if args.quiet:
        print(created["key"])
        return 0
    print(f"created key '{created['alias']}' (team {created['team']}) on {client.base_url}")
    print(created["key"])
    print("This is the only time the key is shown: the gateway stores only its SHA-256. "
          "It works from the next request on.")
    return 0


def _change(args: argparse.Namespace, client: AdminClient, command: str) -> int:
    alias = urllib.parse.quote(args.alias, safe="")
    answer = client.call("POST", f"/admin/keys/{alias}/{command}")
    if command == "revoke":
        print(f"revoked key '{args.alias}'; the gateway refuses it from the next request on")
        return 0
    if args.quiet:
        print(answer["key"])
        return 0
    print(f"rotated key '{args.alias}': the old secret no longer works; the new one (shown once):")
    print(answer["key"])
    return 0


def _list(client: AdminClient) -> int:
    keys = client.call("GET", "/admin/keys")["keys"]
    if not keys:
        print("no keys: the gateway runs open (anyone can call it)")
        return 0
    rows = [["alias", "team", "source", "status", "budget/day", "budget/month", "models", "expires"]]
    for k in keys:
        rows.append([k["alias"], k["team"], k["source"], k["status"], _money(k["budget_usd_per_day"]),
                     _money(k["budget_usd_per_month"]),
                     "all" if k["allowed_models"] is None else ",".join(k["allowed_models"]),
                     _date(k["expires_at"])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _spend(args: argparse.Namespace, client: AdminClient) -> int:
    query = {"by": args.by, "window": args.window}
    if args.since:
        query["since"] = args.since
    if getattr(args, "until", None):
        query["until"] = args.until
    answer = client.call("GET", "/admin/spend", query=query)
    summary = report.Summary([_row(r) for r in answer["rows"]], answer["pending_calls"],
                             to_nanos_float(answer["pending_usd"]))
    per_group = {r["group"]: _budget(r["budget"]) for r in answer["rows"] if r["budget"]}
    total = answer["total"]["budget"]
    title = (f"Spend by {answer['by']}, {answer['label']} ({answer['timezone']}), "
             f"from {client.base_url}")
    print(report_formats.render(getattr(args, "format", "table"), summary, answer["by"], title,
                                per_group, _budget(total) if total else None))
    return 0


def _row(data: Mapping[str, Any]) -> report.Row:
    return report.Row(data["group"], data["calls"], data["input_tokens"], data["output_tokens"],
                      data["cached_tokens"], to_nanos_float(data["cost_usd"]),
                      # absent from a gateway older than these columns
                      data.get("cache_write_tokens", 0), data.get("cache_write_1h_tokens", 0),
                      data.get("reasoning_tokens", 0), data.get("unpriced_calls", 0),
                      *(data.get(name, 0) for name in report.MEDIA_TOKENS))


def _budget(data: Mapping[str, Any]) -> Budget:
    return Budget(name=data["name"], scope="", target=None, window=data["window"],
                  limit_nanos=to_nanos_float(data["limit_usd"]), action="block", tz=zone("UTC"))


def to_nanos_float(usd: float) -> int:
    return to_nanos(Decimal(str(usd)))


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _date(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
