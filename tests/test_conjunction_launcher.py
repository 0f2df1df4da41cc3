"""The conjunction launcher resumes by rows: a finished command re-reports computing nothing, a
run interrupted after some rows completes on rerun to the results of an uninterrupted one, a
grown sweep computes only its new rows, another config is refused naming the keys, and nonsense
values are refused before anything is computed.  Tiny sizes (seconds)."""

import json
import math

import jax
import pytest

from experiments import conjunction_report as report
from experiments.common import resume
from experiments.configs.conjunction import get_config
from lprior.conjunction import experiment
from lprior.train import CheckpointError
from lprior.train.checkpoint import config_diff

ROW_FNS = ("die_rows", "smooth_row", "exchangeable_row", "debater_row")


def _tiny():
  cfg = get_config("smoke")
  s, d = cfg.smooth, cfg.debater
  s.kernels, s.ns, s.pad_to, s.windows, s.num_seeds = ("matern12",), (3, 5), 6, (1, 2), 2
  s.max_exact_n, s.max_lp_n, s.truth_samples, s.window_samples = 5, 4, 512, 256
  d.ms, d.pad_to, d.num_rounds, d.init_worlds, d.truth_samples = (3, 4), 4, 5, 64, 512
  d.max_exact_n, d.exchangeable_ms, d.exchangeable_orders = 4, (3, 5), (1, 2)
  return cfg


def _results(workdir) -> dict:
  """results.json but its timing."""
  res = json.loads((workdir / "results.json").read_text())
  return {k: v for k, v in res.items() if k != "seconds"}


def _counting(monkeypatch, fail_after: dict | None = None) -> dict:
  """Count calls of every row function; one named in fail_after raises after that many."""
  calls = {name: 0 for name in ROW_FNS}
  for name in ROW_FNS:
    fn = getattr(experiment, name)

    def wrapped(*a, _fn=fn, _name=name, **k):
      if fail_after is not None and calls[_name] >= fail_after.get(_name, 10 ** 9):
        raise KeyboardInterrupt(f"simulated crash in {_name}")
      calls[_name] += 1
      return _fn(*a, **k)
    monkeypatch.setattr(experiment, name, wrapped)
  return calls


@pytest.fixture(scope="module", autouse=True)
def _keep_x64():
  """The launcher turns float64 on for good; give the worker back its setting afterwards."""
  old = jax.config.jax_enable_x64
  yield
  jax.config.update("jax_enable_x64", old)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
  """An uninterrupted run: (workdir, its text)."""
  workdir = tmp_path_factory.mktemp("conj_full")
  return workdir, report.run(_tiny(), str(workdir))


def test_rerun_of_a_finished_command_computes_nothing(full, monkeypatch):
  workdir, text = full
  before = (workdir / "results.json").read_bytes()
  calls = _counting(monkeypatch, fail_after={name: 0 for name in ROW_FNS})
  assert report.run(_tiny(), str(workdir)) == text
  assert (workdir / "results.json").read_bytes() == before and not any(calls.values())


def test_interrupted_run_completes_to_the_uninterrupted_results(full, tmp_path, monkeypatch):
  calls = _counting(monkeypatch, fail_after={"smooth_row": 2})
  with pytest.raises(KeyboardInterrupt):
    report.run(_tiny(), str(tmp_path))
  assert len((tmp_path / "rows" / "smooth.jsonl").read_text().splitlines()) == 2
  with open(tmp_path / "rows" / "smooth.jsonl", "a") as f:
    f.write('{"key": {"kernel": "matern12", "len')  # a torn line: the crash hit mid-write
  monkeypatch.undo()
  calls = _counting(monkeypatch)
  report.run(_tiny(), str(tmp_path))
  assert calls == {"die_rows": 0, "smooth_row": 2, "exchangeable_row": 4, "debater_row": 2}
  assert _results(tmp_path) == _results(full[0])


def test_grown_sweeps_compute_only_their_new_rows(full, tmp_path, monkeypatch):
  for part in ("die", "smooth", "exchangeable", "debater"):
    (tmp_path / "rows").mkdir(exist_ok=True)
    (tmp_path / "rows" / f"{part}.jsonl").write_bytes(
        (full[0] / "rows" / f"{part}.jsonl").read_bytes())
  cfg = _tiny()
  cfg.smooth.ns, cfg.debater.ms = (3, 4, 5), (3, 4, 2)
  calls = _counting(monkeypatch)
  report.run(cfg, str(tmp_path))
  assert calls == {"die_rows": 0, "smooth_row": 2, "exchangeable_row": 0, "debater_row": 1}
  res = json.loads((tmp_path / "results.json").read_text())
  old = {(r["n"], r["seed"]): r for r in _results(full[0])["smooth"]}
  got = {(r["n"], r["seed"]): r for r in res["smooth"]}
  assert [r["n"] for r in res["smooth"]] == [3, 3, 4, 4, 5, 5]
  assert all(got[k] == v for k, v in old.items())


def test_another_config_is_refused_naming_the_keys(full, monkeypatch):
  cfg = _tiny()
  cfg.smooth.truth_samples, cfg.debater.num_rounds = 1024, 7
  calls = _counting(monkeypatch, fail_after={name: 0 for name in ROW_FNS})
  with pytest.raises(CheckpointError, match=r"smooth\.truth_samples: 512 \(stored\) vs 1024") as e:
    report.run(cfg, str(full[0]))
  assert "debater.num_rounds: 5 (stored) vs 7" in str(e.value) and not any(calls.values())
  cfg = _tiny()
  cfg.preset = "default"
  with pytest.raises(CheckpointError, match="preset: 'smoke' \\(stored\\) vs 'default'"):
    report.run(cfg, str(full[0]))


def test_row_store_diff_and_torn_lines(tmp_path):
  assert config_diff({"a": {"b": 1, "c": (1, 2)}}, {"a": {"b": 2, "c": [1, 2]}}) == [
      "a.b: 1 (stored) vs 2 (now)"]
  store = resume.RowStore(str(tmp_path / "p.jsonl"), {"x": 1})
  assert math.isnan(store.row({"k": 1}, lambda: {"v": float("nan")})["v"])
  (tmp_path / "p.jsonl").open("a").write("{bad")
  again = resume.RowStore(str(tmp_path / "p.jsonl"), {"x": 1})
  assert again.has({"k": 1}) and (tmp_path / "p.jsonl").read_text().endswith("}\n")
  (tmp_path / "p.jsonl").open("a").write("{bad\n{}\n")
  with pytest.raises(CheckpointError, match="line 2"):
    resume.RowStore(str(tmp_path / "p.jsonl"), {"x": 1})


BAD = [("smooth.p_low", 0.98, "smooth.p_low"), ("smooth.p_high", 1.0, "smooth.p_high"),
       ("smooth.p_low", 0.0, "smooth.p_low"), ("smooth.ns", (1, 4), "smooth.ns"),
       ("smooth.ns", (4, 32), "smooth.ns"), ("smooth.ns", (), "smooth.ns"),
       ("smooth.windows", (0, 1), "smooth.windows"), ("smooth.num_seeds", 0, "smooth.num_seeds"),
       ("smooth.truth_samples", 1, "smooth.truth_samples"),
       ("smooth.window_samples", 0, "smooth.window_samples"),
       ("smooth.kernels", ("se", "gauss"), "smooth.kernels"),
       ("smooth.lengthscales", (0.0,), "smooth.lengthscales"),
       ("smooth.max_lp_n", 40, "smooth.max_lp_n"), ("smooth.path_length", 0.0, "path_length"),
       ("debater.ms", (1, 3), "debater.ms"), ("debater.ms", (3, 9), "debater.ms"),
       ("debater.kernel", "gauss", "debater.kernel"),
       ("debater.p_high", 0.8, "debater.p_low"), ("debater.num_rounds", 0, "num_rounds"),
       ("debater.init_worlds", 0, "init_worlds"), ("debater.exchangeable_q", 1.0, "_q"),
       ("debater.exchangeable_ms", (0, 3), "exchangeable_ms"),
       ("debater.exchangeable_orders", (1, 9), "exchangeable_orders")]


@pytest.mark.parametrize("key,value,match", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_nonsense_is_refused_before_anything_is_computed(key, value, match, tmp_path,
                                                         monkeypatch):
  cfg = _tiny()
  part, name = key.split(".")
  cfg[part][name] = value
  calls = _counting(monkeypatch, fail_after={n: 0 for n in ROW_FNS})
  with pytest.raises(ValueError, match=match):
    report.run(cfg, str(tmp_path / "w"))
  assert not (tmp_path / "w").exists() and not any(calls.values())
