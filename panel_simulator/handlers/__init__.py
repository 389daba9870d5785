"""The simulated panel's HTTP handlers, one module per resource (mixed into PanelSimulator)."""
