"""Policies: propose candidate actions for batches of text states."""

from .base import Candidate, Policy, dedupe
from .scripted import ScriptedPolicy

__all__ = ["Candidate", "Policy", "ScriptedPolicy", "dedupe"]
