"""Harpagon: plan, simulate and serve DNN inference pipelines at minimum cost under latency SLOs.

Latency is in milliseconds, rates in requests per second and prices in USD per hour
throughout the package.
"""

__version__ = "0.1.0"
