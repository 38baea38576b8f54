"""One event at a time: a compiled single-step path for programs (daemons, services)
that learn from live events and call `update` from Python once per event
(`OnlineLearner`), and a durable one that journals every event and checkpoints
periodically, so that a restarted process resumes exactly where it stopped
(`DurableLearner`)."""

from alberta_eqx.online._durable import DurableLearner, DurableWriteError
from alberta_eqx.online._journal import JournalError
from alberta_eqx.online._learner import NonFiniteEventError, OnlineLearner, OnlineResult

__all__ = [
    "DurableLearner",
    "DurableWriteError",
    "JournalError",
    "NonFiniteEventError",
    "OnlineLearner",
    "OnlineResult",
]
