"""Clip sampling, transforms and the clip dataset shared by pretraining, training and extraction."""
