"""Persona tables for the sandbox: display names, who reacts to whom, profile colours.

Display names follow seed 000 (a template per persona plus 4 hex digits of md5(user id)); the
template is picked by hash instead of ``random.choice`` so re-runs name accounts the same.
Affinities extend the seed's partial table: a persona likes its own kind most, then its
community; mainstream personas rarely engage harmful ones and vice versa.
"""

from __future__ import annotations

NAME_TEMPLATES: dict[str, list[str]] = {
    "benign": ["Alex", "Jordan", "Taylor", "Casey", "Morgan"],
    "recovery_support": ["Hope Coach", "Recovery Guide", "Wellness Advocate"],
    "bullying": ["EdgeLord", "TruthBomb", "RealTalk"],
    "extremist": ["FreedomFighter", "PatriotX", "Awakened"],
    "incel_misogyny": ["RedPillTruth", "BlackPillReality"],
    "ed_risk": ["FitGoals", "DisciplineDaily"],
    "pro_ana": ["ThinspoBabe", "GoalGetter"],
    "misinfo": ["TruthSeeker", "WakeUpNow"],
    "conspiracy": ["DeepTruth", "QuestionAll"],
    "hate_speech": ["NationFirst", "TruePatriot"],
    "gamergate": ["GamerGate99", "AntiWoke"],
    "trad": ["TraditionalValues", "HomesteadMom"],
    "alpha": ["AlphaMindset", "HighValue"],
}
FALLBACK_NAMES = ["User"]

# Communities of personas that engage with each other.
COMMUNITIES: list[set[str]] = [
    {"benign", "recovery_support"},
    {"ed_risk", "pro_ana"},
    {"incel_misogyny", "alpha", "trad"},
    {"misinfo", "conspiracy"},
    {"extremist", "hate_speech", "gamergate", "bullying"},
]
MAINSTREAM = {"benign", "recovery_support"}

# The seed's explicit values win over the community rule.
SEED_AFFINITY: dict[tuple[str, str], float] = {
    ("benign", "benign"): 0.7, ("benign", "recovery_support"): 0.8,
    ("benign", "bullying"): 0.1,
    ("recovery_support", "recovery_support"): 0.9, ("recovery_support", "benign"): 0.6,
    ("recovery_support", "pro_ana"): 0.05,
    ("bullying", "bullying"): 0.4, ("bullying", "extremist"): 0.3, ("bullying", "benign"): 0.2,
}
SAME_PERSONA, SAME_COMMUNITY, MAINSTREAM_TO_HARMFUL, OTHER = 0.8, 0.5, 0.05, 0.1

# Content the seed expects to spread: roots by these personas are renoted.
VIRAL_PERSONAS = ("extremist", "misinfo", "conspiracy")

# Reactions: the strongest affinity gets the first, the weakest the last.
REACTIONS = ("❤", "👍", "👀")

# Avatar/banner colours (RGB) by community; the hash of the username varies the shade.
COLOURS: dict[str, tuple[int, int, int]] = {
    "benign": (66, 133, 244), "recovery_support": (52, 168, 83), "ed_risk": (236, 112, 160),
    "pro_ana": (214, 69, 130), "incel_misogyny": (120, 94, 66), "alpha": (160, 110, 40),
    "trad": (150, 120, 80), "misinfo": (240, 160, 30), "conspiracy": (200, 130, 20),
    "extremist": (150, 30, 30), "hate_speech": (110, 20, 20), "gamergate": (90, 40, 140),
    "bullying": (70, 70, 70),
}


def affinity(viewer: str | None, author: str | None) -> float:
    """How likely ``viewer`` engages with a post by ``author`` (0..1)."""
    if (viewer, author) in SEED_AFFINITY:
        return SEED_AFFINITY[(viewer, author)]
    if viewer == author:
        return SAME_PERSONA
    if any(viewer in c and author in c for c in COMMUNITIES):
        return SAME_COMMUNITY
    if (viewer in MAINSTREAM) != (author in MAINSTREAM):
        return MAINSTREAM_TO_HARMFUL
    return OTHER


def affinity_table(personas: list[str]) -> list[tuple[str, str, float]]:
    """Every (viewer, author, affinity) among ``personas`` (small: personas², not users²)."""
    return [(v, a, affinity(v, a)) for v in personas for a in personas]


def reaction_for(weight: float) -> str:
    return REACTIONS[0] if weight >= SAME_COMMUNITY else REACTIONS[1] if weight >= OTHER \
        else REACTIONS[2]
