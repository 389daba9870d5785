"""Helpers of bench_provisioning.py: random panel faults, per-route counts, audits, workers.

- ``RandomFaults``: a ``FaultInjector`` that also fails a fraction of requests at random
  (the simulator's own faults match a count of requests, not a probability).
- ``route_table``: panel calls grouped by method and normalised route, per server.
- ``audit``: duplicates and orphans on the simulated panel against the portal database.
- ``WorkerPool``: real Celery worker processes that can be SIGKILLed whole and replaced.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import signal
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from panel_simulator.faults import Fault, FaultInjector

# Creates whose reply can be lost: the panel commits, the caller sees nginx's 504.
CREATE_ROUTES = re.compile(
    r"^/api/application/(users|servers|nodes/\d+/allocations)$",
)


class RandomFaults(FaultInjector):
    """Explicit faults first (as FaultInjector); then, while ``enabled``, each request gets
    a 5xx with probability ``p_5xx`` (json 500, html 502, html 503 in turn at random), a read
    timeout (handled, reply after ``stall`` s) with ``p_timeout``, and a create a lost reply
    with ``p_lost``."""

    def __init__(
        self, *, p_5xx: float, p_timeout: float, p_lost: float, stall: float, seed: int
    ) -> None:
        super().__init__()
        self.enabled = False
        self.p_5xx, self.p_timeout, self.p_lost = p_5xx, p_timeout, p_lost
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._errors = [
            Fault("status", status=500, body="json", times=None),
            Fault("status", status=502, body="html", times=None),
            Fault("status", status=503, body="html", times=None),
        ]
        self._timeout = Fault("read_timeout", seconds=stall, times=None)
        self._lost = Fault("lost_reply", status=504, times=None)
        self.injected: Counter[str] = Counter()

    def take(self, method: str, path: str) -> Fault | None:
        fault = super().take(method, path)
        if fault is not None or not self.enabled:
            return fault
        create = method.upper() == "POST" and bool(CREATE_ROUTES.match(path))
        with self._rng_lock:
            roll = self._rng.random()
            if roll < self.p_5xx:
                fault = self._rng.choice(self._errors)
                label = f"{fault.status} {fault.body}"
            elif roll < self.p_5xx + self.p_timeout:
                fault, label = self._timeout, "read timeout"
            elif create and roll < self.p_5xx + self.p_timeout + self.p_lost:
                fault, label = self._lost, "lost reply"
            else:
                return None
            self.injected[label] += 1
            self.injected[f"{label} on {route_of(method, path)}"] += 1
        return fault


_NUMBER = re.compile(r"^\d+$")


def route_of(method: str, path: str) -> str:
    """``GET /api/application/servers/12`` -> ``GET /api/application/servers/{id}``."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    out: list[str] = []
    for index, part in enumerate(parts):
        if index and parts[index - 1] == "external":
            out.append("{external_id}")
        elif _NUMBER.match(part):
            out.append("{id}")
        elif parts[:2] == ["api", "client"] and index == 3 and parts[2] == "servers":
            out.append("{identifier}")
        else:
            out.append(part)
    return f"{method.upper()} /{'/'.join(out)}"


def _bucket(status: int) -> str:
    if status == 0:
        return "none"
    if status == 429:
        return "429"
    return f"{status // 100}xx"


def route_table(calls: list[tuple[str, str, int]], servers: int) -> list[str]:
    """Lines: calls per route (per server and by reply status), then the total."""
    per_route: dict[str, Counter[str]] = defaultdict(Counter)
    for method, path, status in calls:
        counter = per_route[route_of(method, path)]
        counter["calls"] += 1
        counter[_bucket(status)] += 1
    columns = ["2xx", "4xx", "5xx", "429", "none"]
    width = max([len(route) for route in per_route] + [len("total")])
    per = max(servers, 1)
    lines = [
        f"  {'route':<{width}} {'calls':>6} {'/server':>8} "
        + " ".join(f"{c:>5}" for c in columns)
        + "   (none = no reply: read timeout)"
    ]
    total: Counter[str] = Counter()
    for route, counter in sorted(per_route.items(), key=lambda item: -item[1]["calls"]):
        total.update(counter)
        lines.append(_row(route, counter, per, width, columns))
    lines.append(_row("total", total, per, width, columns))
    return lines


def _row(name: str, counter: Counter[str], per: int, width: int, columns: list[str]) -> str:
    return f"  {name:<{width}} {counter['calls']:>6} {counter['calls'] / per:>8.2f} " + " ".join(
        f"{counter[c]:>5}" for c in columns
    )


def audit(sim: Any, *, seeded_allocation_ids: set[int]) -> dict[str, list[str]]:
    """Duplicates and orphans on the simulated panel, compared with the portal database.

    - duplicate servers / users: more than one panel row with the same external_id;
    - orphan servers: external_id not that of an active deployment, or not the panel server
      the deployment points at;
    - orphan users: our external id (portal-user-<pk>) but no PanelAccount points at them;
    - orphan allocations: created on the panel during the run (not seeded), held by no claim;
    - broken: an active deployment whose panel server is missing, or not owned by the
      customer's panel user.
    """
    from provisioning.models import AllocationClaim, PanelAccount
    from servers.models import Deployment, DeploymentStatus

    with sim.panel.lock:
        servers = list(sim.panel.servers.values())
        users = list(sim.panel.users.values())
        allocations = list(sim.panel.allocations.values())
    found: dict[str, list[str]] = defaultdict(list)
    for kind, rows in (("duplicate servers", servers), ("duplicate users", users)):
        by_external = Counter(row.external_id for row in rows if row.external_id)
        for external_id, count in by_external.items():
            if count > 1:
                found[kind].append(f"{external_id} x{count}")

    active = {
        d.external_id: d
        for d in Deployment.objects.filter(status=DeploymentStatus.ACTIVE).select_related(
            "customer__panel_account"
        )
    }
    by_id = {server.id: server for server in servers}
    for server in servers:
        deployment = active.get(server.external_id or "")
        if deployment is None or deployment.panel_server_id != server.id:
            found["orphan servers"].append(f"#{server.id} ({server.external_id})")
    accounts = set(
        PanelAccount.objects.exclude(panel_user_id=None).values_list("panel_user_id", flat=True)
    )
    for user in users:
        if (user.external_id or "").startswith("portal-user-") and user.id not in accounts:
            found["orphan users"].append(f"#{user.id} ({user.external_id})")
    claimed = set(AllocationClaim.objects.values_list("panel_allocation_id", flat=True))
    for allocation in allocations:
        if allocation.id not in seeded_allocation_ids and allocation.id not in claimed:
            found["orphan allocations"].append(
                f"#{allocation.id} {allocation.ip}:{allocation.port} "
                f"(server {allocation.server_id})"
            )
    for deployment in active.values():
        server = by_id.get(deployment.panel_server_id)
        account = getattr(deployment.customer, "panel_account", None)
        if server is None:
            found["broken"].append(f"deployment #{deployment.pk}: panel server missing")
        elif account is None or server.owner_id != account.panel_user_id:
            found["broken"].append(f"deployment #{deployment.pk}: server owner mismatch")
    return found


Report = tuple[list[str], list[tuple[str, bool]]]  # printable lines, (check, passed)


def goal(ok: bool) -> str:
    return "goal met" if ok else "goal NOT met"


def report(out: Callable[[str], None], lines_and_checks: Report) -> list[tuple[str, bool]]:
    lines, checks = lines_and_checks
    for line in lines:
        out(line)
    return checks


def audit_lines(found: dict[str, list[str]]) -> Report:
    """Printable lines of an audit; checks: 0 duplicates, 0 orphans (broken ones included)."""
    kinds = ("duplicate servers", "duplicate users", "orphan servers", "orphan users")
    kinds += ("orphan allocations", "broken")
    lines = [
        f"{kind}: {len(found[kind])}" + (f" {found[kind][:10]}" if found[kind] else "")
        for kind in kinds
    ]
    dupes = sum(len(found[kind]) for kind in kinds[:2])
    orphans = sum(len(found[kind]) for kind in kinds[2:])
    return lines, [("0 duplicates", dupes == 0), ("0 orphans", orphans == 0)]


def fault_lines(faults: RandomFaults, latencies: list[float], all_active: bool) -> Report:
    kinds = ("500 json", "502 html", "503 html", "read timeout", "lost reply")
    lines = ["injected: " + ", ".join(f"{kind} {faults.injected[kind]}" for kind in kinds)]
    for label, number in sorted(faults.injected.items()):
        if " on " in label:
            lines.append(f"  {label}: {number}")
    late = [v for v in latencies if v > 300]
    within = all_active and not late
    lines.append(
        f"all active within 5 minutes of confirmation: {within} ({len(late)} later; {goal(within)})"
    )
    return lines, [("all active within 5 minutes", within)]


def kill_lines(
    kills: list[tuple[float, int, bool]],
    confirmations: list[dt.datetime],
    activations: list[dt.datetime],
    all_active: bool,
) -> Report:
    """kills: (time.time() of the kill, pid, runs still unfinished then)."""
    during = sum(1 for _, _, unfinished in kills if unfinished)
    lines = [
        f"kills: {len(kills)} (SIGKILL of a whole worker process group, replaced at once), "
        f"{during} while runs were unfinished; pids " + ", ".join(str(k[1]) for k in kills)
    ]
    if kills:
        t0 = min(c.timestamp() for c in confirmations)
        lines.append("  at s after confirmation: " + ", ".join(f"{k[0] - t0:.1f}" for k in kills))
    name = "all active within 120 s of the last kill"
    if not (all_active and kills):
        return [*lines, "not all active: no time from the last kill"], [(name, False)]
    after = max(a.timestamp() for a in activations) - kills[-1][0]
    lines.append(f"all active {after:.1f} s after the last kill ({goal(after <= 120)}: <= 120 s)")
    return lines, [(name, after <= 120)]


class WorkerPool:
    """Celery workers on the provisioning queue, each in its own process group, so a kill
    takes the whole worker (a prefork parent and its children) at once."""

    def __init__(
        self, *, root: Path, env: dict[str, str], pool: str, concurrency: int, log_dir: Path
    ) -> None:
        self.root, self.env, self.pool, self.concurrency = root, env, pool, concurrency
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []
        self.started = 0

    def start(self) -> subprocess.Popen:
        name = f"bench{self.started}"
        self.started += 1
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", self.pool]
        if self.pool != "solo":
            command += ["-c", str(self.concurrency)]
        command += ["-Q", "provisioning", "-l", "warning", "-n", f"{name}@%h"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            command,
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def kill_one(self, rng: random.Random) -> int:
        """SIGKILL a random live worker's whole process group; return its pid."""
        proc = rng.choice([p for p in self.procs if p.poll() is None])
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        self.procs.remove(proc)
        return proc.pid

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()
