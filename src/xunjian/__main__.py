"""``python -m xunjian`` runs the ``xunjian`` command (workers are started this way in tests)."""

from xunjian.cli import main

main()
