import pathlib
import sys

# `reference.py` (the float64 transcriptions of the papers) sits beside the tests.
sys.path.insert(0, str(pathlib.Path(__file__).parent))
