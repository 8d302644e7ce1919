"""Trainer tools: the gap report and evaluation on labeled queries."""
