"""Naming the device and deciding what precision="auto" means, with and without a GPU."""

import keras
import pytest

from lenet_utils import LenetError, device


@pytest.fixture
def fake_gpu(monkeypatch):
    """Pretend TensorFlow sees one GPU with the given details."""
    def install(**details):
        monkeypatch.setattr(device.tf.config, "list_physical_devices",
                            lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
        monkeypatch.setattr(device.tf.config.experimental, "get_device_details",
                            lambda gpu: details)
    return install


@pytest.mark.parametrize(("flags", "expected"), [
    ("fpu avx512f amx_bf16 amx_tile", True),
    ("fpu avx512f avx512_bf16", False),  # measured slower than float32 without AMX
    ("fpu avx2 fma", False),
])
def test_native_bfloat16_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert device.cpu_has_native_bfloat16(cpuinfo) is expected
    assert device.cpu_has_native_bfloat16(tmp_path / "missing") is False


def test_cpu_name_reads_the_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n")
    assert device.cpu_name(cpuinfo).startswith("CPU: AMD EPYC 7B13, ")
    assert device.cpu_name(tmp_path / "missing").startswith("CPU: ")


def test_on_this_machine_without_a_gpu_the_device_is_the_cpu():
    if device.gpus():
        pytest.skip("a GPU is visible")
    assert device.device_name() == device.cpu_name()


@pytest.mark.parametrize(("capability", "native"), [((7, 5), False), ((8, 0), True),
                                                     ((9, 0), True), (None, False)])
def test_a_gpu_decides_auto_precision_by_its_compute_capability(fake_gpu, capability,
                                                                native):
    fake_gpu(device_name="NVIDIA T4" if capability == (7, 5) else "NVIDIA H100",
             compute_capability=capability)
    assert device.device_name().startswith("GPU: NVIDIA ")
    assert device.has_native_bfloat16() is native
    assert device.resolve_precision("auto") == ("mixed_bfloat16" if native else "float32")
    assert device.resolve_precision("float32") == "float32"


@pytest.mark.parametrize("native", [True, False])
def test_without_a_gpu_auto_precision_follows_the_cpu(monkeypatch, native):
    monkeypatch.setattr(device, "gpus", lambda: [])
    monkeypatch.setattr(device, "cpu_has_native_bfloat16", lambda: native)
    assert device.resolve_precision("auto") == ("mixed_bfloat16" if native else "float32")


def test_unknown_precision_is_refused():
    with pytest.raises(LenetError, match="precision='float16' is unknown"):
        device.resolve_precision("float16")


def test_dtype_policy_is_restored_even_after_an_error():
    before = keras.config.dtype_policy().name
    with pytest.raises(RuntimeError), device.dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError
    assert keras.config.dtype_policy().name == before
