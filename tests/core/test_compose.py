"""Every option of every config group composes, and every _target_ it names can be imported."""

from __future__ import annotations

import hydra.utils
import pytest
from omegaconf import OmegaConf

from tests.conftest import config_names

GROUPS = ["dataset", "model", "strategy", "budget", "trainer", "logger"]
CASES = [(g, name) for g in GROUPS for name in config_names(g)]


@pytest.mark.parametrize(("group", "name"), CASES, ids=[f"{g}={n}" for g, n in CASES])
def test_group_option_composes(make_cfg, group, name):
    cfg = make_cfg(f"{group}={name}", tiny=False)
    OmegaConf.resolve(cfg)
    node = cfg[group]
    if group in ("dataset", "model", "strategy"):
        assert node.name == name, f"configs/{group}/{name}.yaml must say name: {name}"
        hydra.utils.get_object(node._target_)
    for key in ("seed", "overwrite"):
        assert key in cfg
    assert cfg.paths.results_dir.endswith("results")


@pytest.mark.parametrize("name", config_names("experiment"))
def test_experiment_composes(make_cfg, name):
    cfg = make_cfg(f"experiment={name}", tiny=False)
    OmegaConf.resolve(cfg)
    for group in ("dataset", "model", "strategy"):
        hydra.utils.get_object(cfg[group]._target_)


def test_public_contract_keys(make_cfg):
    cfg = make_cfg(tiny=False)
    for key in (
        "seed",
        "overwrite",
        "paths.results_dir",
        "budget.init_size",
        "budget.query_size",
        "budget.cycles",
        "budget.init_balanced",
        "trainer.max_epochs",
        "trainer.warm_start",
        "dataset.data_dir" if "data_dir" in cfg.dataset else "dataset.name",
    ):
        assert OmegaConf.select(cfg, key, throw_on_missing=True) is not None or key == "overwrite"
    assert cfg.dataset.name == "digits" and cfg.model.name == "mlp"


def test_default_results_dir_is_results_runs():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.conftest import CONFIGS

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("config")
    GlobalHydra.instance().clear()
    assert cfg.paths.results_dir == "results/runs"


@pytest.mark.parametrize(
    ("overrides", "model", "budget", "optimizer", "epochs"),
    [
        (["dataset=cifar10"], "resnet18", "standard", "torch.optim.SGD", 200),
        (["dataset=svhn", "model=vgg16"], "vgg16", "standard", "torch.optim.SGD", 200),
        (["dataset=mnist"], "dbal_cnn", "dbal", "torch.optim.Adam", 50),
        (
            ["dataset=cifar10", "model=mlp"],
            "mlp",
            "standard",
            "torch.optim.Adam",
            50,
        ),  # no preset for this pair
        (
            ["dataset=cifar10", "budget=badge", "trainer.max_epochs=3"],
            "resnet18",
            "badge",
            "torch.optim.SGD",
            3,
        ),
        (["dataset=digits"], "mlp", "digits", "torch.optim.Adam", 50),
    ],
)
def test_dataset_presets_and_command_line_precedence(make_cfg, overrides, model, budget, optimizer, epochs):
    cfg = make_cfg(*overrides, tiny=False)
    assert (cfg.model.name, cfg.budget.name) == (model, budget)
    assert (cfg.trainer.optimizer._target_, cfg.trainer.max_epochs) == (optimizer, epochs)


def test_cifar_preset_is_the_protocol(make_cfg):
    cfg = make_cfg("dataset=cifar10", tiny=False)
    t = cfg.trainer
    assert (t.batch_size, t.optimizer.lr, t.optimizer.momentum, t.optimizer.weight_decay) == (
        128,
        0.1,
        0.9,
        5e-4,
    )
    assert list(t.scheduler.milestones) == [160] and t.scheduler.gamma == 0.1
    assert cfg.budget.init_size == 1000 and cfg.budget.query_size == 1000 and cfg.budget.pool_subset == 10000
