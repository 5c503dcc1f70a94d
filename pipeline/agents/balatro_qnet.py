"""A Q-network that knows what Balatro's play and discard actions do.

A plain MLP maps the 556-float observation to 447 unrelated Q-values; it has to learn
separately, for each of the 218 card subsets, what playing or discarding those positions
is worth, and in 100k steps it does not (about 58% of Small Blinds cleared). This
network computes, inside `forward` and from the observation alone, what each subset
*is*: for a play, the poker hand it makes, how many chips it scores at the current hand
levels and whether that beats the blind; for a discard, what the kept cards are worth
(pairs, flush and straight draws, the odds of improving from the draw pile). One small
MLP shared by all subsets scores those features together with a summary of the state,
so what it learns about one subset carries over to every subset with the same meaning.

The score of a play is the simulator's (scoring.score_cards), computed in torch: hand
levels, every joker in its slot order (per-card effects, +chips, +mult, The Duo's X2, a
joker disabled by Crimson Heart doing nothing), debuffed cards, The Arm and The Flint,
and the plays The Psychic, The Eye and The Mouth forbid. A test checks it against the
simulator on thousands of plays. So what a joker adds to each hand is in the features
the moment it is owned, and the value of buying it is one bootstrap step away. Only a
face-down card's rank stays unknown, as to any player.

Everything is a function of the observation (layout: pipeline/envs/balatro/env.py), so
the replay buffer, the TD target and the checkpoints are the same as for the MLP.
Non-card actions (select, skip, buy, sell, reroll, leave) get one linear head over the
state summary.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from pipeline.envs.balatro import actions as A
from pipeline.envs.balatro import blinds as B
from pipeline.envs.balatro import env as E
from pipeline.envs.balatro import hands as H
from pipeline.envs.balatro import jokers as J
from pipeline.envs.balatro.game import MAX_JOKERS

N_PLAY_FEATURES = H.N_HAND_TYPES + 12
N_DISCARD_FEATURES = 20
_RANK_CHIPS = [min(r + 2, 10) if r < 12 else 11 for r in range(13)]
# Jokers that fire once per hand (scoring.score_cards): (joker, condition, amount) with the
# conditions in the order subset_features stacks them: always, contains a Pair, Three of a
# Kind, Two Pair, Straight, Flush, 3 or fewer cards played, no discard left, per discard
# left, per joker owned. The Duo's X2 Mult (if a Pair) is applied separately.
_ALWAYS, _PAIR, _THREE, _TWO_PAIR, _STRAIGHT, _FLUSH, _SMALL, _NO_DISCARD, _PER_DISCARD, \
    _PER_JOKER = range(10)
_JOKER_MULT = ((J.JOKER, _ALWAYS, 4), (J.JOLLY, _PAIR, 8), (J.ZANY, _THREE, 12),
               (J.MAD, _TWO_PAIR, 10), (J.CRAZY, _STRAIGHT, 12), (J.DROLL, _FLUSH, 10),
               (J.HALF, _SMALL, 20), (J.MYSTIC_SUMMIT, _NO_DISCARD, 15),
               (J.ABSTRACT, _PER_JOKER, 3), (J.GROS_MICHEL, _ALWAYS, 15))
_JOKER_CHIPS = ((J.SLY, _PAIR, 50), (J.WILY, _THREE, 100), (J.CLEVER, _TWO_PAIR, 80),
                (J.DEVIOUS, _STRAIGHT, 100), (J.CRAFTY, _FLUSH, 80), (J.BANNER, _PER_DISCARD, 30))


def _joker_table(effects: tuple[tuple[int, int, int], ...]) -> torch.Tensor:
    table = torch.zeros(J.N_JOKERS, 10)
    for joker, condition, amount in effects:
        table[joker, condition] = float(amount)
    return table


@functools.cache
def _rank_set_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """For each of the 2^13 sets of ranks (bit r = rank r present): the most distinct ranks
    in one five-rank window (a straight needs 5; the Ace also plays low), and the index of
    the highest rank present (0 for the empty set). Built once per process (~50 ms); each
    network registers its own copy."""
    window = torch.zeros(1 << 13, dtype=torch.float32)
    highest = torch.zeros(1 << 13, dtype=torch.long)
    for bits in range(1, 1 << 13):
        present = [(bits >> r) & 1 for r in range(13)]
        ext = [present[12]] + present
        window[bits] = max(sum(ext[i:i + 5]) for i in range(10))
        highest[bits] = bits.bit_length() - 1
    return window, highest


class BalatroQNetwork(nn.Module):
    """Q-values for BalatroEnv's Discrete(447) from its Box(556) observation."""

    kind = "balatro"

    def __init__(self, obs_shape: tuple[int, ...], n_actions: int,
                 hidden_sizes: tuple[int, ...] = (256, 256), dueling: bool = False,
                 action_hidden: int = 64) -> None:
        super().__init__()
        if tuple(obs_shape) != (E.OBS_DIM,) or n_actions != A.N_ACTIONS:
            raise ValueError(f"network=balatro needs BalatroEnv's spaces (obs ({E.OBS_DIM},), "
                             f"{A.N_ACTIONS} actions), got obs {tuple(obs_shape)} and {n_actions} "
                             "actions (expected agent.network=mlp for this env)")
        self.obs_shape, self.n_actions = tuple(obs_shape), n_actions
        self.dueling, self.action_hidden = dueling, action_hidden
        layers: list[nn.Module] = []
        features = E.OBS_DIM
        for width in hidden_sizes:
            layers += [nn.Linear(features, width), nn.ReLU()]
            features = width
        self.body = nn.Sequential(*layers)
        self.other_head = nn.Linear(features, A.N_ACTIONS - A.SELECT)
        self.value = nn.Linear(features, 1) if dueling else None
        # Play and discard scorers: relu(W_s state + W_f subset features) -> scalar.
        self.play_state = nn.Linear(features, action_hidden)
        self.play_feat = nn.Linear(N_PLAY_FEATURES, action_hidden, bias=False)
        self.play_out = nn.Linear(action_hidden, 1)
        self.discard_state = nn.Linear(features, action_hidden)
        self.discard_feat = nn.Linear(N_DISCARD_FEATURES, action_hidden, bias=False)
        self.discard_out = nn.Linear(action_hidden, 1)

        constant = {
            "member": torch.as_tensor(A.SUBSET_MEMBER, dtype=torch.float32),   # (218, 8)
            "rank_chips": torch.tensor(_RANK_CHIPS, dtype=torch.float32),
            "rank_bits": torch.tensor([float(1 << r) for r in range(13)]),
            "hand_base": torch.tensor(H.HAND_BASE, dtype=torch.float32),      # (12, 4)
        }
        constant["per_card"] = torch.tensor(                                  # (52, 27, 2)
            [[J.PER_CARD[j][c] for j in range(J.N_JOKERS)] for c in range(52)],
            dtype=torch.float32)
        constant["joker_chips"] = _joker_table(_JOKER_CHIPS)
        constant["joker_mult"] = _joker_table(_JOKER_MULT)
        constant["window"], constant["highest"] = (t.clone() for t in _rank_set_tables())
        for name, value in constant.items():
            self.register_buffer(name, value, persistent=False)

    def spec(self) -> dict:
        """Constructor arguments (what `pipeline.agents.networks.build_q_network` takes)."""
        return {"kind": self.kind, "obs_shape": list(self.obs_shape), "n_actions": self.n_actions,
                "hidden_sizes": [m.out_features for m in self.body if isinstance(m, nn.Linear)],
                "dueling": self.dueling, "action_hidden": self.action_hidden}

    # ---- features
    def subset_features(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Play features (N_PLAY_FEATURES, B, 218) and discard features
        (N_DISCARD_FEATURES, B, 218): one column per observation and card subset.

        Subsets are the last dimension throughout and features the first: reductions over
        ranks and suits and the final stacking touch contiguous memory, and the scorers
        below are then plain 2-D matrix products. That is what makes this cheap enough to
        run on every acting step and every sampled batch.
        """
        b = obs.shape[0]
        slots = obs[:, E.O_HAND:E.O_COUNTS].reshape(b, 8, E.SLOT_W)
        present, face_down, debuffed = slots[..., 17], slots[..., 18], slots[..., 19]
        ranks = slots[..., :13].transpose(1, 2)             # (B, 13, 8), 0 for face-down
        suits = slots[..., 13:17].transpose(1, 2)           # (B, 4, 8)
        member_t = self.member.T                            # (8, 218)
        # Subset contents, (B, 13, 218) rank counts and (B, 4, 218) suit counts; the
        # cards a discard keeps are the hand minus the subset.
        rc = ranks @ member_t
        sc = suits @ member_t
        krc = ranks.sum(2, keepdim=True) - rc
        ksc = suits.sum(2, keepdim=True) - sc
        n_cards = present @ member_t                        # (B, 218)
        n_down = face_down @ member_t
        n_debuff = debuffed @ member_t
        n_kept = present.sum(1, keepdim=True) - n_cards

        # ---- the hand each play makes (hands.evaluate's priorities) and its chips
        bits = (self.rank_bits @ (rc > 0).float()).long()   # (B, 218) rank sets
        top = rc.amax(1)
        n_pairs = (rc >= 2).float().sum(1)
        flush = sc.amax(1) >= 5
        straight = self.window[bits] >= 5
        hand_type = torch.zeros_like(bits)
        hand_type[top >= 2] = H.PAIR
        hand_type[n_pairs >= 2] = H.TWO_PAIR
        three = top >= 3
        hand_type[three] = H.THREE_KIND
        hand_type[straight] = H.STRAIGHT
        hand_type[flush] = H.FLUSH
        full = three & (n_pairs >= 2)
        hand_type[full] = H.FULL_HOUSE
        hand_type[top >= 4] = H.FOUR_KIND
        hand_type[straight & flush] = H.STRAIGHT_FLUSH
        hand_type[top >= 5] = H.FIVE_KIND
        hand_type[flush & full] = H.FLUSH_HOUSE
        hand_type[flush & (top >= 5)] = H.FLUSH_FIVE
        # Scoring cards, card by card (B, 8, 218): ranks held `need` times (Pair 2, Two
        # Pair 2, Three 3, Four 4), every card of a five-card hand, the highest for High Card.
        need = torch.ones_like(top)
        need[(hand_type == H.PAIR) | (hand_type == H.TWO_PAIR)] = 2.0
        need[hand_type == H.THREE_KIND] = 3.0
        need[hand_type == H.FOUR_KIND] = 4.0
        card_ranks = ranks.transpose(1, 2)                  # (B, 8, 13)
        own_count = card_ranks @ rc                         # copies of card i's rank in subset k
        known = card_ranks.sum(2, keepdim=True)             # 0 for empty and face-down slots
        top_rank = self.highest[bits]                        # (B, 218)
        is_top = (card_ranks.argmax(2)[:, :, None] == top_rank[:, None, :]).float() * known
        scores = torch.where((hand_type == H.HIGH_CARD)[:, None, :], is_top,
                             (own_count >= need[:, None, :]).float())
        # Debuffed cards count for the hand type but add nothing and trigger nothing.
        scoring = scores * member_t * (1.0 - debuffed)[:, :, None]
        card_chips = (card_ranks @ self.rank_chips)[:, None, :] @ scoring   # (B, 1, 218)
        # Jokers (reference section 2): per-card effects fire for each scoring card, then
        # every active joker left to right adds chips or mult or multiplies the mult.
        owned = obs[:, E.O_JOKERS:E.O_JOKER_OFF].reshape(b, MAX_JOKERS, J.N_JOKERS)
        active = owned * (1.0 - obs[:, E.O_JOKER_OFF:E.O_SHOP])[:, :, None]
        cards = (card_ranks[:, :, :, None] * suits.transpose(1, 2)[:, :, None, :]).reshape(b, 8, 52)
        per_card = (cards @ self.per_card.reshape(52, -1)).reshape(b, 8, J.N_JOKERS, 2)
        per_card = (per_card * active.sum(1)[:, None, :, None]).sum(2)   # (B, 8, [chips, mult])
        bonus = per_card.transpose(1, 2) @ scoring         # (B, 2, 218)
        # Hand base at the current levels: The Arm lowers the played hand's level first,
        # The Flint halves chips and mult (rounding half up, mult at least 1).
        boss = obs[:, E.O_BOSS:E.O_BOSS + B.N_BOSSES] * obs[:, E.O_BOSS + B.N_BOSSES, None]
        levels_up = obs[:, E.O_LEVELS:E.O_TYPES] * 10.0     # level - 1, (B, 12)
        levels_up = levels_up - boss[:, B.ARM, None] * (levels_up > 0.5).float()
        base = self.hand_base
        chips = torch.gather(base[:, 0] + levels_up * base[:, 2], 1, hand_type)
        mult = torch.gather(base[:, 1] + levels_up * base[:, 3], 1, hand_type)
        flint = boss[:, B.FLINT, None] > 0.5
        chips = torch.where(flint, torch.floor(chips * 0.5 + 0.5), chips)
        mult = torch.where(flint, torch.floor(mult * 0.5 + 0.5).clamp_min(1.0), mult)
        chips = chips + card_chips[:, 0] + bonus[:, 0]
        mult = mult + bonus[:, 1]
        discards = obs[:, E.O_ROUND + 1, None] * 5.0
        conditions = torch.stack([                           # (C, B, 218), rows of JOKER_TABLE
            torch.ones_like(top), (top >= 2).float(), (top >= 3).float(),
            (n_pairs >= 2).float(), straight.float(), flush.float(), (n_cards <= 3).float(),
            (discards < 0.5).float().expand_as(top), discards.expand_as(top),
            owned.sum((1, 2))[:, None].expand_as(top)])
        add_chips = torch.einsum("bsj,jc,cbk->bk", active, self.joker_chips, conditions)
        add_mult = torch.einsum("bsj,jc,cbk->sbk", active, self.joker_mult, conditions)
        times = 1.0 + active[:, :, J.THE_DUO].T[:, :, None] * conditions[1]   # (5, B, 218)
        for slot in range(MAX_JOKERS):
            mult = (mult + add_mult[slot]) * times[slot]
        chips = chips + add_chips
        # A play the boss forbids scores nothing (The Psychic, The Eye, The Mouth).
        played = obs[:, E.O_TYPES:E.O_JOKERS]
        played_this = torch.gather(played, 1, hand_type)
        forbidden = (boss[:, B.PSYCHIC, None] * (n_cards < 5).float()
                     + boss[:, B.EYE, None] * played_this
                     + boss[:, B.MOUTH, None] * (played.sum(1, keepdim=True) > 0.5).float()
                     * (1.0 - played_this))
        allowed = (forbidden < 0.5).float()
        score = torch.floor(chips * mult) * allowed
        card_chips = card_chips[:, 0]
        target = torch.pow(10.0, obs[:, E.O_ROUND + 3] * 10.0)[:, None]
        needed = (target * (1.0 - obs[:, E.O_ROUND + 2])[:, None]).clamp_min(1.0)
        type_one_hot = torch.zeros(H.N_HAND_TYPES, *hand_type.shape, dtype=obs.dtype,
                                   device=obs.device).scatter_(0, hand_type[None], 1.0)
        play = torch.cat([type_one_hot, torch.stack([
            n_cards / 5.0, n_down / 5.0, n_debuff / 5.0,
            (score / needed).clamp(max=2.0) / 2.0, (score >= needed).float(),
            torch.log1p(score) / 10.0, (score / target).clamp(max=4.0) / 4.0,
            torch.log1p(chips) / 7.0, torch.log1p(mult) / 5.0, card_chips / 55.0,
            (n_cards > 0).float(), allowed,
        ])])

        # ---- what a discard keeps, and the odds of improving it from the draw pile
        k_present = (krc > 0).float()
        k_pair = (krc >= 2).float()
        k_top = krc.amax(1)
        k_pairs = k_pair.sum(1)
        k_trips = (krc >= 3).float().sum(1)
        k_suit, best_suit = ksc.max(1)
        k_straight = self.window[(self.rank_bits @ k_present).long()]
        deck = obs[:, E.O_DECK:E.OBS_DIM].reshape(b, 13, 4)
        deck_ranks, deck_suits = deck.sum(2), deck.sum(1)   # (B, 13), (B, 4)
        left = deck_suits.sum(1, keepdim=True).clamp_min(1.0)  # cards in the draw pile
        flush_outs = torch.gather(deck_suits, 1, best_suit) / left
        pair_outs = (deck_ranks[:, None, :] @ k_present).squeeze(1) / left
        trip_outs = (deck_ranks[:, None, :] @ k_pair).squeeze(1) / left
        kept_chips = (krc * self.rank_chips[:, None]).sum(1)
        discard = torch.stack([
            n_cards / 5.0, n_down / 5.0, n_debuff / 5.0, n_kept / 8.0,
            k_top / 4.0, k_pairs / 4.0, k_trips / 2.0, k_suit / 8.0, k_straight / 5.0,
            (k_suit >= 4).float(), (k_straight >= 4).float(), (k_top >= 3).float(),
            flush_outs, pair_outs, trip_outs, kept_chips / 80.0,
            (n_cards * flush_outs).clamp(max=1.0), (n_cards * pair_outs).clamp(max=1.0),
            (n_cards * trip_outs).clamp(max=1.0), (n_cards > 0).float(),
        ])
        return play, discard

    # ---- forward
    def forward(self, obs: torch.Tensor,
                features: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Q-values (B, 447). `features`: `subset_features(obs)` when the caller already has
        them (the DQN update shares them between the online and the target network)."""
        obs = obs.float()
        h = self.body(obs)
        if features is None:
            with torch.no_grad():
                features = self.subset_features(obs)
        play_f, discard_f = features
        q_play = _score_subsets(h, play_f, self.play_state, self.play_feat, self.play_out)
        q_discard = _score_subsets(h, discard_f, self.discard_state, self.discard_feat,
                                   self.discard_out)
        q = torch.cat([q_play, q_discard, self.other_head(h)], dim=1)
        if self.value is not None:
            q = self.value(h) + q - q.mean(dim=1, keepdim=True)
        return q


    def q_at(self, obs: torch.Tensor, actions: torch.Tensor,
             features: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Q(obs[i], actions[i]) only, (B,): the DQN update needs one value per row for the
        taken action and for the target's bootstrap, and scoring one subset instead of 436
        is most of the update's cost. Equal to `forward(obs).gather(1, actions)` (tested)."""
        if self.value is not None:   # the dueling mean needs every action
            return self.forward(obs, features).gather(1, actions[:, None]).squeeze(1)
        obs = obs.float()
        h = self.body(obs)
        if features is None:
            with torch.no_grad():
                features = self.subset_features(obs)
        rows = torch.arange(obs.shape[0], device=obs.device)
        subset = torch.where(actions < A.DISCARD, actions, actions - A.DISCARD)
        subset = subset.clamp(0, A.N_SUBSETS - 1)
        play_f, discard_f = (f[:, rows, subset][:, :, None] for f in features)  # (F, B, 1)
        q_play = _score_subsets(h, play_f, self.play_state, self.play_feat, self.play_out)
        q_discard = _score_subsets(h, discard_f, self.discard_state, self.discard_feat,
                                   self.discard_out)
        other = (actions - A.SELECT).clamp(0, A.N_ACTIONS - A.SELECT - 1)
        q_other = self.other_head(h).gather(1, other[:, None])
        kind = actions[:, None]
        return torch.where(kind < A.DISCARD, q_play,
                           torch.where(kind < A.SELECT, q_discard, q_other)).squeeze(1)


def _score_subsets(h: torch.Tensor, features: torch.Tensor, state: nn.Linear, feat: nn.Linear,
                   out: nn.Linear) -> torch.Tensor:
    """out(relu(state(h) + feat(features))) for every subset: (F, B, K) features -> (B, K)."""
    f, b, k = features.shape
    hidden = (feat.weight @ features.reshape(f, b * k)).reshape(-1, b, k)  # (hidden, B, K)
    hidden = torch.relu(hidden + state(h).T[:, :, None])
    return (out.weight @ hidden.reshape(-1, b * k)).reshape(b, k) + out.bias
