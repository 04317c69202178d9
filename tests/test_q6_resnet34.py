"""q6_cnn_wandb/resnet34_features.py: 512-d features equal to torchvision's pooled ResNet-34
output, the ImageNet weights read from torchvision's cache (never downloaded), the missing-file
error in one line, and the MLP run on random-weight features, labelled as such and cached."""

import pytest
import torch
import torchvision

from q6_cnn_wandb import resnet34_features as rf



@pytest.fixture
def no_download(monkeypatch):
    """Any attempt to fetch weights over the network fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download weights")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_random_weights_give_the_512d_pooled_features_of_torchvision_resnet34(no_download):
    torch.manual_seed(3)
    backbone = rf.build_backbone("none")
    torch.manual_seed(3)
    reference = torchvision.models.resnet34(weights=None).eval()  # same seed -> same weights
    pooled = {}
    reference.avgpool.register_forward_hook(lambda module, inputs, output: pooled.update(out=output))
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    features = rf.extract_features(backbone, images, image_size=32, batch_size=2, device=torch.device("cpu"))
    assert features.shape == (3, rf.FEATURE_DIM) == (3, 512)
    mean = torch.tensor(rf.IMAGENET_MEAN_STD[0]).view(1, 3, 1, 1)
    std = torch.tensor(rf.IMAGENET_MEAN_STD[1]).view(1, 3, 1, 1)
    with torch.no_grad():
        reference((images.float() / 255 - mean) / std)
    # Batches of 2 against one of 3: float32 summation order differs slightly (features are ~20).
    torch.testing.assert_close(features, pooled["out"].flatten(1), rtol=1e-4, atol=1e-4)


def test_imagenet_weights_are_loaded_from_torchvision_cache(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tmp_path / "hub" / "checkpoints" / "resnet34-b627a593.pth"
    assert rf.imagenet_weights_path() == path
    torch.manual_seed(7)
    stand_in = torchvision.models.resnet34(weights=None).state_dict()  # plays the ImageNet file
    path.parent.mkdir(parents=True)
    torch.save(stand_in, path)
    backbone = rf.build_backbone("imagenet")
    assert torch.equal(backbone.conv1.weight, stand_in["conv1.weight"])
    assert torch.equal(backbone.layer4[2].bn2.running_var, stand_in["layer4.2.bn2.running_var"])
    assert isinstance(backbone.fc, torch.nn.Identity)


def test_missing_imagenet_weights_is_one_clear_line(tmp_path, monkeypatch, capsys, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        rf.main(["--smoke", "--weights", "imagenet", "--out-dir", str(tmp_path), "--wandb-mode", "disabled"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert str(tmp_path / "hub" / "checkpoints" / "resnet34-b627a593.pth") in err[0]
    assert "--weights none" in err[0]
    assert not (tmp_path / "q6_cnn_wandb").exists()  # stopped before creating a run


def test_random_weight_run_is_labelled_cached_and_learns(tmp_path, no_download):
    argv = ["--smoke", "--train-size", "200", "--test-size", "100", "--image-size", "32",
            "--max-epochs", "25", "--out-dir", str(tmp_path), "--wandb-mode", "disabled"]
    first = rf.main(argv)
    assert first["feature_dim"] == 512 and first["weights"] == "none" and not first["pretrained"]
    assert "random" in first["weights_label"]
    run_dir = tmp_path / "q6_cnn_wandb" / "smoke-resnet34-random-weights-32px-mlp"
    assert (run_dir / "summary.json").is_file()
    assert sum(map(sum, first["confusion_matrix"])) == first["test_size"] == 100
    assert first["test_accuracy"] > 0.2  # above chance (0.1) even on random features
    caches = sorted(p.name for p in (tmp_path / "q6_cnn_wandb" / "feature_cache").iterdir())
    assert len(caches) == 2 and all("random-seed0-32px" in name for name in caches)
    assert not first["features_from_cache"]
    second = rf.main(argv)  # same seed: the cached features give the same run
    assert second["features_from_cache"]
    assert second["test_accuracy"] == first["test_accuracy"]
    assert second["epochs_run"] == first["epochs_run"]


def test_relative_change_stopping_rule():
    assert rf.relative_change(None, 1.0) == float("inf")
    assert rf.relative_change(2.0, 1.5) == pytest.approx(0.25)  # |1.5 - 2| / 2
