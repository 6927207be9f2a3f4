"""The replay benchmark behind `skillchat bench DIR` (issue #3).

data.py      replay-set loading and validation; Environment (bandit), FullInformation, TestScorer
skills.py    a fresh handbook for a set: learned (core/clustering.py), shipped, or both
runner.py    training from bandit ratings, greedy test routing, baselines, learning curve, relearn
baselines.py single models, random, cheapest, best single, per-category, kNN, oracle
frontier.py  cost/quality frontiers (upper hull) and reading them at a given cost
report.py    tables, the terminal plot, JSON
"""
