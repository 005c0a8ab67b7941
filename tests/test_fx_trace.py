"""qlearn.fx: symbolic tracing against torch.fx (node op / target sequences), exact
outputs of the generated code, the control-flow error, and the graph-editing utilities."""
import operator

import numpy as np
import pytest

import qlearn as ql
import qlearn.nn.functional as F
from qlearn import nn
from qlearn.fx import Graph, GraphModule, Proxy, TraceError, Tracer, symbolic_trace
from qlearn.nn.functional import relu as imported_relu


def _copy_weights(qmodel, tmodel):
    """Copy torch parameters and buffers into the qlearn model of the same structure."""
    sd = {k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()}
    for name, p in qmodel.named_parameters():
        p.data[...] = sd[name]
    for name, b in qmodel.named_buffers():
        if isinstance(b, np.ndarray) and name in sd:
            b[...] = sd[name]


def _signature(gm):
    """(op, target) per node with function targets by name, comparable across libraries."""
    out = []
    for n in gm.graph.nodes:
        t = n.target
        if n.op == "call_function":
            t = t.__name__
        out.append((n.op, t))
    return out


# -- models written twice: qlearn and torch ----------------------------------------------
class Mixed(nn.Module):
    """Operators, F.*, parameters, methods, getattr, Sequential, cat and getitem."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.seq = nn.Sequential(nn.ReLU(), nn.Linear(1, 2))
        self.w = nn.Parameter(np.ones(2, np.float32))

    def forward(self, x, y=2):
        a = self.conv(x)
        b = F.relu(a) + a * y
        b = F.flatten(b, 1) @ self.w.reshape(2, 1)
        c = self.seq(b.view(b.size(0), -1))
        d = ql.cat([c, c], 1)[:, 0]
        return d + self.w[0], self.w


def _torch_mixed(torch):
    class TMixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)
            self.seq = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(1, 2))
            self.w = torch.nn.Parameter(torch.ones(2))

        def forward(self, x, y=2):
            a = self.conv(x)
            b = torch.nn.functional.relu(a) + a * y
            b = torch.flatten(b, 1) @ self.w.reshape(2, 1)
            c = self.seq(b.view(b.size(0), -1))
            d = torch.cat([c, c], 1)[:, 0]
            return d + self.w[0], self.w
    return TMixed()


class Residual(nn.Module):
    """A digits-CNN-like model with a residual block."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.conv2(x) + x)
        x = self.pool(x)
        x = x.reshape(x.shape[0], -1)
        return self.fc(x)


def _torch_residual(torch):
    tn = torch.nn

    class TResidual(tn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tn.Conv2d(1, 4, 3, padding=1)
            self.bn1 = tn.BatchNorm2d(4)
            self.relu1 = tn.ReLU()
            self.conv2 = tn.Conv2d(4, 4, 3, padding=1)
            self.relu2 = tn.ReLU()
            self.pool = tn.MaxPool2d(2)
            self.fc = tn.Linear(4 * 4 * 4, 10)

        def forward(self, x):
            x = self.relu1(self.bn1(self.conv1(x)))
            x = self.relu2(self.conv2(x) + x)
            x = self.pool(x)
            x = x.reshape(x.shape[0], -1)
            return self.fc(x)
    return TResidual()


class LSTMHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return self.fc(out[-1] + h[0] * c[0].sum())


def _torch_lstm(torch):
    class TLSTMHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(5, 6)
            self.fc = torch.nn.Linear(6, 3)

        def forward(self, x):
            out, (h, c) = self.lstm(x)
            return self.fc(out[-1] + h[0] * c[0].sum())
    return TLSTMHead()


CASES = [(Mixed, _torch_mixed, (2, 1, 3, 3)), (Residual, _torch_residual, (3, 1, 8, 8)),
         (LSTMHead, _torch_lstm, (4, 2, 5))]


@pytest.mark.parametrize("qcls,tmake,shape", CASES, ids=["mixed", "residual", "lstm"])
def test_trace_matches_torch_fx(torch_mod, qcls, tmake, shape, rng):
    torch = torch_mod
    tmodel = tmake(torch).eval()
    qmodel = qcls().eval()
    _copy_weights(qmodel, tmodel)
    tgm = torch.fx.symbolic_trace(tmodel)
    gm = symbolic_trace(qmodel)
    t_sig = [(op, getattr(t, "__name__", t) if op == "call_function" else t)
             for op, t in ((n.op, n.target) for n in tgm.graph.nodes)]
    assert _signature(gm) == t_sig
    assert [n.name for n in gm.graph.nodes] == [n.name for n in tgm.graph.nodes]
    gm.graph.lint()
    x = rng.standard_normal(shape).astype(np.float32)
    out, ref = gm(x), qmodel(x)
    out, ref = (out, ref) if isinstance(out, tuple) else ((out,), (ref,))
    for o, r in zip(out, ref):
        np.testing.assert_array_equal(o.numpy(), r.numpy())       # exactly the model
    tout = tgm(torch.from_numpy(x))
    tout = tout if isinstance(tout, tuple) else (tout,)
    np.testing.assert_allclose(out[0].numpy(), tout[0].detach().numpy(), rtol=1e-4,
                               atol=1e-5)


def test_printed_graph_and_code():
    gm = symbolic_trace(Mixed())
    text = str(gm.graph)
    assert text.startswith("graph():\n    %x : [num_users=1] = placeholder[target=x]")
    assert "%y : [num_users=1] = placeholder[target=y](default=2)" in text
    assert ("%relu : [num_users=1] = call_function[target=qlearn.nn.functional.relu]"
            "(args = (%conv,), kwargs = {})") in text
    assert "%w : [num_users=3] = get_attr[target=w]" in text
    assert text.endswith("return (add_1, w)")
    code = gm.code
    assert code.startswith("def forward(self, x, y = 2):") or \
        code.startswith("def forward(self, x, y=2):")
    for line in ("conv = self.conv(x)", "relu = F.relu(conv)", "mul = conv * y",
                 "flatten = F.flatten(add, 1)", "reshape = w.reshape(2, 1)",
                 "size = matmul.size(0)", 'seq_0 = getattr(self.seq, "0")(view)',
                 "cat = ql.cat([seq_1, seq_1], 1)",
                 "getitem = cat[(slice(None, None, None), 0)]", "return (add_1, w)"):
        assert line in code, line
    assert "class Mixed(Module):" in gm.print_readable(print_output=False)
    assert repr(gm).startswith("Mixed(")


def test_gm_shares_parameters_and_state_dict():
    m = Residual().eval()
    gm = symbolic_trace(m)
    assert gm.conv1.weight is m.conv1.weight
    assert list(gm.state_dict()) == list(m.state_dict())
    assert gm.training is False


def test_imported_function_and_parameter_left_operand(rng):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(np.arange(3, dtype=np.float32))

        def forward(self, x):
            return imported_relu(self.b + x) * np.float32(0.5) - np.ones(3, np.float32)

    m = M()
    gm = symbolic_trace(m)
    ops = [(n.op, n.target if n.op != "call_function" else n.target.__name__)
           for n in gm.graph.nodes]
    assert ops == [("placeholder", "x"), ("get_attr", "b"), ("call_function", "add"),
                   ("call_function", "relu"), ("call_function", "mul"),
                   ("get_attr", "_tensor_constant0"), ("call_function", "sub"),
                   ("output", "output")]
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(gm(x).numpy(), m(x).numpy())
    # tracing restores everything it patched
    assert F.relu.__module__ == "qlearn.nn.functional" and not hasattr(
        F.relu, "__qlearn_fx_original__")
    assert imported_relu is F.relu


def test_control_flow_error_names_the_line():
    class Branchy(nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x
            return -x

    with pytest.raises(TraceError, match="symbolically traced variables cannot be used "
                                         "as inputs to control flow") as info:
        symbolic_trace(Branchy())
    assert "test_fx_trace.py" in str(info.value) and "if x.sum() > 0:" in str(info.value)
    # the patches are undone after a failed trace too
    assert "__qlearn_fx_original__" not in F.relu.__dict__
    with pytest.raises(TraceError, match="cannot be iterated"):
        symbolic_trace(lambda x: [v for v in x])


def test_concrete_args_and_functions():
    def f(x, scale):
        return x * scale

    gm = symbolic_trace(f, concrete_args={"scale": 3.0})
    np.testing.assert_array_equal(gm(ql.tensor([1.0, 2.0])).numpy(), [3.0, 6.0])
    with pytest.raises(ValueError, match="not arguments of forward"):
        symbolic_trace(f, concrete_args={"nope": 1})
    with pytest.raises(TypeError, match="`root` must be"):
        symbolic_trace(3)


def helper(x):
    return x * 2


def test_custom_leaf_and_autowrap():
    class Inner(nn.Module):
        def forward(self, x):
            return helper(x) + 1

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x):
            return self.inner(x)

    assert [n.op for n in symbolic_trace(Outer()).graph.nodes] == [
        "placeholder", "call_function", "call_function", "output"]

    class LeafInner(Tracer):
        def is_leaf_module(self, m, name):
            return isinstance(m, Inner) or super().is_leaf_module(m, name)

    g = LeafInner().trace(Outer())
    assert [(n.op, n.target) for n in g.nodes][1] == ("call_module", "inner")
    g2 = Tracer(autowrap_functions=(helper,)).trace(Outer())
    assert [n.target for n in g2.nodes if n.op == "call_function"][0] is helper


def test_retrace_graph_module(rng):
    gm = symbolic_trace(Residual().eval())
    gm2 = symbolic_trace(gm)
    assert _signature(gm2) == _signature(gm)
    x = rng.standard_normal((1, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(gm2(x).numpy(), gm(x).numpy())


def test_graph_editing_utilities(rng):
    m = Residual().eval()
    gm = symbolic_trace(m)
    g = gm.graph
    relu2 = next(n for n in g.nodes if n.target == "relu2")
    add = relu2.args[0]
    assert add.target is operator.add and set(add.users) == {relu2}
    # insert a node after `add`, route users through it
    with g.inserting_after(add):
        double = g.call_function(operator.mul, (add, 2.0))
    add.replace_all_uses_with(double)
    double.args = (add, 2.0)          # replace_all_uses_with also rewrote double itself
    assert double.next is relu2 and add.next is double and list(add.users) == [double]
    with g.inserting_before(relu2):
        dead = g.call_method("clone", (double,))
    assert dead.next is relu2
    assert g.eliminate_dead_code() and dead not in g.nodes
    g.lint()
    gm.recompile()
    assert "mul = add * 2.0" in gm.code
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    c1 = m.relu1(m.bn1(m.conv1(x)))
    ref = m.fc(m.pool(m.relu2((m.conv2(c1) + c1) * 2.0)).reshape(2, -1))
    np.testing.assert_array_equal(gm(x).numpy(), ref.numpy())
    with pytest.raises(RuntimeError, match="still has users"):
        g.erase_node(add)
    # a broken graph fails lint with a message naming the node
    g2 = Graph()
    x2 = g2.placeholder("x")
    y2 = g2.call_function(operator.neg, (x2,))
    g2.output(y2)
    g2._nodes.reverse()
    with pytest.raises(RuntimeError, match="not defined before"):
        g2.lint()


def test_graph_module_from_dict_and_node_copy():
    g = Graph()
    x = g.placeholder("x")
    lin = g.call_module("block.lin", (x,))
    g.output(lin)
    lin_mod = nn.Linear(2, 2)
    gm = GraphModule({"block.lin": lin_mod}, g)
    assert gm.block.lin is lin_mod
    assert 'lin = self.block.lin(x)' in gm.code or "block_lin = self.block.lin(x)" in gm.code
    g3 = Graph()
    env = {}
    for n in g.nodes:
        env[n] = g3.node_copy(n, lambda a: env[a]) if n.op != "output" else g3.output(
            env[n.args[0]])
    assert [n.name for n in g3.nodes] == [n.name for n in g.nodes]
    with pytest.raises(ValueError, match="already has an output"):
        g3.output(None)
    with pytest.raises(TypeError, match="`graph` must be"):
        GraphModule(nn.Module(), "graph")


def test_deepcopy_keeps_a_working_copy(rng):
    import copy
    gm = symbolic_trace(Residual().eval())
    gm2 = copy.deepcopy(gm)
    assert gm2.conv1.weight is not gm.conv1.weight
    x = rng.standard_normal((1, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(gm2(x).numpy(), gm(x).numpy())
    assert gm2.graph.owning_module is gm2


def test_proxy_is_not_data():
    seen = {}

    def f(x):
        seen["x"] = x
        return x

    symbolic_trace(f)
    assert isinstance(seen["x"], Proxy)
    with pytest.raises(TraceError, match="needs its data"):
        symbolic_trace(lambda x: int(x))


def test_shapes_slices_defaults_and_tuple_outputs(rng):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x, scale=None):
            n = x.shape[1] // 2
            y = self.lin(x)[:, :n] * 2
            z = y.view(-1, n * 1).T
            return (y, {"z": z}), -x.sum(1)

    m = M()
    gm = symbolic_trace(m)
    assert "def forward(self, x, scale = None):" in gm.code
    assert "getitem_1 = lin[(slice(None, None, None), slice(None, floordiv, None))]" \
        in gm.code
    x = rng.standard_normal((3, 4)).astype(np.float32)
    (y, d), s = gm(x)
    (ry, rd), rs = m(x)
    np.testing.assert_array_equal(y.numpy(), ry.numpy())
    np.testing.assert_array_equal(d["z"].numpy(), rd["z"].numpy())
    np.testing.assert_array_equal(np.asarray(s), np.asarray(rs))   # x is an ndarray here
    with pytest.raises(TraceError, match="len"):
        symbolic_trace(lambda x: len(x))
