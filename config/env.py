"""The one django-environ `Env` of the project, and the project root.

Values come from the process environment, then from a `.env` file at the repo root (if any).
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

_dotenv = BASE_DIR / ".env"
if _dotenv.is_file():
    environ.Env.read_env(str(_dotenv), overwrite=False)
