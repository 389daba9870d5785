"""An in-memory Pterodactyl panel (Application + Client API) for tests and demos.

    from panel_simulator import PanelSimulator, serve
    sim = PanelSimulator(install_delay=0)          # seeded; sim.seed has ids and keys
    sim.faults.add("lost_reply", method="POST", path=r"/servers$")
    sim.panel.set_wings_failure(sim.seed.eu_node_id, 0)   # Wings down on that node

Serve it: ``python -m panel_simulator --port 8081`` or
``python manage.py run_panel_simulator``. In tests: ``panel_simulator.testing``.
"""

from panel_simulator.api import PanelSimulator, SimRequest, SimResponse
from panel_simulator.faults import Fault, FaultInjector
from panel_simulator.panel import ApiError, Panel
from panel_simulator.seed import (
    DEMO_API_KEY,
    DEMO_CLIENT_API_KEY,
    DEMO_NON_ADMIN_API_KEY,
    SeedInfo,
    seed_default,
)
from panel_simulator.wsgi import build_server, make_wsgi_app, serve

__all__ = [
    "DEMO_API_KEY",
    "DEMO_CLIENT_API_KEY",
    "DEMO_NON_ADMIN_API_KEY",
    "ApiError",
    "Fault",
    "FaultInjector",
    "Panel",
    "PanelSimulator",
    "SeedInfo",
    "SimRequest",
    "SimResponse",
    "build_server",
    "make_wsgi_app",
    "seed_default",
    "serve",
]
