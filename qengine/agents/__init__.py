"""Agents that act in an environment: Q-guided, best-of-n by log-prob, and their evaluation."""

from .agent import BaseAgent, BestOfNLogprobAgent, QGuidedAgent, repeated_actions
from .evaluate import AgentResult, bootstrap_ci, format_table, plot_results, run_episodes
from .q_value import QValueModel, candidate_logprobs

__all__ = [
    "AgentResult",
    "BaseAgent",
    "BestOfNLogprobAgent",
    "QGuidedAgent",
    "QValueModel",
    "bootstrap_ci",
    "candidate_logprobs",
    "format_table",
    "plot_results",
    "repeated_actions",
    "run_episodes",
]
