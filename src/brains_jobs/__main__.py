"""`python -m brains_jobs` runs the CLI."""

from .cli import main

main()
