"""``python -m azr.embedded``: build the embedded model into the cache (same as ``azr build-model``)."""

import typer

from azr.embedded.cli import build_model_command

if __name__ == "__main__":
    typer.run(build_model_command)
