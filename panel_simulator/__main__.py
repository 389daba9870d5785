"""``python -m panel_simulator --port 8081``: serve the panel simulator.

Options: --host, --port, --install-delay (seconds, 0 = instant), --latency-ms.
"""

from __future__ import annotations

import argparse

from panel_simulator.wsgi import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Pterodactyl panel simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--install-delay", type=float, default=2.0, help="seconds; 0 = instant")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    serve(args.host, args.port, install_delay=args.install_delay, latency_ms=args.latency_ms)


if __name__ == "__main__":
    main()
