"""research/training_cost.py: a convolution's backward pass is counted as twice its forward one, depthwise ones too
(torch's own formula counts a depthwise weight gradient once per channel), and the cost model takes the longer of
the FLOP time and the launch time."""
import pytest
import torch
from research_fixtures import load_tool
from torch.utils.flop_counter import FlopCounterMode

cost = load_tool("training_cost")


@pytest.mark.parametrize("groups", [1, 4, 32], ids=["dense", "grouped", "depthwise"])
def test_a_convolutions_backward_is_twice_its_forward(groups):
    conv = torch.nn.Conv2d(32, 32, 3, padding=1, groups=groups)
    x = torch.rand(2, 32, 16, 16, requires_grad=True)
    mapping = {torch.ops.aten.convolution_backward: cost.conv_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        conv(x).sum().backward()
    counts = counter.get_flop_counts()["Global"]
    forward = 2 * 2 * 16 * 16 * 32 * (32 // groups) * 9           # 2 FLOPs per multiply-add
    assert counts[torch.ops.aten.convolution] == forward
    assert counts[torch.ops.aten.convolution_backward] == 2 * forward


def test_the_cost_model_takes_the_slower_of_flops_and_launches():
    t4, h100 = cost.CARDS["T4"], cost.CARDS["H100"]
    stage = {"gflops_per_image": 10.0, "operations_per_step": 1000}
    slow = cost.card_rates(stage, t4)          # 8 x 10 GFLOP at 5 % of 65 TFLOPS: 24.6 ms > 1000 x 10 us
    assert slow["bound"] == "FLOPs" and slow["images_per_s"] == pytest.approx(8 / (80e9 / (65e12 * 0.05)))
    fast = cost.card_rates(stage, h100)        # 1.6 ms of FLOPs < 10 ms of launches
    assert fast["bound"] == "launches" and fast["images_per_s"] == pytest.approx(800)
    two = cost.card_rates(stage, cost.CARDS["2x T4"])
    assert two["images_per_s"] == pytest.approx(2 * slow["images_per_s"])
    assert slow["hours_per_epoch"] == pytest.approx(29_603 / slow["images_per_s"] / 3600)
