"""`python -m stmails` runs the command line."""

from stmails.cli.main import main

main()
