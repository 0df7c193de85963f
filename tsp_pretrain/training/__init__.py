"""TSP/TAC training: schedule, checkpoints and the epoch loop (shared by pretraining)."""
