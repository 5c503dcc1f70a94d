"""The DQN policy as a pyfunc model from code, and the registered best networks
(mlflow.pytorch), each loaded back through a registry alias."""
from __future__ import annotations

import mlflow
import mlflow.pytorch
import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.agents.balatro_qnet import BalatroQNetwork
from pipeline.envs.balatro import BalatroEnv
from tests.models.conftest import POLICY


def _observations(n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """n Balatro observations (and legal masks) from a short seeded game."""
    env = BalatroEnv(mode="blind")
    obs, info = env.reset(seed=3)
    rows, masks = [obs], [info["action_mask"]]
    rng = np.random.default_rng(0)
    while len(rows) < n:
        obs, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
        if terminated or truncated:
            obs, info = env.reset(seed=len(rows))
        rows.append(obs)
        masks.append(info["action_mask"])
    return np.stack(rows), np.stack(masks)


@pytest.mark.slow
def test_best_networks_load_with_mlflow_pytorch(trained_run, tracking_uri):
    net = mlflow.pytorch.load_model("models:/balatro_dqn_best_episode@best")
    assert isinstance(net, BalatroQNetwork)   # what agent.network=auto builds for Balatro
    obs, _ = _observations(3)
    with torch.no_grad():
        assert net(torch.as_tensor(obs)).shape == (3, net.n_actions)

    client = trained_run["client"]
    for name, metric in (("balatro_dqn_best_episode", "eval/ep_return"),
                         ("balatro_dqn_best_average", "rollout/ep_return_mean10")):
        best = client.get_model_version_by_alias(name, "best")
        assert best.run_id == trained_run["run_id"]
        assert best.tags["metric"] == metric and best.tags["run_id"] == trained_run["run_id"]
        assert 0 < int(best.tags["step"]) <= 1200
        float(best.tags["value"])
        versions = client.search_model_versions(f"name='{name}'")
        # the newest version holds the best value: @best is the latest best
        assert int(best.version) == max(int(v.version) for v in versions)
        assert [float(v.tags["value"]) for v in sorted(versions, key=lambda v: int(v.version))] \
            == sorted(float(v.tags["value"]) for v in versions)


@pytest.mark.slow
def test_policy_pyfunc_predicts_legal_greedy_actions(trained_run, tracking_uri):
    model = mlflow.pyfunc.load_model(f"models:/{POLICY}@test")
    schema = model.metadata.get_input_schema()
    assert schema.input_names() == ["obs", "action_mask"]
    assert model.metadata.saved_input_example_info is not None

    obs, masks = _observations(4)
    out = model.predict(pd.DataFrame({"obs": [o.tolist() for o in obs],
                                      "action_mask": [m.tolist() for m in masks]}))
    assert list(out.columns) == ["action", "q_values"] and len(out) == 4
    actions = out["action"].to_numpy()
    assert all(masks[i, a] for i, a in enumerate(actions))  # only legal actions

    # The final policy is the network the run evaluated last: best_episode v1 (step 1200).
    net = mlflow.pytorch.load_model("models:/balatro_dqn_best_episode/1")
    with torch.no_grad():
        q = net(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(np.stack(out["q_values"].to_numpy()), q, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(actions, np.where(masks, q, -np.inf).argmax(axis=1))

    # One record as a dict; rows without masks (argmax over all actions).
    as_dict = model.predict({"obs": obs[0].tolist(), "action_mask": masks[0].tolist()})
    assert int(as_dict["action"][0]) == actions[0]
    unmasked = model.predict(pd.DataFrame({"obs": [o.tolist() for o in obs]}))
    np.testing.assert_array_equal(unmasked["action"].to_numpy(), q.argmax(axis=1))


@pytest.mark.slow
def test_policy_requirements_name_this_package(trained_run, tracking_uri):
    path = mlflow.artifacts.download_artifacts(f"models:/{POLICY}@test/requirements.txt",
                                               dst_path=str(trained_run["dir"] / "req"))
    reqs = open(path).read().split()
    assert any(r.startswith("pipeline==") for r in reqs), reqs
    assert any(r.startswith("torch==") and "+" not in r for r in reqs), reqs
