import pytest

from smallvision.errors import UserError
from smallvision.registry import MODELS, Registry, check_params


def test_duplicate_names_are_errors():
    r = Registry("thing")
    r.register("a")(int)
    with pytest.raises(ValueError, match="duplicate thing name 'a'"):
        r.register("a")(float)


def test_unknown_name_suggests_close_match():
    r = Registry("thing")
    r.register("cnn_bn")(int)
    with pytest.raises(UserError, match="did you mean 'cnn_bn'"):
        r.get("cnn_nb")


def test_families_register_on_first_lookup():
    assert {"cnn_small", "cnn_bn"} <= set(MODELS.list())
    assert MODELS.list("cnn_*") == sorted(n for n in MODELS.list() if n.startswith("cnn_"))


def test_check_params_names_the_key():
    def f(a, b=1):
        return a

    check_params(f, {"b": 2}, "model.params")
    with pytest.raises(UserError, match=r"model\.params\.bb: unknown parameter; did you mean 'b'"):
        check_params(f, {"bb": 2}, "model.params")
