"""The ``hotpot`` environment: HotPotQA-like multi-hop questions over a generated KB."""

from .env import HotpotEnv
from .kb import Article, KnowledgeBase, Sentence, build_kb
from .questions import PlanStep, Question, build_questions
from .reward import exact_match, f1_score, normalize_answer

__all__ = [
    "Article",
    "HotpotEnv",
    "KnowledgeBase",
    "PlanStep",
    "Question",
    "Sentence",
    "build_kb",
    "build_questions",
    "exact_match",
    "f1_score",
    "normalize_answer",
]
