"""Makes molecule/shared importable for the scenarios' pytest verifiers (molecule/<scenario>/tests/)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).with_name("shared")))
