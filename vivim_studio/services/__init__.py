"""Qt-free jobs the GUI runs in worker threads (and the CLI runs directly): each takes a progress callback
`(done, total)` and a cancel flag (threading.Event or callable), and reports through them only.

    service = InferenceService(checkpoint=None, device="auto")     # None: the bundled default checkpoint
    result = service.propose(document, progress=bar_update, cancel=stop_event)

    inference.py           proposals (InferenceService)           finetune.py        fine-tune on corrections
    default_checkpoint.py  which checkpoint when none is given    checkpoint_header.py  what a checkpoint says
    demo.py                the demo video                         jobs.py            the progress/cancel contract

Torch and vivim_core's model code are imported on first use, never at import time.
"""

from .checkpoint_header import checkpoint_summary, has_prompt_inputs, is_vivim_checkpoint
from .default_checkpoint import ENV_VARIABLE, CheckpointNotFound, find_default_checkpoint
from .inference import InferenceService, ProposalResult
from .jobs import Cancel, Progress, is_cancelled

__all__ = ["InferenceService", "ProposalResult", "find_default_checkpoint", "is_vivim_checkpoint",
           "checkpoint_summary", "has_prompt_inputs", "CheckpointNotFound", "ENV_VARIABLE", "Progress", "Cancel",
           "is_cancelled"]
