"""Every option of every config group composes, every _target_ it names can be imported, and every
experiment's and trainer preset's optimizer and scheduler can be built (called on a dummy parameter list)."""

from __future__ import annotations

import hydra.utils
import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import CONFIGS, config_names

GROUPS = ["dataset", "model", "strategy", "budget", "trainer", "logger", "scenario", "proxy"]
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


# ------------------------------------------------ optimizers and schedulers: built, not only named

DATASETS = config_names("dataset")
PRESETS = sorted(p.stem for p in (CONFIGS / "trainer_preset").glob("*.yaml"))
OPTIMIZERS = sorted(p.stem for p in (CONFIGS / "trainer" / "optimizer").glob("*.yaml"))


def build_optimizer_and_scheduler(cfg) -> tuple[torch.optim.Optimizer, object]:
    """Call the trainer's optimizer / scheduler partials as training does, on a dummy parameter list."""
    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))]
    optimizer = hydra.utils.instantiate(cfg.trainer.optimizer)(params)
    scheduler = (
        hydra.utils.instantiate(cfg.trainer.scheduler)(optimizer) if cfg.trainer.get("scheduler") else None
    )
    return optimizer, scheduler


def preset_pair(name: str) -> tuple[str, str]:
    """``cifar10_resnet18`` -> (cifar10, resnet18): the longest dataset name the preset starts with."""
    dataset = max((d for d in DATASETS if name.startswith(f"{d}_")), key=len)
    return dataset, name[len(dataset) + 1 :]


@pytest.mark.parametrize("name", config_names("experiment"))
def test_experiment_optimizer_and_scheduler_instantiate(make_cfg, name):
    cfg = make_cfg(f"experiment={name}", tiny=False)
    optimizer, scheduler = build_optimizer_and_scheduler(cfg)
    assert type(optimizer).__module__.startswith("torch.optim")
    assert scheduler is None or isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)


@pytest.mark.parametrize("name", PRESETS)
def test_trainer_preset_applies_and_its_optimizer_instantiates(make_cfg, name):
    dataset, model = preset_pair(name)
    cfg = make_cfg(f"dataset={dataset}", f"model={model}", tiny=False)
    # the preset's recipe is in force (e.g. SGD for CIFAR, Adam for MNIST-like sets)
    assert cfg.trainer.max_epochs != 50 or cfg.trainer.batch_size != 32, f"preset {name} changed nothing"
    build_optimizer_and_scheduler(cfg)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("base", [["dataset=cifar10"], ["dataset=mnist"], ["experiment=badge_cifar10"]])
def test_optimizer_group_choice_replaces_the_node(make_cfg, base, name):
    """Choosing an optimizer replaces the whole node: exactly the option's keys, whatever came before."""
    cfg = make_cfg(*base, f"trainer/optimizer={name}", tiny=False)
    option = OmegaConf.load(CONFIGS / "trainer" / "optimizer" / f"{name}.yaml")
    if base[0].startswith("experiment="):  # the experiment's own values still apply on top (lr 1e-4)
        assert set(cfg.trainer.optimizer) == set(option)
    else:
        assert OmegaConf.to_container(cfg.trainer.optimizer) == OmegaConf.to_container(option)
    build_optimizer_and_scheduler(cfg)


def test_optimizer_fallback_holds_only_keys_every_optimizer_takes(make_cfg):
    """With no preset (digits), the fallback of trainer/default.yaml is the optimizer; a group choice merged
    over it (`+trainer/optimizer=sgd`) must not inherit a foreign key."""
    fallback = OmegaConf.load(CONFIGS / "trainer" / "default.yaml").optimizer
    assert set(fallback) <= {"_target_", "_partial_", "lr", "weight_decay"}
    for name in OPTIMIZERS:
        cfg = make_cfg(f"+trainer/optimizer={name}", tiny=False)
        option = OmegaConf.load(CONFIGS / "trainer" / "optimizer" / f"{name}.yaml")
        assert OmegaConf.to_container(cfg.trainer.optimizer) == OmegaConf.to_container(option)
        build_optimizer_and_scheduler(cfg)


@pytest.mark.parametrize("model", ["resnet18", "vgg11", "mlp"])
def test_badge_is_adam_without_momentum_for_every_model(make_cfg, model):
    """The defect: the experiment's Adam was merged into the CIFAR preset's SGD and got `momentum`."""
    cfg = make_cfg("experiment=badge_cifar10", f"model={model}", tiny=False)
    t = cfg.trainer
    assert t.optimizer._target_ == "torch.optim.Adam" and "momentum" not in t.optimizer
    assert (t.optimizer.lr, t.optimizer.weight_decay, t.scheduler, t.batch_size) == (1e-4, 0.0, None, 128)
    assert (t.augment, t.gradient_clip_val, t.gradient_clip_algorithm) == ("none", 0.1, "value")
    optimizer, _ = build_optimizer_and_scheduler(cfg)
    assert isinstance(optimizer, torch.optim.Adam)


@pytest.mark.parametrize(
    ("budget", "trainings", "last"),
    [("standard", 10, 10_000), ("isal", 10, 10_000), ("dispersion", 6, 17_500), ("dbal", 101, 1_020),
     ("digits", 21, 220), ("batchbald", 29, 300), ("badge", 21, 2_100)],
)  # fmt: skip
def test_budget_trainings_and_final_labels(make_cfg, budget, trainings, last):
    """rows = cycles + 1 trainings; LL4AL / core-set / ISAL end at 10,000 labels (1k..10k), not 11,000."""
    b = make_cfg(f"budget={budget}", tiny=False).budget
    assert (b.cycles + 1, b.init_size + b.cycles * b.query_size) == (trainings, last)
