"""The tutorial gradfit grew from: the autograd walkthrough and the training demo."""
from gradfit.tutorial.seed import DemoResult, SeedData, autograd_walkthrough, demo, descent_to_optimum, seed_data

__all__ = ["DemoResult", "SeedData", "autograd_walkthrough", "demo", "descent_to_optimum", "seed_data"]
