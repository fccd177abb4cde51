"""`python -m azr` (and `accelerate launch -m azr train ...`) runs the `azr` command line."""

from azr.cli import app

app()
