"""The learned bot model: training, per-date probabilities, evaluation on label sets."""

import dagster as dg

from botpipeline.defs.models.automation import (bot_model_job, label_sets_sensor,
                                                learned_scores_job, model_evaluation_job,
                                                reevaluate_on_new_model, rescore_on_new_model,
                                                score_new_features)
from botpipeline.defs.models.bot_classifier import bot_classifier
from botpipeline.defs.models.bot_probability import bot_probability
from botpipeline.defs.models.model_evaluation import model_evaluation

defs = dg.Definitions(
    assets=[bot_classifier, bot_probability, model_evaluation],
    jobs=[bot_model_job, learned_scores_job, model_evaluation_job],
    sensors=[rescore_on_new_model, reevaluate_on_new_model, score_new_features,
             label_sets_sensor])
