"""Double DQN with a target network, masked actions and a numpy replay buffer.

The math lives in pure functions (`linear_epsilon`, used for the epsilon and the
learning-rate schedules, `masked_argmax`, `masked_max`, `td_target`) so it can be tested
without a network; `DQNAgent` wires them together.
With `guide="heuristic"` a rule-based player plays a fraction of the training episodes
(`guide_episodes`), and the agent learns from its transitions as from its own.
"""
from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from pipeline.agents.base import Transition
from pipeline.agents.networks import NETWORKS, QNetwork, build_q_network
from pipeline.agents.replay import ReplayBuffer


# ---------------------------------------------------------------- pure functions
def linear_epsilon(step: int, start: float, end: float, decay_steps: int) -> float:
    """Epsilon falls linearly from `start` to `end` over `decay_steps`, then stays at `end`."""
    if decay_steps <= 0:
        return end
    frac = min(max(step, 0) / decay_steps, 1.0)
    return start + frac * (end - start)


def masked_argmax(q: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Index of the best legal action per row (rows with no legal action give 0)."""
    if mask is None:
        return q.argmax(dim=-1)
    return q.masked_fill(~mask, -torch.inf).argmax(dim=-1)


def masked_max(q: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Best legal Q-value per row; 0 for rows with no legal action (a terminal state)."""
    if mask is None:
        return q.max(dim=-1).values
    best = q.masked_fill(~mask, -torch.inf).max(dim=-1).values
    return torch.where(mask.any(dim=-1), best, torch.zeros_like(best))


def td_target(rewards: torch.Tensor, dones: torch.Tensor, discounts: torch.Tensor,
              next_q_target: torch.Tensor, next_mask: torch.Tensor | None,
              next_q_online: torch.Tensor | None = None) -> torch.Tensor:
    """r + discount * (1 - done) * Q_target(s', a*), a* over legal actions only.

    Double DQN (van Hasselt et al. 2016) picks a* with the online network
    (`next_q_online`) and evaluates it with the target network; plain DQN takes the
    target network's own max.
    """
    if next_q_online is None:
        next_v = masked_max(next_q_target, next_mask)
    else:
        best = masked_argmax(next_q_online, next_mask)
        next_v = next_q_target.gather(1, best.unsqueeze(1)).squeeze(1)
        if next_mask is not None:
            next_v = torch.where(next_mask.any(dim=-1), next_v, torch.zeros_like(next_v))
    return rewards + discounts * (1.0 - dones) * next_v


def double_td_target(rewards: torch.Tensor, dones: torch.Tensor, discounts: torch.Tensor,
                     next_q_online: torch.Tensor, next_mask: torch.Tensor | None,
                     target_q_at: Any) -> torch.Tensor:
    """`td_target` with Double DQN, for networks that can score single actions:
    `target_q_at(a*)` gives the target network's Q(s', a*) for the online argmax a*, so the
    target network never scores the other actions. Same values as `td_target` (tested)."""
    best = masked_argmax(next_q_online, next_mask)
    next_v = target_q_at(best)
    if next_mask is not None:
        next_v = torch.where(next_mask.any(dim=-1), next_v, torch.zeros_like(next_v))
    return rewards + discounts * (1.0 - dones) * next_v


def resolve_device(device: str) -> torch.device:
    """'auto' takes CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ---------------------------------------------------------------- agent
class DQNAgent:
    """Double DQN (optionally n-step and dueling) over a discrete, maskable action space."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.spaces.Discrete,
        *,
        seed: int = 0,
        env: Any = None,
        lr: float = 5e-4,
        lr_end: float | None = None,
        lr_decay_steps: int = 0,
        gamma: float = 0.99,
        batch_size: int = 64,
        buffer_size: int = 100_000,
        learning_starts: int = 1_000,
        train_freq: int = 4,
        gradient_steps: int = 1,
        target_update_interval: int = 1_000,
        tau: float = 1.0,
        eps_start: float = 1.0,
        eps_end: float = 0.05,
        eps_decay_steps: int = 20_000,
        hidden_sizes: tuple[int, ...] | list[int] = (256, 256),
        double: bool = True,
        dueling: bool = False,
        n_step: int = 1,
        max_grad_norm: float = 10.0,
        device: str = "auto",
        network: str = "auto",
        action_hidden: int = 64,
        guide: str = "none",
        guide_episodes: float = 0.25,
    ) -> None:
        if not isinstance(observation_space, gym.spaces.Box):
            raise ValueError(f"agent=dqn: observation space {observation_space} is not a Box "
                             "(a vector or a stacked screen); remove env.ram_features or pick "
                             "another agent")
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"agent=dqn: action space {action_space} is not Discrete")
        self.n_actions = int(action_space.n)
        self.gamma, self.batch_size = gamma, batch_size
        self.learning_starts, self.train_freq = learning_starts, train_freq
        self.gradient_steps, self.target_update_interval = gradient_steps, target_update_interval
        self.tau, self.double, self.n_step = tau, double, n_step
        self.eps_start, self.eps_end, self.eps_decay_steps = eps_start, eps_end, eps_decay_steps
        self.max_grad_norm = max_grad_norm
        # Learning rate: `lr` falling linearly to `lr_end` over `lr_decay_steps` env steps
        # (a function of the step, so a resumed run continues the schedule exactly).
        if lr_end is not None and lr_decay_steps <= 0:
            raise ValueError(f"agent.lr_decay_steps: {lr_decay_steps} with agent.lr_end="
                             f"{lr_end} is not allowed (expected the env steps of the decay, > 0)")
        self.lr, self.lr_end, self.lr_decay_steps = lr, lr_end, lr_decay_steps
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            keep_freed_memory()

        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        obs_shape = tuple(observation_space.shape)
        if network not in NETWORKS:
            raise ValueError(f"agent.network: {network!r} is not a network (expected one of "
                             f"{list(NETWORKS)})")
        if network == "auto":
            # An env may name the network made for it (BalatroEnv: "balatro").
            network = getattr(env, "q_network", None) or "mlp"
        extra = {"action_hidden": action_hidden} if network == "balatro" else {}
        self.network = network
        self.online = build_q_network(network, obs_shape, self.n_actions, tuple(hidden_sizes),
                                      dueling, **extra).to(self.device)
        self.target = build_q_network(network, obs_shape, self.n_actions, tuple(hidden_sizes),
                                      dueling, **extra).to(self.device)
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = _adam(self.online.parameters(), lr)
        # Acting on one observation through torch costs ~60 us of dispatch for a small MLP;
        # numpy over views of the same weights (updated in place by the optimizer) ~10 us.
        self._np_layers = _numpy_layers(self.online) if self.device.type == "cpu" else None
        self.buffer = ReplayBuffer(buffer_size, obs_shape, observation_space.dtype, self.n_actions)
        self._pending: deque[Transition] = deque()  # n-step window
        self.steps = 0  # transitions observed (drives epsilon)
        self.updates = 0  # gradient steps taken
        self.last_target_sync = 0  # env step of the last hard target update
        self.guide = _build_guide(guide, observation_space, action_space, seed, env)
        if not 0.0 <= guide_episodes <= 1.0:
            raise ValueError(f"agent.guide_episodes: {guide_episodes} is not allowed (expected "
                             "a fraction in [0, 1])")
        self.guide_episodes = guide_episodes
        # Whether the guide plays the current training episode; None until its first step.
        self.guided: bool | None = None

    # ---- acting
    @property
    def epsilon(self) -> float:
        return linear_epsilon(self.steps, self.eps_start, self.eps_end, self.eps_decay_steps)

    def act(self, obs: np.ndarray, info: dict[str, Any], *, explore: bool = True) -> int:
        mask = info.get("action_mask")
        if explore and self.guide is not None:
            if self.guided is None:   # first step of a training episode: who plays it
                self.guided = bool(self.rng.random() < self.guide_episodes)
            if self.guided:
                return int(self.guide.act(obs, info, explore=False))
        if explore and self.rng.random() < self.epsilon:
            legal = np.flatnonzero(mask) if mask is not None else None
            if legal is None:
                return int(self.rng.integers(self.n_actions))
            return int(legal[self.rng.integers(len(legal))])
        if self._np_layers is not None:
            q = _numpy_forward(self._np_layers, self.online.dueling, obs)
            if mask is not None:
                q = np.where(mask, q, -np.inf)
            return int(q.argmax())
        return int(self.greedy(obs[None], None if mask is None else mask[None])[0])

    @torch.no_grad()
    def greedy(self, obs: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
        """Best legal action for a batch of observations."""
        q = self.online(torch.as_tensor(obs, device=self.device))
        m = None if masks is None else torch.as_tensor(masks, device=self.device)
        return masked_argmax(q, m).cpu().numpy()

    @torch.no_grad()
    def q_values(self, obs: np.ndarray) -> np.ndarray:
        return self.online(torch.as_tensor(obs, device=self.device)).cpu().numpy()

    # ---- learning
    def observe(self, transition: Transition) -> None:
        self.steps += 1
        # Read-only episode stats for the old tracker's log_episode_end(agent):
        # last_episode_return, last_episode_length, episodes (finished episodes seen).
        self.episode_return_so_far = getattr(self, "episode_return_so_far", 0.0) + transition.reward
        self.episode_length_so_far = getattr(self, "episode_length_so_far", 0) + 1
        if transition.terminated or transition.truncated:
            self.last_episode_return = float(self.episode_return_so_far)
            self.last_episode_length = int(self.episode_length_so_far)
            self.episodes = getattr(self, "episodes", 0) + 1
            self.episode_return_so_far, self.episode_length_so_far = 0.0, 0
            self.last_episode_guided = bool(self.guided)
            self.guided = None
        if self.n_step == 1:
            self.buffer.add(transition.obs, transition.action, transition.reward,
                            transition.next_obs, transition.terminated, transition.next_mask,
                            self.gamma)
            return
        self._pending.append(transition)
        if len(self._pending) == self.n_step:
            self._emit_oldest()
        if transition.terminated or transition.truncated:
            while self._pending:
                self._emit_oldest()

    def _emit_oldest(self) -> None:
        """Fold the window into one n-step transition starting at its oldest step."""
        ret, discount = 0.0, 1.0
        last = self._pending[0]
        for t in self._pending:
            ret += discount * t.reward
            discount *= self.gamma
            last = t
            if t.terminated or t.truncated:
                break
        first = self._pending.popleft()
        self.buffer.add(first.obs, first.action, ret, last.next_obs, last.terminated,
                        last.next_mask, discount)

    def update(self, step: int) -> dict[str, float]:
        if len(self.buffer) < max(self.learning_starts, self.batch_size) or step % self.train_freq:
            return {}
        loss = q_mean = 0.0
        metrics: dict[str, float] = {}
        if self.lr_end is not None:
            lr = linear_epsilon(step, self.lr, self.lr_end, self.lr_decay_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            metrics["train/lr"] = lr
        for _ in range(self.gradient_steps):
            loss, q_mean = self._gradient_step()
        if self.tau >= 1.0:
            if step - self.last_target_sync >= self.target_update_interval:
                self.target.load_state_dict(self.online.state_dict())
                self.last_target_sync = step
        else:
            with torch.no_grad():
                torch._foreach_lerp_(list(self.target.parameters()),
                                     list(self.online.parameters()), self.tau)
        return {"train/loss": loss, "train/q_mean": q_mean, "train/epsilon": self.epsilon,
                "train/buffer_size": float(len(self.buffer)), **metrics}

    def _gradient_step(self) -> tuple[float, float]:
        b = {k: torch.as_tensor(v, device=self.device)
             for k, v in self.buffer.sample(self.batch_size, self.rng).items()}
        n = self.batch_size
        if self.double and hasattr(self.online, "q_at"):
            q_taken, target = self._double_q_at(b)
        else:
            q_taken, target = self._full_q(b)
        loss = nn.functional.smooth_l1_loss(q_taken, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), self.max_grad_norm, foreach=True)
        self.optimizer.step()
        self.updates += 1
        return float(loss.detach()), float(q_taken.detach().mean())

    def _double_q_at(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Q(s, a) and the Double DQN target for networks that score single actions
        (`q_at`): only the online argmax over s' needs every action's value."""
        n = self.batch_size
        with torch.no_grad():
            # Input features do not depend on the weights: computed once for s and s'.
            obs_f, next_f = _split_features(
                self.online.subset_features(torch.cat([b["obs"], b["next_obs"]]).float()), n)
            next_online = self.online(b["next_obs"], next_f)
            target = double_td_target(
                b["rewards"], b["dones"], b["discounts"], next_online, b["next_masks"],
                lambda best: self.target.q_at(b["next_obs"], best, next_f))
        return self.online.q_at(b["obs"], b["actions"], obs_f), target

    def _full_q(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Q(s, a) and the TD target from full forward passes (every action scored)."""
        n = self.batch_size
        both = torch.cat([b["obs"], b["next_obs"]])
        extra: dict[str, Any] = {}
        next_extra: dict[str, Any] = {}
        if hasattr(self.online, "subset_features"):
            with torch.no_grad():
                obs_f, next_f = _split_features(self.online.subset_features(both.float()), n)
            extra, next_extra = {"features": obs_f}, {"features": next_f}
        if self.double and not extra:
            # One forward over obs and next_obs together: fewer dispatches on small nets.
            q_all = self.online(both)
            q, next_online = q_all[:n], q_all[n:].detach()
        else:
            q = self.online(b["obs"], **extra)
            next_online = None
            if self.double:
                with torch.no_grad():
                    next_online = self.online(b["next_obs"], **next_extra)
        with torch.no_grad():
            target = td_target(b["rewards"], b["dones"], b["discounts"],
                               self.target(b["next_obs"], **next_extra), b["next_masks"],
                               next_online)
        return q.gather(1, b["actions"].unsqueeze(1)).squeeze(1), target

    # ---- persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "buffer": {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v)
                       for k, v in self.buffer.state_dict().items()},
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "steps": self.steps,
            "updates": self.updates,
            "last_target_sync": self.last_target_sync,
            "guided": self.guided,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict({k: (v.numpy() if isinstance(v, torch.Tensor) else v)
                                     for k, v in state["buffer"].items()})
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.steps = int(state["steps"])
        self.updates = int(state["updates"])
        self.last_target_sync = int(state["last_target_sync"])
        self.guided = state.get("guided")   # absent in checkpoints from before agent.guide
        self._pending.clear()

    def policy_model(self) -> nn.Module:
        return self.online


def _build_guide(guide: str, observation_space: gym.Space, action_space: gym.spaces.Discrete,
                 seed: int, env: Any) -> Any:
    """The player of guided training episodes (`agent.guide`), or None.

    Guided episodes are learning-from-demonstration in its plainest form: the guide's
    transitions go into the replay buffer like the agent's own, and off-policy Q-learning
    learns the values of the states it reaches (late antes, levelled hands) that the
    agent's own epsilon-greedy play seldom gets to. The agent's greedy policy remains its
    own argmax; evaluation never asks the guide.
    """
    from pipeline.config import GUIDES

    if guide not in GUIDES:
        raise ValueError(f"agent.guide: {guide!r} is not allowed (expected one of {list(GUIDES)})")
    if guide == "none":
        return None
    from pipeline.agents.baselines import HeuristicAgent
    from pipeline.envs.balatro import actions as A
    from pipeline.envs.balatro import env as E

    if tuple(observation_space.shape or ()) != (E.OBS_DIM,) or action_space.n != A.N_ACTIONS:
        raise ValueError("agent.guide: heuristic plays Balatro only (expected env=balatro or "
                         "env=balatro_live, or agent.guide=none)")
    return HeuristicAgent(observation_space, action_space, seed=seed, env=env)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # glibc mallopt parameters (malloc.h)
_heap_tuned = False


def keep_freed_memory(threshold: int = 1 << 30) -> bool:
    """Ask glibc to serve large blocks from the heap and keep freed memory for reuse.

    By default glibc maps every block over ~128 KB-32 MB fresh from the kernel and gives it
    back on free, so each batch-sized tensor the update allocates page-faults again: with
    the Balatro network that was 28% of a run's time in the kernel (43 s of 155 s). With
    both thresholds raised, the blocks are reused (measured: gradient step 17.3 -> 12.2 ms,
    system time 6.3 -> 0.4 s over 4,000 steps). Process-wide and idempotent; a no-op where
    the C library is not glibc. Returns whether the setting took.
    """
    global _heap_tuned
    if _heap_tuned:
        return True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        _heap_tuned = bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, 2 * threshold))
    except (OSError, AttributeError):
        _heap_tuned = False
    return _heap_tuned


def _split_features(features: tuple[torch.Tensor, ...], n: int
                    ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Subset features of cat([obs, next_obs]) (batch on dim 1) -> those of obs, of next_obs."""
    return tuple(f[:, :n] for f in features), tuple(f[:, n:] for f in features)


def _adam(params: Any, lr: float) -> torch.optim.Optimizer:
    """Fused Adam (one kernel for all parameters) where this torch build has it."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr)


def _numpy_layers(net: nn.Module) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Zero-copy numpy views of an MLP Q-network's (weight.T, bias) pairs: body, head, value."""
    if not isinstance(net, QNetwork) or not isinstance(net.encoder, nn.Flatten):
        return None
    linears = [m for m in net.body if isinstance(m, nn.Linear)] + [net.head]
    if net.value is not None:
        linears.append(net.value)
    return [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in linears]


def _numpy_forward(layers: list[tuple[np.ndarray, np.ndarray]], dueling: bool,
                   obs: np.ndarray) -> np.ndarray:
    """QNetwork.forward for one observation, in numpy (ReLU body, linear head(s))."""
    x = np.asarray(obs, dtype=np.float32).reshape(-1)
    n_body = len(layers) - (2 if dueling else 1)
    for w, b in layers[:n_body]:
        x = np.maximum(x @ w + b, 0.0)
    w, b = layers[n_body]
    q = x @ w + b
    if dueling:
        vw, vb = layers[n_body + 1]
        q = (x @ vw + vb) + q - q.mean()
    return q
