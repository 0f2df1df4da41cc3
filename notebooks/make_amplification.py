"""Writes notebooks/amplification.ipynb (without outputs):  python3 notebooks/make_amplification.py"""

from nbformat.v4 import new_code_cell, new_markdown_cell
from notebook_writer import write

CELLS = [
    new_markdown_cell("""# Amplification with an adversary (DESIGN §7, issue 7)

A model M answers questions; a simulated human H answers base cases, splits other questions in
two and combines two answers.  An adversary Adv predicts how good M's answer is (minus its loss);
amplification asks H about a question, recurses on **one** subquestion chosen by Gumbel-max over
Adv's scores (Boltzmann: the one M is predicted worst on) and lets M answer the other.  This
notebook runs everything at a tiny size (< 1 min on a laptop CPU); the launcher
`python3 -m experiments.amplification --config=experiments/configs/amplification.py:default`
runs the real sizes."""),
    new_code_cell("""import jax, jax.numpy as jnp, numpy as np
from IPython.display import Markdown, display
from experiments.configs.amplification import get_config
from experiments import amplification_report as report
from lprior.amplification import amplify, experiment, human, tasks

key = lambda i: jax.random.key(i, impl="rbg")"""),
    new_markdown_cell("""## Tasks and the simulated human
A question is a fixed-shape integer array.  Sum of 8 numbers mod 3: `[level, x0..x7]`;
permutation powering: `[k, p0..p3]` (p**k = p**⌊k/2⌋ ∘ p**⌈k/2⌉).  The full HCH tree
(recursing on everything) gives true answers at 2**(k+1) - 1 asks and 2**k - 1 combines."""),
    new_code_cell("""t = tasks.SumMod(m=3, log2_len=3)
q = t.sample(key(0), 1)
print("question", q[0], "-> subquestions", *(s[0] for s in t.decompose(q)))
answer, calls = human.hch(t, q, human.no_calls())
print("HCH answer", answer[0], "true", t.solve(q)[0], "| asks", calls.ask, "combines", calls.combine)"""),
    new_markdown_cell("""## Tasks of uneven difficulty (issue 15)
Where M's errors on one subquestion persist, an adversary can matter: a chained sum splits off a
trivial first element from the hard rest; a Zipf lookup sums values of a fixed table at keys
whose rare ones M keeps getting wrong; a pooled lookup draws each key from a few common keys or
thousands of rare ones, so a rare key (wrong in M's answer) sits in either half of many
questions; a mixed expression has ops ('left' makes a half irrelevant) whose difficulty shows
only in the content."""),
    new_code_cell("""for t in (tasks.ChainSum(m=3, length=4), tasks.ZipfLookup(m=5, log2_len=2),
          tasks.PooledLookup(m=5, num_keys=4096, common_keys=16, common_share=0.9),
          tasks.MixedOps(m=5, log2_len=2)):
  q = t.sample(key(2), 1)
  print(t.name, q[0], "->", *(s[0] for s in t.decompose(q)), "| answer", t.solve(q)[0],
        "| HCH", human.hch(t, q, human.no_calls())[0][0])"""),
    new_markdown_cell("""## The post's step 5: a combine that returns new subquestions
A pointer chase T**k(x) through a fixed permutation T cannot be split into two subquestions
asked at once: the second leg starts where the first ends.  The human asks the first leg (beside
a one-step check); its combine returns the second leg (beside the identity at its start) as new
subquestions, and the procedure goes back to step 3.  Answers are `[steps, state]`.  The HCH
tree then costs 4k − 3 asks and 2k − 2 combines; amplification (`rounds.amplify_rounds`) runs
the same loop with M answering the subquestions it does not recurse on."""),
    new_code_cell("""from lprior.amplification import models, rounds
t = tasks.PointerChase(n=16, max_steps=4)
q = t.sample(key(3), 1)
s1, s2 = t.decompose(q)
first = t.combine_step(q, t.solve(s1), t.solve(s2))
print("question", q[0], "-> first round", s1[0], s2[0], "-> combine returns", first[2][0], first[3][0])
answer, calls = human.hch(t, q, human.no_calls())
print("HCH answer", answer[0], "true", t.solve(q)[0], "| asks", calls.ask, "combines", calls.combine)
fns, params = models.make_models(key(4), t, hidden=(16,), critic_hidden=(8,), imitate=False)
amp = jax.jit(lambda policy, roots: rounds.amplify_any_batch(key(5), t, fns, params, roots, policy))
roots = t.sample(key(6), 256)
for rule in ("always", "random", "none"):
  tree = amp(amplify.make_policy(rule), roots)
  print(f"{rule:7s} asks per root {float(tree.calls.ask.mean()):5.2f}, combines "
        f"{float(tree.calls.combine.mean()):5.2f}, root right (untrained M) "
        f"{float(jnp.mean(jnp.all(tree.answers[:, 0] == t.solve(roots), -1))):.2f}")"""),
    new_markdown_cell("""## Gumbel-max = Boltzmann choice
`argmax(-S/T + Gumbel)` picks subquestion i with probability softmax(-S/T)_i."""),
    new_code_cell("""scores, temp = jnp.array([-0.2, -1.5, -0.7]), 0.5
picks = amplify.gumbel_choice(key(1), jnp.broadcast_to(scores, (20000, 3)), temp)
print("sampled ", np.bincount(np.asarray(picks), minlength=3) / 20000)
print("softmax ", np.asarray(jax.nn.softmax(-scores / temp)).round(3))"""),
    new_markdown_cell("""## Accuracy against human calls (tiny run, 2 seeds, chained sum)
Supervised learning on true answers (one call per label) is the upper anchor; M's own
confidence as the score (dashed) and a blind coin are the controls a saving must beat."""),
    new_code_cell("""config = get_config("smoke")
config.methods = "adversary,random,confidence,coin,blind_coin,supervised"
t, learners = tasks.ChainSum(m=3, length=4), {}
results = {"tasks": {t.name: experiment.train_methods(config, t, stream=1, learners=learners)}}
report.plot_accuracy(results);"""),
    new_markdown_cell("""## M's real errors, searched with the trained adversary
In M's own tree of a question (the human's decomposition, M's answer at every node) a node is
locally wrong when unfolding it shows a mistake (a base answer, or an answer that is not the
combination of M's own sub-answers).  Adv, M's confidence, the truth, a random order and the
subtree oracle each order a best-first search; errors that cancel leave the root right."""),
    new_code_cell("""results["real_errors"] = {t.name: {"adversary": experiment.real_error_costs(
    config, t, *learners["adversary"], stream=200)}}
report.plot_real_errors(results)
display(Markdown(report.markdown_table(report.real_error_rows(results))))"""),
    new_markdown_cell("""## Transparency: unfoldings to find a planted error
A consistent tree with one wrong leaf; best-first search by the perfect adversary (oracle), a
trained critic, or a random order.  The post expects O(log n) with a good adversary."""),
    new_code_cell("""results["transparency"] = experiment.all_transparency_costs(config)
report.plot_transparency(results);"""),
    new_code_cell("""display(Markdown(report.markdown_table(report.accuracy_rows(results, (0.8, 0.95)))))
display(Markdown(report.markdown_table(report.attribution_rows(results, (0.8, 0.95)))))
display(Markdown(report.markdown_table(report.transparency_rows(results))))"""),
]

if __name__ == "__main__":
  write("amplification", CELLS)
