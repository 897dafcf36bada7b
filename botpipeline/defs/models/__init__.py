"""The learned bot model: training, per-date probabilities, evaluation on label sets."""

import dagster as dg

from botpipeline.defs.models.automation import (bot_model_job, label_sets_sensor,
                                                learned_scores_job, model_evaluation_job)
from botpipeline.defs.models.bot_classifier import bot_classifier
from botpipeline.defs.models.bot_probability import bot_probability
from botpipeline.defs.models.model_evaluation import model_evaluation

defs = dg.Definitions(
    assets=[bot_classifier, bot_probability, model_evaluation],
    jobs=[bot_model_job, learned_scores_job, model_evaluation_job],
    # The learned scores and evaluations follow the model through automation conditions
    # (defs/governance.py); the sensor adds label sets and re-evaluates changed ones.
    sensors=[label_sets_sensor])
