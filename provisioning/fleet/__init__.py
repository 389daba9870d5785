"""Fleet-wide panel work: pending panel operations and their drain, health checks, drift.

- operations.py: the PanelOperation rows the jobs decide (one open per server) and the drain task
  that works them off within the operations' share of the panel budget.
- health.py: the `health` job (the whole fleet read with list calls, per-server health rows,
  incidents, optional restart of crashed servers).
- drift.py / reconcile.py: billing <-> panel drift detection and repair (the `reconcile` job).
"""
