"""The ``isvc`` console script (``validate``, ``render``, ``serve``)."""

from pipelines.cli.commands import IMPORT_PATH, load_file, main, render_serve_config, serve_command

__all__ = ["IMPORT_PATH", "load_file", "main", "render_serve_config", "serve_command"]
