"""Writes notebooks/honest_qa.ipynb (without outputs): python3 notebooks/make_honest_qa.py
[--execute]"""

from nbformat.v4 import new_code_cell, new_markdown_cell
from notebook_writer import write

CELLS = [
    new_markdown_cell(
        "# Answering questions honestly: the nested posterior (DESIGN §1–4, issue 3)\n\n"
        "A two-headed network answers questions about a hidden scene.  The *intended* head "
        "should report the truth; the *instrumental* head may learn to predict what a human "
        "labeler would say.  The human errs in systematic situations; a complex labeling "
        "process catches a share of those errors.  The nested posterior over (θ₁, θ₂) "
        "asks the two heads to agree on a small set where the human is right (λC) and pays "
        "log Z(θ₁) for it, so that agreement bought by a cheap copy of the human costs bits.\n\n"
        "This notebook runs at a small size (about a minute on 2 CPU cores): the exact small "
        "universe of programs, the world, and the four methods on two seeds."),
    new_code_cell(
        "import tempfile\n"
        "import numpy as np\n"
        "from IPython.display import Image, Markdown, display\n"
        "from lprior.honest_qa import exact_universe as eu\n"
        "from lprior.honest_qa import experiment"),
    new_markdown_cell(
        "## The seed's bit accounting, computed exactly\n\n"
        "Heads are programs with a length in bits; the two-stage prior's normaliser is an exact "
        "finite sum.  Under the plain prior the cheapest pair that fits the labels wins (the "
        "intended head copies the complex labeling process); under the two-stage prior the "
        "truthful intended head wins."),
    new_code_cell("display(Markdown(eu.bit_accounting().markdown()))"),
    new_markdown_cell(
        "## The world and its test splits\n\n"
        "The model sees the human's view A, a reviewer's notes R and noisy sensors S.  "
        "`iid`: the natural distribution; `seen`: the human is wrong and the reviewer caught "
        "it (the kind of error the large set holds, with the truth); `unseen_predictable`: "
        "human = complex ≠ truth by a seen mechanism (occlusion, low light) the reviewer "
        "missed; `unseen_novel`: human = complex ≠ truth by a kind never corrected (far "
        "objects)."),
    new_code_cell(
        "from experiments.configs.honest_qa import get_config\n"
        "cfg = get_config('smoke')\n"
        "data, splits, keys = experiment.seed_data(cfg)\n"
        "for name, sp in splits.items():\n"
        "    print(f'{name:20s} n={sp.y_true.shape[1]:5d}  human accuracy '\n"
        "          f'{float((sp.y_human == sp.y_true).mean()):.3f}  complex labels accuracy '\n"
        "          f'{float((sp.y_complex == sp.y_true).mean()):.3f}')"),
    new_markdown_cell(
        "## Training the key arms (smoke size: 2 seeds, 40 steps)\n\n"
        "(a) plain SGD, one head, on the large set, under the same stage-1 prior as the nested "
        "arms, and its ceiling (the same model on as many i.i.d. examples labelled with the "
        "truth); (b) two heads with λC and no log Z; (c) the nested posterior, chained form, "
        "and its κ → 0 control (σ₂ ≈ 0: it must reproduce plain); (d) nested, designed "
        "partition (θ₂ = the human model, the encoder of the human's view and the reviewer's "
        "notes, under the log-integral).  λ is annealed ×1.03 a step until C ≤ 0.01 nats per "
        "example (or λ = 10⁴); each run keeps its best parameters on held-out small-set data "
        "from then on (early stopping).  "
        "The table shows the intended head's accuracy against "
        "the truth, how often it repeats the human's wrong answer (mean ± SE over seeds), the "
        "share of the plain-to-ceiling gap it closes on `unseen_predictable` (PGR), and what "
        "each head computes (truth, human or complex labeler)."),
    new_code_cell(
        "workdir = tempfile.mkdtemp()\n"
        "from experiments.honest_qa_report import report\n"
        "runs, sweep, human = experiment.run(cfg, workdir)\n"
        "display(Markdown(report(cfg, runs, sweep, human, workdir)))"),
    new_code_cell(
        "display(Image(f'{workdir}/learning_curves.png'))\n"
        "display(Image(f'{workdir}/head_identities.png'))"),
    new_markdown_cell(
        "## The terms of the posterior along training\n\n"
        "Each run logs every term per step (also to `metrics.jsonl` and TensorBoard event files "
        "in the workdir); here λC and the tracked log Z(θ₁) of the chained run."),
    new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "hist = runs['c_chained'][0]\n"
        "steps = [r['step'] for r in hist]\n"
        "fig, ax = plt.subplots(1, 2, figsize=(9, 3))\n"
        "for a, k in zip(ax, ('lam_consistency', 'log_z')):\n"
        "    a.plot(steps, [r[k] for r in hist]); a.set(title=k, xlabel='step')\n"
        "fig.tight_layout()"),
    new_markdown_cell(
        "At this size nothing has converged; the README's main job (`default` preset) and "
        "`BUILD_NOTES.md` hold the measured comparison, including where the method does not "
        "help."),
]

if __name__ == "__main__":
  write("honest_qa", CELLS)
