"""Live-call assist: follow a call's transcript and suggest the SOPs it needs (docs/assist.md)."""
