"""How `kb serve` serves: the connection balancer over worker processes, the search lane, the body guard."""
