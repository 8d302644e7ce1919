"""Training on the knowledge base: practice drills, exams, change acknowledgements and the training-needs report."""
