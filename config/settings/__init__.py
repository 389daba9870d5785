"""Settings split by concern; `config/django/*.py` composes them per environment."""
