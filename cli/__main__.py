"""`python -m postlab.cli` runs the command line."""

from postlab.cli.entry import main

main()
