"""The old tracker's calls on pipeline.tracking.MLflowTracker, as its users wrote them."""
from __future__ import annotations

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.agents.base import Transition
from pipeline.agents.dqn import DQNAgent
from pipeline.tracking import MLflowTracker, NullTracker
from tests.toy_env import ToyEnv


def _play_episode(agent: DQNAgent, env: ToyEnv, seed: int) -> float:
    obs, info = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action = agent.act(obs, info, explore=True)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated,
                                 info["action_mask"], info))
        total += reward
        obs, done = next_obs, terminated or truncated
    return total


def test_old_calls_log_to_one_run(tmp_path, store):
    env = ToyEnv()
    agent = DQNAgent(env.observation_space, env.action_space, hidden_sizes=[8],
                     buffer_size=100, device="cpu")
    tracker = MLflowTracker(uri=store["uri"], artifact_dir=str(tmp_path / "art"))
    run_id = tracker.start_run("old-style run")  # the name, positionally

    tracker.log_episode_end(agent)  # before any episode: only epsilon, no crash
    returns = [_play_episode(agent, env, seed) for seed in range(2)]
    tracker.log_episode_end(agent)
    tracker.log_custom_metric("custom/win_rate", 0.25, 7)
    tracker.log_custom_metric("custom/no_step", 1.0)
    notes = tmp_path / "notes.txt"
    notes.write_text("old artifact")
    tracker.log_artifact(str(notes), "extras")
    tracker.end_run()

    client = MlflowClient(store["uri"])
    run = client.get_run(run_id)
    assert run.info.run_name == "old-style run" and run.info.status == "FINISHED"
    [ret] = client.get_metric_history(run_id, "rollout/ep_return")
    assert (ret.value, ret.step) == (returns[-1], 20)  # the last episode, at agent.steps
    assert run.data.metrics["rollout/ep_length"] == 10
    epsilon = client.get_metric_history(run_id, "train/epsilon")
    assert [m.step for m in epsilon] == [0, 20] and np.isclose(epsilon[-1].value, agent.epsilon)
    assert agent.episodes == 2 and agent.last_episode_length == 10
    [custom] = client.get_metric_history(run_id, "custom/win_rate")
    assert (custom.value, custom.step) == (0.25, 7)
    assert client.get_metric_history(run_id, "custom/no_step")[0].step == 0
    assert [a.path for a in client.list_artifacts(run_id, "extras")] == ["extras/notes.txt"]


def test_null_tracker_takes_the_same_calls():
    tracker = NullTracker()
    tracker.start_run("x")
    tracker.log_episode_end(object())
    tracker.log_custom_metric("a", 1.0, 1)
    tracker.log_artifact("nothing.txt", "x")
    tracker.end_run()
    assert tracker.register_model("m", "models:/m-1") is None
    assert tracker.get_alias_version("m", "best") is None
