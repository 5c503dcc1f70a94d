"""BestModelCallback against a real store on the toy env: when best models get a version,
how @best and @champion move, and the champion decision as a pure function."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from pipeline.agents.baselines import RandomAgent
from pipeline.agents.dqn import DQNAgent
from pipeline.agents.networks import QNetwork
from pipeline.callbacks.base import EpisodeSummary, RunState
from pipeline.callbacks.best_model import BestModelCallback, decide_champion
from pipeline.tracking import MLflowTracker, NullTracker
from tests.toy_env import ToyEnv

QUIET = {"champion": False, "log_policy": False, "log_game_session": False}


# ---------------------------------------------------------------- the decision (pure)
@pytest.mark.parametrize("test", ["welch", "bootstrap"])
def test_clear_win_promotes_and_noise_does_not(test):
    rng = np.random.default_rng(0)
    better, worse = rng.normal(10, 1, 20), rng.normal(5, 1, 20)
    win = decide_champion(better, worse, test=test)
    assert win.promote and win.diff == pytest.approx(better.mean() - worse.mean())
    lose = decide_champion(worse, better, test=test)
    assert not lose.promote
    a, b = rng.normal(5.1, 3, 20), rng.normal(5.0, 3, 20)
    assert not decide_champion(a, b, test=test).promote  # within noise
    if test == "welch":
        assert win.p_value < 0.05 and lose.p_value > 0.5 and win.ci_low is None
    else:
        assert win.ci_low > 0 and lose.ci_high < 0 and win.p_value is None


@pytest.mark.parametrize("test", ["welch", "bootstrap"])
def test_margin_and_alpha(test):
    rng = np.random.default_rng(1)
    c, h = rng.normal(6, 0.5, 30), rng.normal(5, 0.5, 30)
    assert decide_champion(c, h, test=test, margin=0.0).promote
    assert not decide_champion(c, h, test=test, margin=2.0).promote  # a 1-point win < 2
    if test == "welch":  # a bootstrap cannot resolve quantiles this far out
        assert not decide_champion(c, h, test=test, margin=0.0, alpha=1e-30).promote


def test_samples_without_spread_and_bad_arguments():
    assert decide_champion([2, 2, 2], [1, 1, 1]).promote
    assert not decide_champion([2, 2], [1, 1], margin=1.5).promote
    assert not decide_champion([1, 1], [1, 1], test="bootstrap").promote
    with pytest.raises(ValueError, match="test"):
        decide_champion([1, 2], [1, 2], test="ttest")
    with pytest.raises(ValueError, match="at least 2"):
        decide_champion([1], [1, 2])
    one = decide_champion([3, 4, 5], [1, 2, 3], test="bootstrap", seed=4)
    assert one == decide_champion([3, 4, 5], [1, 2, 3], test="bootstrap", seed=4)


# ---------------------------------------------------------------- the callback on a real store
@pytest.fixture(scope="module")
def uri(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('best')}/mlflow.db"


def _state(uri: str, tmp_path: Path, env_name: str, agent=None, tracker=None) -> RunState:
    env = ToyEnv()
    if agent is None:
        agent = DQNAgent(env.observation_space, env.action_space, hidden_sizes=[8],
                         learning_starts=10, batch_size=4, buffer_size=100, device="cpu")
    if tracker is None:
        tracker = MLflowTracker(uri=uri, artifact_dir=str(tmp_path / "art"))
        tracker.start_run(env_name, experiment=env_name)
    cfg = OmegaConf.create({"env": {"_target_": "tests.toy_env.ToyEnv", "name": env_name},
                            "agent": {"name": "dqn"}, "seed": 0})
    state = RunState(cfg=cfg, env=env, agent=agent, tracker=tracker, output_dir=tmp_path)
    state.obs, state.info = env.reset(seed=0)
    return state


def _versions(uri: str, name: str) -> list:
    return sorted(MlflowClient(uri).search_model_versions(f"name='{name}'"),
                  key=lambda v: int(v.version))


def _eval(cb: BestModelCallback, state: RunState, step: int, value: float) -> None:
    state.step = step
    cb.on_eval(state, {"eval/ep_return": value})


@pytest.mark.slow
def test_best_episode_versions_are_rate_limited_and_best_moves(uri, tmp_path):
    state = _state(uri, tmp_path, "toyrate")
    cb = BestModelCallback(min_steps_between=100, **QUIET)
    cb.on_run_start(state)
    name = "toyrate_dqn_best_episode"
    _eval(cb, state, 10, 1.0)  # first best: registered at once
    _eval(cb, state, 50, 2.0)  # a better one within 100 steps: waits
    _eval(cb, state, 60, 1.5)  # not a new best: ignored
    assert len(_versions(uri, name)) == 1
    state.step = 120
    cb.on_episode_end(state, EpisodeSummary(0, 0.0, 10, {}))  # the wait is over
    _eval(cb, state, 130, 3.0)  # within 100 steps of the registration at 120: waits...
    snapshot = {k: v.clone() for k, v in state.agent.online.state_dict().items()}
    with torch.no_grad():
        for p in state.agent.online.parameters():  # ...so later training does not leak in
            p.zero_()
    cb.on_run_end(state)  # a waiting best is registered at the end of the run
    state.tracker.end_run()

    versions = _versions(uri, name)
    assert [float(v.tags["value"]) for v in versions] == [1.0, 2.0, 3.0]
    assert [v.tags["step"] for v in versions] == ["10", "50", "130"]
    assert all(v.tags["metric"] == "eval/ep_return" and v.run_id == state.tracker.run_id
               and v.tags["run_id"] == state.tracker.run_id for v in versions)
    client = MlflowClient(uri)
    assert client.get_model_version_by_alias(name, "best").version == versions[-1].version
    best = state.tracker.load_pytorch_model(f"models:/{name}@best")
    for key, value in best.state_dict().items():
        torch.testing.assert_close(value, snapshot[key])


@pytest.mark.slow
def test_best_average_uses_the_moving_average(uri, tmp_path):
    state = _state(uri, tmp_path, "toyavg")
    cb = BestModelCallback(average_window=3, min_steps_between=0, **QUIET)
    cb.on_run_start(state)
    for i, ret in enumerate([0.0, 0.0, 0.0, 3.0, 0.0, 0.0]):
        state.step, state.returns = 10 * (i + 1), state.returns + [ret]
        cb.on_episode_end(state, EpisodeSummary(i, ret, 10, {}))
    state.tracker.end_run()
    # means: 0 (first, registered), 1 (better), 1 (equal: no), 1 (no): two versions
    versions = _versions(uri, "toyavg_dqn_best_average")
    assert [float(v.tags["value"]) for v in versions] == [0.0, 1.0]
    assert versions[-1].tags["metric"] == "rollout/ep_return_mean3"
    assert not _versions(uri, "toyavg_dqn_best_episode")


def test_agents_without_a_network_and_no_tracking_do_nothing(uri, tmp_path, caplog):
    env = ToyEnv()
    caplog.set_level(logging.INFO, logger="pipeline.callbacks.best_model")
    random = RandomAgent(env.observation_space, env.action_space)
    for tracker in (NullTracker(), None):
        state = _state(uri, tmp_path, "toynone", agent=random, tracker=tracker)
        cb = BestModelCallback(min_steps_between=0, log_game_session=False)
        cb.on_run_start(state)
        for step in (1, 2):
            state.returns.append(float(step))
            _eval(cb, state, step, float(step))
            cb.on_episode_end(state, EpisodeSummary(step, 1.0, 10, {}))
        cb.on_run_end(state)
        state.tracker.end_run()
    assert not _versions(uri, "toynone_dqn_best_episode")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("has no policy network" in m for m in messages) == 1
    assert sum("tracking is off" in m for m in messages) == 1


# ---------------------------------------------------------------- the champion
def _toy_net(right_states: set[int]) -> QNetwork:
    """A linear Q-network that picks the paying action (2s mod 5) in `right_states` and a
    non-paying one elsewhere."""
    net = QNetwork((5,), 6, hidden_sizes=())
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        for s in range(5):
            net.head.weight[(2 * s) % 5 if s in right_states else (2 * s + 1) % 5, s] = 1.0
    return net


class _NetAgent:
    def __init__(self, net: QNetwork) -> None:
        self.net = net

    def policy_model(self) -> QNetwork:
        return self.net


def _candidate(state: RunState, net: QNetwork, name: str) -> str:
    info = state.tracker.log_pytorch_model(net, "best_episode")
    return state.tracker.register_model(name, info["model_uri"], aliases=["best"],
                                        tags={"value": "0", "step": "0"})


@pytest.mark.slow
def test_champion_moves_only_on_a_significant_win(uri, tmp_path):
    good, mediocre = _toy_net({0, 1, 2, 3, 4}), _toy_net({0, 1, 2})  # returns 10 vs about 6
    state = _state(uri, tmp_path, "toychamp", agent=_NetAgent(good))
    name = "toychamp_dqn_best_episode"
    client = MlflowClient(uri)
    cb = BestModelCallback(champion_episodes=12, log_policy=False, log_game_session=False)
    cb.on_run_start(state)

    def challenge(step: int) -> dict:
        state.step = step
        cb.on_run_end(state)
        return cb.decision

    v1 = _candidate(state, mediocre, name)
    first = challenge(1)  # no champion yet: the candidate takes the title
    assert first["promoted"] and first["reason"] == "no champion yet"
    assert client.get_model_version_by_alias(name, "champion").version == int(v1)

    v2 = _candidate(state, good, name)
    win = challenge(2)  # 10 on every seed vs about 6: significant
    assert win["promoted"] and win["p_value"] < 0.05 and win["candidate_mean"] == 10.0
    assert len(win["candidate_returns"]) == len(win["champion_returns"]) == 12
    assert client.get_model_version_by_alias(name, "champion").version == int(v2)

    _candidate(state, mediocre, name)
    loss = challenge(3)  # worse than the champion: the alias stays
    assert not loss["promoted"] and loss["p_value"] > 0.5
    assert client.get_model_version_by_alias(name, "champion").version == int(v2)

    state.tracker.set_alias(name, "best", v2)
    same = challenge(4)
    assert not same["promoted"] and "already" in same["reason"]
    state.tracker.end_run()

    run = client.get_run(state.tracker.run_id)
    history = client.get_metric_history(run.info.run_id, "champion/promoted")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 1.0), (3, 0.0), (4, 0.0)]
    assert "champion/p_value" in run.data.metrics
    path = client.download_artifacts(run.info.run_id, "champion/decision.json", str(tmp_path))
    assert json.loads(Path(path).read_text())["reason"] == same["reason"]
    assert client.get_model_version(name, v2).tags["champion_since_run"] == run.info.run_id


@pytest.mark.slow
def test_model_logging_stays_in_the_trackers_run(uri, tmp_path, monkeypatch):
    """No global active run is left behind, and an inherited MLFLOW_RUN_ID (a parent's run)
    does not take the model."""
    from mlflow.tracking._tracking_service import utils

    before = utils._tracking_uri
    other = MLflowTracker(uri=uri)
    other_id = other.start_run("parent", experiment="toyparent")
    other.end_run()
    monkeypatch.setenv("MLFLOW_RUN_ID", other_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////nonexistent/elsewhere.db")
    tracker = MLflowTracker(uri=uri)
    run_id = tracker.start_run("child", experiment="toychild")
    info = tracker.log_pytorch_model(_toy_net({0}), "net", step=5)
    tracker.end_run()

    client = MlflowClient(uri)
    logged = client.get_logged_model(info["model_id"])
    assert logged.source_run_id == run_id and logged.status == "READY"
    assert logged.experiment_id == client.get_run(run_id).info.experiment_id
    assert [o.model_id for o in client.get_run(run_id).outputs.model_outputs] == [logged.model_id]
    assert not client.get_run(other_id).outputs.model_outputs
    assert mlflow.active_run() is None and utils._tracking_uri == before
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:////nonexistent/elsewhere.db"


def test_config_group_instantiates_and_checks_values(compose_cfg):
    from hydra.utils import instantiate

    cfg = compose_cfg()
    node = OmegaConf.to_container(cfg.callbacks.best_model)
    assert isinstance(instantiate(node), BestModelCallback)
    with pytest.raises(Exception, match="callbacks.best_model.champion_test"):
        instantiate({**node, "champion_test": "ttest"})
