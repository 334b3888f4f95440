"""The operator's side of the gateway: admin keys, recent calls and traffic, the
operations behind the admin API (`/admin/...`) and the console, and the CLI's
client of that API. Framework-neutral; the edge serves it over HTTP."""
