"""Chapter 08: training — schedules, clipping, the Trainer loop and checkpoints."""
from .schedule import CosineSchedule
from .clipping import clip_grad_norm, clip_grad_value
from .checkpoint import CheckpointError
from .trainer import Trainer

__all__ = ["CosineSchedule", "clip_grad_norm", "clip_grad_value", "Trainer", "CheckpointError"]
