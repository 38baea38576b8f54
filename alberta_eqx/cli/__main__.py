"""`python -m alberta_eqx.cli`: the `alberta-eqx` command line."""

from alberta_eqx.cli import main

main()
