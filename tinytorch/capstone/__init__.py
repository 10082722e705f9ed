"""The capstone (chapter 20): optimise a trained course model under a stated budget.

``tasks`` (what is optimised, the held-out data), ``scoring`` (the submission schema, writing,
scoring, the leaderboard) and ``recipe`` (the learner's optimisation: prune, fine-tune,
quantize). ``jsonschema`` is imported only when a submission is checked.
"""
from .tasks import TASKS, Task, get_task, build_digits_cnn, build_digits_mlp
from .scoring import (SCHEMA, FORMAT, SubmissionError, Constraint, ScoreResult,
                      validate_submission, write_submission, load_submission, score,
                      leaderboard, rebuild_model, model_spec, load_model, accuracy)
from .recipe import fine_tune, prunable_layers, shrink, optimise

submit = write_submission   # the short name the command line uses
