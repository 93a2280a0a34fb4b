"""The package's version: one line that the API (facerec.__version__), pyproject.toml and MQTT discovery read."""

__version__ = "0.1.0"
