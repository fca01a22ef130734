"""Random-weight stand-in for DeepFace's FaceNet-128d ONNX graph (facenet_weights.onnx).

Tests place it under $DEEPFACE_HOME/.deepface/weights/ so DeepFace's ONNX backend loads it
offline instead of downloading the real one. The architecture mirrors Inception-ResNet-v1 in
deepface/models/facial_recognition/pytorch/Facenet.py layer for layer; only the weights are
made up, so embeddings are meaningless but have the real shapes, dtypes and cost.

Initializers are named after the PyTorch state_dict keys. Those that are PyTorch parameters
(all but the BN running stats and the residual scale constants) hold 22,793,728 values, the
count of InceptionResNetV1(128).parameters(): 22,764,896 conv / linear weights and biases plus
14,416 BN gammas (frozen at 1, hence the trainable count 22,779,312) and 14,416 BN betas.
Adding the 28,832 running stats gives 22,808,144, the total keras reports for the tf model.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BN_EPS = 1e-3  # deepface's value, not torch's default 1e-5
# old enough for any onnxruntime since 1.13, not just the newest one in the venv
OPSET = 17
IR_VERSION = 8


class _Graph:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.initializers: list = []

    def tensor(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def op(self, op_type: str, inputs: list, output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output

    def normal(self, shape: tuple, std: float) -> np.ndarray:
        return self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    def conv(self, x, name, cin, cout, kernel, stride=1, padding=0, bias=False) -> str:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        # He scaling keeps the second moment roughly constant through conv + relu stacks; BN
        # with identity running stats cannot renormalise anything
        weight = self.normal((cout, cin, kh, kw), np.sqrt(2 / (cin * kh * kw)))
        inputs = [x, self.tensor(f"{name}.weight", weight)]
        if bias:
            inputs.append(self.tensor(f"{name}.bias", self.normal(cout, 0.1)))
        attrs = {
            "kernel_shape": [kh, kw],
            "strides": [stride, stride],
            "pads": [ph, pw, ph, pw],
        }
        return self.op("Conv", inputs, name, **attrs)

    def bn(self, x, name, channels) -> str:
        # gamma stays 1 as deepface's scale=False; mean 0 / var 1 leave BN a shift by beta
        params = [
            self.tensor(f"{name}.weight", np.ones(channels)),
            self.tensor(f"{name}.bias", self.normal(channels, 0.1)),
            self.tensor(f"{name}.running_mean", np.zeros(channels)),
            self.tensor(f"{name}.running_var", np.ones(channels)),
        ]
        return self.op("BatchNormalization", [x, *params], name, epsilon=BN_EPS)

    def conv_bn(self, x, name, cin, cout, kernel, stride=1, padding=0) -> str:
        x = self.conv(x, f"{name}.conv", cin, cout, kernel, stride, padding)
        return self.op("Relu", [self.bn(x, f"{name}.bn", cout)], f"{name}.relu")

    def seq(self, x, name, cin, layers) -> str:
        """Chain of ConvBn's; layers are (cout, kernel, stride, padding) tuples."""
        for i, (cout, kernel, stride, padding) in enumerate(layers):
            x = self.conv_bn(x, f"{name}.{i}", cin, cout, kernel, stride, padding)
            cin = cout
        return x

    def max_pool(self, x, name) -> str:
        return self.op("MaxPool", [x], name, kernel_shape=[3, 3], strides=[2, 2])

    def residual(self, x, name, branches, mixed, channels, scale, activation=True) -> str:
        """x + scale * up(concat(branches)), then relu; mixed is the concat's channel count."""
        up = self.op("Concat", branches, f"{name}.cat", axis=1)
        up = self.conv(up, f"{name}.up", mixed, channels, 1, bias=True)
        if scale != 1.0:  # the last Block8 multiplies by 1.0, which is not worth a node
            factor = self.tensor(f"{name}.scale", np.array(scale))
            up = self.op("Mul", [up, factor], f"{name}.scaled")
        x = self.op("Add", [x, up], f"{name}.add")
        return self.op("Relu", [x], f"{name}.relu") if activation else x


def _block35(g: _Graph, x: str, name: str) -> str:
    branches = [
        g.conv_bn(x, f"{name}.branch_0", 256, 32, 1),
        g.seq(x, f"{name}.branch_1", 256, [(32, 1, 1, 0), (32, 3, 1, 1)]),
        g.seq(x, f"{name}.branch_2", 256, [(32, 1, 1, 0), (32, 3, 1, 1), (32, 3, 1, 1)]),
    ]
    return g.residual(x, name, branches, 96, 256, 0.17)


def _block17(g: _Graph, x: str, name: str) -> str:
    branches = [
        g.conv_bn(x, f"{name}.branch_0", 896, 128, 1),
        g.seq(
            x,
            f"{name}.branch_1",
            896,
            [(128, 1, 1, 0), (128, (1, 7), 1, (0, 3)), (128, (7, 1), 1, (3, 0))],
        ),
    ]
    return g.residual(x, name, branches, 256, 896, 0.1)


def _block8(g: _Graph, x: str, name: str, scale: float = 0.2, activation: bool = True) -> str:
    branches = [
        g.conv_bn(x, f"{name}.branch_0", 1792, 192, 1),
        g.seq(
            x,
            f"{name}.branch_1",
            1792,
            [(192, 1, 1, 0), (192, (1, 3), 1, (0, 1)), (192, (3, 1), 1, (1, 0))],
        ),
    ]
    return g.residual(x, name, branches, 384, 1792, scale, activation)


def write_facenet128_onnx(path, seed: int = 0) -> None:
    """Write a FaceNet-128d shaped ONNX graph with seeded random weights to path."""
    g = _Graph(seed)
    # the real export takes channels-last images like the keras model did
    x = g.op("Transpose", ["input"], "to_nchw", perm=[0, 3, 1, 2])

    x = g.conv_bn(x, "conv2d_1a_3x3", 3, 32, 3, stride=2)
    x = g.conv_bn(x, "conv2d_2a_3x3", 32, 32, 3)
    x = g.conv_bn(x, "conv2d_2b_3x3", 32, 64, 3, padding=1)
    x = g.max_pool(x, "maxpool_3a_3x3")
    x = g.conv_bn(x, "conv2d_3b_1x1", 64, 80, 1)
    x = g.conv_bn(x, "conv2d_4a_3x3", 80, 192, 3)
    x = g.conv_bn(x, "conv2d_4b_3x3", 192, 256, 3, stride=2)

    for i in range(5):
        x = _block35(g, x, f"block35.{i}")
    x = g.op(
        "Concat",
        [
            g.conv_bn(x, "mixed_6a.branch_0", 256, 384, 3, stride=2),
            g.seq(
                x,
                "mixed_6a.branch_1",
                256,
                [(192, 1, 1, 0), (192, 3, 1, 1), (256, 3, 2, 0)],
            ),
            g.max_pool(x, "mixed_6a.branch_2"),
        ],
        "mixed_6a",
        axis=1,
    )
    for i in range(10):
        x = _block17(g, x, f"block17.{i}")
    x = g.op(
        "Concat",
        [
            g.seq(x, "mixed_7a.branch_0", 896, [(256, 1, 1, 0), (384, 3, 2, 0)]),
            g.seq(x, "mixed_7a.branch_1", 896, [(256, 1, 1, 0), (256, 3, 2, 0)]),
            g.seq(
                x,
                "mixed_7a.branch_2",
                896,
                [(256, 1, 1, 0), (256, 3, 1, 1), (256, 3, 2, 0)],
            ),
            g.max_pool(x, "mixed_7a.branch_3"),
        ],
        "mixed_7a",
        axis=1,
    )
    for i in range(5):
        x = _block8(g, x, f"block8.{i}")
    x = _block8(g, x, "block8.5", scale=1.0, activation=False)

    # dropout is an identity at inference, so it has no node
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x], "avgpool")], "flatten")
    # no relu follows, so plain 1 / fan_in variance
    weight = g.tensor("bottleneck.weight", g.normal((128, 1792), np.sqrt(1 / 1792)))
    x = g.op("Gemm", [x, weight], "bottleneck", transB=1)
    g.bn(x, "bottleneck_bn", 128)

    graph = helper.make_graph(
        g.nodes,
        "facenet128d_random",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 160, 160, 3])],
        [helper.make_tensor_value_info("bottleneck_bn", TensorProto.FLOAT, ["N", 128])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.save(model, str(path))
