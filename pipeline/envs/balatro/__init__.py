"""A fast, seeded Balatro simulator (rules in game.py, env in env.py)."""
from pipeline.envs.balatro.env import BalatroEnv

__all__ = ["BalatroEnv"]
