"""The scores domain: toxicity, heuristic bot scores, the rule filter, human-only posts."""

import dagster as dg

from botpipeline.defs.scores.bot_scores import bot_scores, rule_filter
from botpipeline.defs.scores.human_posts import human_posts
from botpipeline.defs.scores.label_evaluation import label_evaluation
from botpipeline.defs.scores.oasis_scores import (simulated_bot_probability, simulated_bot_scores,
                                                  simulated_persona_evaluation,
                                                  simulated_rule_filter)
from botpipeline.defs.scores.toxicity import ToxicityModel, toxicity_scores

defs = dg.Definitions(assets=[toxicity_scores, bot_scores, rule_filter, human_posts,
                              label_evaluation, simulated_bot_scores, simulated_rule_filter,
                              simulated_bot_probability, simulated_persona_evaluation],
                      resources={"toxicity_model": ToxicityModel()})
