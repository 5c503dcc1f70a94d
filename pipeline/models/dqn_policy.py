"""A DQN policy as an MLflow pyfunc model (models from code).

Artifacts: `weights` (state dict) and `spec` (network shape and observation dtype),
written by `pipeline.models.common.save_network`. Input: rows with `obs` (the
observation, flattened row-major) and an optional `action_mask` (True = legal), as a
DataFrame or, for one row, a dict. Output: a DataFrame with `action` (the best legal
action) and `q_values` (every action's Q-value).

    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/policy")
    model.predict({"obs": obs.tolist(), "action_mask": mask.tolist()})
    # REST: {"dataframe_records": [{"obs": [...], "action_mask": [...]}]}
"""
from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class DQNPolicyModel(PythonModel):
    def load_context(self, context: Any) -> None:
        import torch

        from pipeline.models.common import load_network, load_spec

        torch.set_num_threads(1)  # small networks: one thread is fastest (stack notes)
        self.net = load_network(context.artifacts["weights"], context.artifacts["spec"])
        self.obs_dtype = np.dtype(load_spec(context.artifacts["spec"]).get("obs_dtype", "float32"))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None
                ) -> pd.DataFrame:
        from pipeline.models.common import greedy_actions

        obs, masks = self._batch(model_input)
        actions, q = greedy_actions(self.net, obs, masks)
        return pd.DataFrame({"action": actions.astype(np.int64),
                             "q_values": [row.astype(np.float64).tolist() for row in q]})

    def _batch(self, model_input: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """(observations shaped for the network, legal masks or None)."""
        if isinstance(model_input, dict):  # one record, as MLflow reads a dict
            model_input = pd.DataFrame([model_input])
        if "obs" not in model_input:
            raise ValueError("input: expected a column 'obs' (one flattened observation per "
                             "row) and optionally 'action_mask'")
        rows = np.stack([np.asarray(o, dtype=np.float64).ravel() for o in model_input["obs"]])
        masks = None
        if "action_mask" in model_input:
            masks = np.stack([np.asarray(m, dtype=bool) for m in model_input["action_mask"]])
        obs = rows.astype(self.obs_dtype, copy=False).reshape((-1, *self.net.obs_shape))
        return obs, masks


mlflow.models.set_model(DQNPolicyModel())
