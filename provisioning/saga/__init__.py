"""The provisioning saga: steps (saga.steps) driven by a fenced, leased engine (saga.engine)."""
