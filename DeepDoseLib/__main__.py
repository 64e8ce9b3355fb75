"""``python -m DeepDoseLib`` is the ``deepdose`` command."""
import sys

from .cli import main

sys.exit(main())
