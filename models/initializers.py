"""Initial weights of the model zoo: the original code's, or Keras' defaults.

Every builder takes `initializer`, one of `INITIALIZERS`:

* `"original"` (the default): what the original FreeTickets code's PyTorch
  model starts from. Layers it leaves alone get PyTorch's defaults: kernels
  and biases uniform in `+-1/sqrt(fan_in)` (`nn.Linear`, `nn.Conv2d`; LeNet-5,
  LeNet-300-100, MLP-CIFAR10, VGG16, the ResNets' classifier). Convs of the
  Wide ResNet are He-normal over fan-out (`normal(0, sqrt(2 / (kh * kw *
  c_out)))`) and its classifier bias is zero, as the original's
  `WideResNet`; ResNet-50's convs are He-normal over fan-in, the `-c fanin`
  configuration of the original's ImageNet command (`ImageNet/resnet.py`);
  the CIFAR ResNet-18/34, which the original does not define, take
  torchvision's fan-out.
* `"glorot"`: Keras' layer defaults, glorot-uniform kernels and zero biases.

Normalisation layers start at scale 1 and offset 0 either way.
"""

import math

import keras

INITIALIZERS = ("original", "glorot")


def check_initializer(initializer):
    """Raises `ValueError` unless `initializer` is one of `INITIALIZERS`."""
    if initializer not in INITIALIZERS:
        raise ValueError(
            f"Invalid `initializer`: {initializer!r}. Allowed values: "
            + ", ".join(repr(i) for i in INITIALIZERS) + "."
        )
    return initializer


def _pytorch_kernel():
    # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which is
    # variance scaling with scale 1/3 (limit sqrt(3 * scale / fan_in)).
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


def _pytorch_bias(fan_in):
    # PyTorch draws a bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of its
    # layer's kernel; a Keras bias initializer sees only the bias shape, so
    # the bound is fixed here.
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def fan_in(x, kernel_size=None):
    """The fan-in of a Dense (`kernel_size` None) or conv layer applied to the
    symbolic tensor `x` (channels last)."""
    return int(x.shape[-1]) * (math.prod(kernel_size) if kernel_size else 1)


def pytorch_default(initializer, fan_in_):
    """`kernel_initializer` and `bias_initializer` of a layer the original
    leaves at PyTorch's defaults, with fan-in `fan_in_`."""
    if check_initializer(initializer) == "glorot":
        return {"kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"}
    return {"kernel_initializer": _pytorch_kernel(),
            "bias_initializer": _pytorch_bias(fan_in_)}


def he_normal(initializer, mode="fan_out"):
    """`kernel_initializer` of the Wide ResNet's and ResNets' convs:
    `normal(0, sqrt(2 / fan))` over `mode`'s fan."""
    if check_initializer(initializer) == "glorot":
        return "glorot_uniform"
    # Untruncated, as PyTorch's `normal_` and `kaiming_normal_`.
    return keras.initializers.VarianceScaling(
        scale=2.0, mode=mode, distribution="untruncated_normal")


def zero_bias_classifier(initializer):
    """Initializers of the Wide ResNet classifier: PyTorch's default kernel
    and a zero bias (the original zeroes every `nn.Linear` bias)."""
    if check_initializer(initializer) == "glorot":
        return {"kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"}
    return {"kernel_initializer": _pytorch_kernel(), "bias_initializer": "zeros"}
