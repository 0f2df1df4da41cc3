"""Amplification with an adversary (DESIGN §7, issue 7).

tasks         questions as fixed-shape int arrays: sum of a list mod m, permutation powering
human         the simulated human: answer a base case / decompose / combine, calls counted
models        M, Adv and the imitators of the human's two steps (Flax MLPs)
heap          trees of questions in a fixed heap-ordered array; sweeps to a fixed point
amplify       amplification trees: Gumbel-max, random, always, biased-coin recursion; H′
distill       M's one-level M-consulting tree (no human calls)
iterate       methods, losses and the jitted multi-seed trainer
transparency  planted-error search guided by an adversary
experiment    the issue's measurements as data (the launcher writes tables and plots)
"""
