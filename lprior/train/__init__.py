"""Training: the generic resumable loop, checkpoints, and the nested posterior's GAN-style steps."""

from lprior.train.checkpoint import Checkpointer, CheckpointError
from lprior.train.loop import fit

__all__ = ["CheckpointError", "Checkpointer", "fit"]
