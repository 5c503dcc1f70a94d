"""Game environments. Importing this package registers every env with gymnasium."""
from gymnasium.envs.registration import register, registry

_ENVS = {
    "pipeline/Balatro-v0": "pipeline.envs.balatro.env:BalatroEnv",
    "pipeline/BalatroLive-v0": "pipeline.envs.balatro_live:BalatroLiveEnv",
    "pipeline/GameBoy-v0": "pipeline.envs.gameboy:GameBoyEnv",
    "pipeline/PokemonRed-v0": "pipeline.envs.pokemon_red:PokemonRedEnv",
}

for _id, _entry in _ENVS.items():
    if _id not in registry:
        register(id=_id, entry_point=_entry)
