"""``python -m al_bench``: see :mod:`al_bench.cli`."""

from al_bench.cli import main

main()
