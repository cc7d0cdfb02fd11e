"""The tutorial gradfit grew from: the autograd walkthrough, the training demo, the words that explain a
run, the plain PyTorch program of a run, Korean and English, and the browser playground."""
from gradfit.tutorial.demo import DemoResult, demo, descent_to_optimum
from gradfit.tutorial.seed import SeedData, autograd_walkthrough, seed_data

__all__ = ["DemoResult", "SeedData", "autograd_walkthrough", "demo", "descent_to_optimum", "seed_data"]
