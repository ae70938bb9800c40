"""A fake KoboldCpp for development: a real HTTP server speaking KoboldCpp 1.76's wire format
(and the later forms), with scripted delays and faults. Used by the tests and the benchmarks;
`python -m kobold_fake --port 5001` runs it standalone for manual testing."""

from kobold_fake.script import Generation, Outcome, Recorded, Script
from kobold_fake.server import FakeKobold

__all__ = ["FakeKobold", "Generation", "Outcome", "Recorded", "Script"]
