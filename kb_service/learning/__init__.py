"""Learning from agents: learned phrasings (store) and the per-process matcher that agent search consults."""
