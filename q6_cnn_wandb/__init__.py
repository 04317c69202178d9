"""q6_cnn_wandb"""
