"""The phases a joint training run reports as it goes, apart from the training itself: the run's records (and
the analyst pages that show them) read them without the federation extra (Paillier, PSI) the training needs."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]
#: the phases a training run reports (the epochs as "epoch K of N", counting batches over all epochs)
PHASE_PSI = "private set intersection"
PHASE_SHARED = "shared IDs"  # done: the IDs both sides hold, total: the bank's rows
PHASE_SETUP = "encrypted set-up"
PHASE_FINISHED = "finished"
