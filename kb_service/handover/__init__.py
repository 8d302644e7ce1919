"""Hand-over from the tenant chat to a person: cases, their conversation, and the webhook outbox."""
