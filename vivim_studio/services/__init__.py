"""Qt-free jobs the GUI runs in worker threads (and the CLI runs directly): each takes a progress callback
`(done, total)` and a cancel flag (threading.Event or callable), and reports through them only.

    service = InferenceService(checkpoint=None, device="auto")     # None: the bundled default checkpoint
    result = service.propose(document, progress=bar_update, cancel=stop_event)

Torch and vivim_core's model code are imported on first use, never at import time.
"""

from .checkpoints import CheckpointNotFound, find_default_checkpoint, is_vivim_checkpoint
from .inference import InferenceService, ProposalResult, resolve_device
from .jobs import Cancel, Progress, is_cancelled

__all__ = ["InferenceService", "ProposalResult", "resolve_device", "find_default_checkpoint",
           "is_vivim_checkpoint", "CheckpointNotFound", "Progress", "Cancel", "is_cancelled"]
