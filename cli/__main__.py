"""`python -m postlab.cli` runs the command line."""

from postlab.cli.app import main

main()
