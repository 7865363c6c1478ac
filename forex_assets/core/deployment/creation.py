"""Making a new store: a git repository, its .gitignore and the seed configurations, in one first commit
(pure, no Dagster). The caller holds the store lock."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from forex_assets.core.deployment.git_repo import GitRepo
from forex_assets.core.deployment.history import with_trailers
from forex_assets.core.deployment.layout import GITIGNORE, config_file_name
from forex_assets.core.forecasting.config import parse_config
from forex_assets.core.horizons import HORIZONS


def create_store(root: Path, seed_dir: Path | None) -> GitRepo:
    """Initialise ``root`` (an existing directory without .git) from the ``chronos_<h>.json`` files in
    ``seed_dir``; a seed that is not a valid configuration is refused (ConfigError)."""
    repo = GitRepo.init(root)
    (root / ".gitignore").write_text(GITIGNORE)
    names = [".gitignore"]
    if seed_dir is not None:
        for horizon in HORIZONS:
            source = seed_dir / config_file_name(horizon)
            if source.is_file():
                parse_config(json.loads(source.read_text()), str(source))  # refuse a bad seed
                shutil.copy2(source, root / source.name)
                names.append(source.name)
    message = with_trailers(f"initialise configuration store from {seed_dir or 'nothing'}", "initialise")
    repo.commit_paths(message, *names)
    return repo
