"""The panel check of /readyz (settings.READINESS_CHECKS): one cheap Application API request
through our client, with a short timeout, its answer reused for READINESS_PANEL_CACHE_SECONDS.

Probes can come every second from several orchestrator nodes; the cache keeps them to one panel
request per process per period, inside the shared 240/min budget (the request takes a slot from
the same limiter as every other, and never waits for one: with no slot free the panel was
answering others a moment ago, which is reported as ready).
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.health import CheckResult
from provisioning.pterodactyl import (
    PanelAuthError,
    PanelError,
    PanelPermissionError,
    PanelRateLimited,
    PanelUnavailable,
    PterodactylClient,
)

_lock = threading.Lock()
# (panel URL, monotonic expiry, result)
_cached: tuple[str, float, CheckResult] | None = None


def panel_check_cache_clear() -> None:
    global _cached
    with _lock:
        _cached = None


def _probe() -> CheckResult:
    timeout = float(settings.READINESS_PANEL_TIMEOUT)
    try:
        client = PterodactylClient.for_workers(timeout=(timeout, timeout))
        client.list_locations()
    except ImproperlyConfigured:
        return CheckResult(ok=False, detail="PTERODACTYL_URL or the admin API key is not set")
    except PanelRateLimited:
        return CheckResult(ok=True, detail="rate limited: not probed")
    except PanelAuthError:
        return CheckResult(ok=False, detail="the panel refused the API key")
    except PanelPermissionError:
        return CheckResult(ok=False, detail="the API key may not read locations")
    except PanelUnavailable as exc:
        if exc.status:
            return CheckResult(ok=False, detail=f"the panel answered {exc.status}")
        return CheckResult(ok=False, detail="no reply from the panel")
    except PanelError as exc:
        return CheckResult(ok=False, detail=f"unexpected reply ({type(exc).__name__})")
    return CheckResult(ok=True)


def check_panel() -> CheckResult:
    global _cached
    url = settings.PTERODACTYL_URL or ""
    now = time.monotonic()
    # Held during the probe: threads probing at the same time wait for its answer (one request).
    with _lock:
        if _cached is not None and _cached[0] == url and _cached[1] > now:
            return _cached[2]
        result = _probe()
        ttl = float(settings.READINESS_PANEL_CACHE_SECONDS)
        _cached = (url, time.monotonic() + ttl, result)
        return result
