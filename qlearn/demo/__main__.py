"""``python -m qlearn.demo`` runs the demonstration (see :mod:`qlearn.demo`)."""
import sys

from . import main

sys.exit(main())
