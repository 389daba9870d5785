"""The simulated panel's services, one module per resource (mixed into ``Panel``)."""
