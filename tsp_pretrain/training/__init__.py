"""TSP/TAC training: schedule, checkpoints, the epoch loop and the one training stage."""
