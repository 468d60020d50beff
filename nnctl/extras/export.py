"""A trained model, preprocessing included, as an ONNX graph: raw feature columns in, predictions out.

The graph reproduces `nnctl predict` (to float32 rounding) in any ONNX runtime:

- inputs: `numeric`, float32 [N, numeric features] (NaN = missing), and `categorical`, string
  [N, categorical features], each present only when the model has such features; columns in the model's
  feature order (the file's metadata lists them);
- numeric columns: missing values become the training mean (`data.missing: impute`), then
  (x - center) / scale; categorical columns: one-hot over the training categories (an unseen category is
  all zeros; "" and pandas' NA markers are the `<missing>` category), with ai.onnx.ml LabelEncoder (text ->
  category index) and Equal; Concat (and a Gather when the features interleave) gives the network inputs;
- the dense layers: MatMul + Add and Relu, LeakyRelu (alpha 0.01), Sigmoid, Tanh, Softmax, Exp (of Min(Z,
  30), as nnctl clips), Softplus (or nothing); a calibrated model's output Z is divided by its temperature (Div);
  a stored threshold decides a two-class label (GreaterOrEqual on the second class's probability);
- outputs: classification `probabilities` float32 [N, classes] and `label` [N] (int64 when the class
  labels are integers, string otherwise); regression `prediction` float32 [N] on the target's scale.

Opsets: ai.onnx 17 and, when there are categorical features, ai.onnx.ml 3; IR version 8 (ONNX >= 1.12).
A model trained with `data.missing: drop` or `error` makes `predict` refuse missing values; its graph
cannot refuse, so a missing value yields NaN outputs instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnctl._version import __version__
from nnctl.engine.activations import Exp, LeakyReLU
from nnctl.errors import InputError, require
from nnctl.files import refuse_to_replace, replace_on_success
from nnctl.model.preprocessing import BOOL_TEXT, MISSING, NA_VALUES, FeatureSpec

if TYPE_CHECKING:
    from onnx import ModelProto, NodeProto, TensorProto, ValueInfoProto

    from nnctl.model.model import Model

OPSET = 17  # ai.onnx: Softmax/ArgMax/Squeeze with today's semantics (13), Where (16); runtimes since 2022
ML_OPSET = 3  # ai.onnx.ml: LabelEncoder 2 (string keys -> int64 values, with a default)
IR_VERSION = 8  # the IR that goes with opset 17, so older runtimes load the file too
_ACTIVATION_OPS = {"relu": "Relu", "leaky_relu": "LeakyRelu", "sigmoid": "Sigmoid", "tanh": "Tanh",
                   "softmax": "Softmax", "exp": "Exp", "softplus": "Softplus", "identity": None}
_MISSING_CODE = -2  # category index of a missing value when the model was not trained to impute


def to_onnx(model: Model) -> bytes:
    """The serialised ONNX model (see the module docstring for its inputs and outputs)."""
    data: bytes = onnx_model(model).SerializeToString()
    return data


def save_onnx(model: Model, path: str | Path) -> None:
    """Write the ONNX file atomically: `path` is replaced only when the whole file is written, and an
    existing file that is not an ONNX model (the .npz model itself, a CSV, ...) is never overwritten."""
    path = Path(path)
    data = to_onnx(model)
    refuse_to_replace(path, is_onnx_file, "an ONNX model")
    with replace_on_success(path, "wb", what="the ONNX file", cannot_open=InputError) as handle:
        handle.write(data)


def is_onnx_file(path: Path) -> bool:
    """Whether `path` holds an ONNX model (a protobuf ModelProto with an IR version and a graph)."""
    require("onnx", "onnx", "nnctl export")
    from onnx import ModelProto

    proto = ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception:  # OSError (a folder, no permission) or the protobuf's DecodeError
        return False
    return proto.ir_version > 0 and proto.HasField("graph")


def numeric_columns(model: Model) -> list[str]:
    """The columns of the `numeric` input, in order."""
    return [spec.name for spec in model.preprocessor.features if spec.kind == "numeric"]


def categorical_columns(model: Model) -> list[str]:
    """The columns of the `categorical` input, in order."""
    return [spec.name for spec in model.preprocessor.features if spec.kind != "numeric"]


def label_type(model: Model) -> str:
    """The element type of the `label` output: int64 when every class label is an integer, else string."""
    classes = model.target.classes
    return "int64" if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes) else "string"


def signature(model: Model) -> str:
    """One line: the graph's inputs and outputs with their types and shapes."""
    inputs = [f"{name} {kind}[N, {len(columns)}]" for name, kind, columns in _inputs(model)]
    return f"inputs {', '.join(inputs)}; outputs {', '.join(f'{n} {t}{s}' for n, t, s in _outputs(model))}"


def _inputs(model: Model) -> list[tuple[str, str, list[str]]]:
    inputs = []
    if numeric_columns(model):
        inputs.append(("numeric", "float32", numeric_columns(model)))
    if categorical_columns(model):
        inputs.append(("categorical", "string", categorical_columns(model)))
    return inputs


def _outputs(model: Model) -> list[tuple[str, str, str]]:
    if model.task != "classification":
        return [("prediction", "float32", "[N]")]
    return [("probabilities", "float32", f"[N, {len(model.target.classes)}]"), ("label", label_type(model), "[N]")]


def description(model: Model) -> str:
    """What to feed the graph and what it returns, for the ONNX file's doc_string."""
    pre, target, network = model.preprocessor, model.target, model.network
    sizes = " → ".join(map(str, network.sizes))
    lines = [f"nnctl {__version__}: {target.task} of '{target.name}', network {sizes} "
             f"({', '.join(network.activation_names)}; trained in {network.dtype.name}; exported in float32, "
             "the scaling in float64)",
             "inputs (raw columns, before preprocessing):"]
    missing = ("NaN = missing, replaced by the training mean" if pre.missing == "impute"
               else f"NaN = missing, which gives NaN outputs (trained with data.missing: {pre.missing})")
    missing_text = ("the <missing> category where training had one, else zeros" if pre.missing == "impute"
                    else "which gives NaN outputs")
    for _, kind, columns in _inputs(model):
        if kind == "float32":
            lines.append(f"  numeric: float32 [N, {len(columns)}], columns {', '.join(columns)}; {missing}")
        else:
            lines.append(f"  categorical: string [N, {len(columns)}], columns {', '.join(columns)}; unseen "
                         f"categories encode as zeros; \"\" and pandas' NA markers (NA, nan, ...) are missing: "
                         f"{missing_text}")
    lines.append("outputs:")
    if target.task == "classification":
        lines.append(f"  probabilities: float32 [N, {len(target.classes)}], one column per class: "
                     f"{', '.join(map(str, target.classes))}")
        rule = "the most probable class" if model.threshold is None else (
            f"the second class when its probability is at least {model.threshold:.6g}, else the first")
        lines.append(f"  label: {label_type(model)} [N], {rule}")
    else:
        lines.append(f"  prediction: float32 [N], '{target.name}' on its own scale")
    lines.append("metadata_props nnctl.* hold these lists as JSON.")
    return "\n".join(lines)


def metadata(model: Model) -> dict[str, str]:
    """The ONNX file's metadata_props: column orders, categories and classes as JSON."""
    pre, target = model.preprocessor, model.target
    props: dict[str, Any] = {
        "nnctl.version": __version__,
        "nnctl.task": target.task,
        "nnctl.target": target.name,
        "nnctl.numeric_columns": numeric_columns(model),
        "nnctl.categorical_columns": categorical_columns(model),
        "nnctl.categories": {s.name: s.categories for s in pre.features if s.kind != "numeric"},
        "nnctl.network_inputs": pre.input_names,
        "nnctl.missing": pre.missing,
        "nnctl.dtype": model.network.dtype.name,
        **{f"nnctl.{key}": value for key in ("temperature", "threshold") if (value := getattr(model, key)) is not None},
    }
    if target.task == "classification":
        props["nnctl.classes"] = list(target.classes)
        props["nnctl.label_type"] = label_type(model)
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in props.items()}


def _exportable(model: Model) -> None:
    """InputError for preprocessing the ONNX graph has no nodes for: date columns (text parsed by the calendar)
    and missing-value flags."""
    for spec in model.preprocessor.features:
        if spec.kind == "date":
            raise InputError(f"column '{spec.name}' is a date, and ONNX export has no date parsing yet; leave it out "
                             "of data.features to export")
        if spec.indicator:
            raise InputError(f"column '{spec.name}' has a missing-value flag, which ONNX export does not build yet; "
                             "train with data.missing_indicators: false to export")


def onnx_model(model: Model) -> ModelProto:
    """The ONNX model; raises MissingExtraError when the onnx package is not installed."""
    require("onnx", "onnx", "nnctl export")
    from onnx import helper

    _exportable(model)
    graph = _Graph()
    X = graph.preprocessing(model)
    A = graph.network(model, X)
    graph.outputs(model, A)
    built = helper.make_graph(graph.nodes, f"nnctl_{model.target.name}", graph.inputs, graph.graph_outputs,
                              graph.initializers)
    opsets = [helper.make_opsetid("", OPSET)]
    if graph.uses_ml:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    proto = helper.make_model(built, opset_imports=opsets, ir_version=IR_VERSION, producer_name="nnctl",
                              producer_version=__version__, doc_string=description(model))
    helper.set_model_props(proto, metadata(model))
    return proto


class _Graph:
    """Nodes, initializers, inputs and outputs under construction; every tensor gets a unique name."""

    def __init__(self) -> None:
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.inputs: list[ValueInfoProto] = []
        self.graph_outputs: list[ValueInfoProto] = []
        self.uses_ml = False
        self._names: set[str] = {"numeric", "categorical", "probabilities", "label", "prediction"}

    def name(self, wanted: str) -> str:
        name, i = wanted, 1
        while name in self._names:
            i += 1
            name = f"{wanted}_{i}"
        self._names.add(name)
        return name

    def const(self, wanted: str, value: np.ndarray | np.generic | list[str]) -> str:
        from onnx import numpy_helper

        name = self.name(wanted)
        array = np.array(value, dtype=object) if isinstance(value, list) else np.asarray(value)  # object: strings
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], wanted: str, domain: str = "", **attributes: Any) -> str:
        from onnx import helper

        out = self.name(wanted)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attributes))
        return out

    def input(self, name: str, elem: int, width: int, doc: str) -> str:
        from onnx import helper

        self.inputs.append(helper.make_tensor_value_info(name, elem, ["N", width], doc_string=doc))
        return name

    def output(self, name: str, source: str, elem: int, shape: list[str | int], doc: str) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node("Identity", [source], [name], name=name))
        self.graph_outputs.append(helper.make_tensor_value_info(name, elem, shape, doc_string=doc))

    # --- the parts -------------------------------------------------------------------------------

    def preprocessing(self, model: Model) -> str:
        """The network inputs X [N, n_inputs] from the raw columns, as Preprocessor.transform_columns."""
        from onnx import TensorProto

        pre = model.preprocessor
        numeric = [s for s in pre.features if s.kind == "numeric"]
        categorical = [s for s in pre.features if s.kind != "numeric"]
        blocks: list[str] = []
        if numeric:
            x = self.input("numeric", TensorProto.FLOAT, len(numeric),
                           f"float32 columns {', '.join(s.name for s in numeric)}; NaN = missing")
            # in float64, like predict: x - center cancels digits (a year minus its mean), float32 would lose them
            x = self.node("Cast", [x], "numeric_float64", to=TensorProto.DOUBLE)
            if pre.missing == "impute":
                fill = self.const("fill", np.array([s.fill for s in numeric], np.float64))
                x = self.node("Where", [self.node("IsNaN", [x], "numeric_missing"), fill, x], "numeric_filled")
            center = self.const("center", np.array([s.center for s in numeric], np.float64))
            scale = self.const("scale", np.array([s.scale for s in numeric], np.float64))
            scaled = self.node("Div", [self.node("Sub", [x, center], "numeric_centered"), scale], "numeric_scaled")
            blocks.append(self.node("Cast", [scaled], "numeric_inputs", to=TensorProto.FLOAT))
        if categorical:
            text = self.input("categorical", TensorProto.STRING, len(categorical),
                              f"string columns {', '.join(s.name for s in categorical)}")
            for j, spec in enumerate(categorical):
                blocks.append(self._one_hot(spec, text, j, pre.missing == "impute"))
        X = blocks[0] if len(blocks) == 1 else self.node("Concat", blocks, "features", axis=1)
        # the blocks hold the numeric columns, then each categorical one's; the network wants model order
        order = _feature_order(pre.features)
        if order != list(range(len(order))):
            X = self.node("Gather", [X, self.const("feature_order", np.array(order, np.int64))], "features_ordered",
                          axis=1)
        return X

    def _one_hot(self, spec: FeatureSpec, text: str, j: int, impute: bool) -> str:
        """[N, len(categories)] float32, as Preprocessor._one_hot: exactly one 1 for a training category."""
        from onnx import TensorProto

        self.uses_ml = True
        column = self.node("Gather", [text, self.const(f"{spec.name}_column", np.array([j], np.int64))],
                           f"{spec.name}_text", axis=1)  # [N, 1]
        codes = _category_codes(spec, impute)
        index = self.node("LabelEncoder", [column], f"{spec.name}_index", domain="ai.onnx.ml",
                          keys_strings=list(codes), values_int64s=list(codes.values()), default_int64=-1)
        positions = self.const(f"{spec.name}_categories", np.arange(len(spec.categories), dtype=np.int64))
        hot = self.node("Cast", [self.node("Equal", [index, positions], f"{spec.name}_is")], f"{spec.name}_onehot",
                        to=TensorProto.FLOAT)
        if impute:
            return hot
        # predict refuses a missing value here; the graph cannot, so it makes the row's outputs NaN
        missing = self.node("Equal", [index, self.const(f"{spec.name}_missing_code",
                                                        np.array(_MISSING_CODE, np.int64))], f"{spec.name}_missing")
        nan = self.node("Where", [missing, self.const("nan", np.array(np.nan, np.float32)),
                                  self.const("zero", np.array(0, np.float32))], f"{spec.name}_nan")
        return self.node("Add", [hot, nan], f"{spec.name}_onehot_checked")

    def network(self, model: Model, X: str) -> str:
        """A_{i+1} = act_i(A_i @ W_i + b_i) in float32 (dropout is off at inference)."""
        net = model.network
        A = X
        for i, (W, b, name) in enumerate(zip(net.W, net.b, net.activation_names, strict=True)):
            Z = self.node("MatMul", [A, self.const(f"layers.{i}.W", W.astype(np.float32))], f"layers.{i}.matmul")
            A = self.node("Add", [Z, self.const(f"layers.{i}.b", b.astype(np.float32))], f"layers.{i}.z")
            if i == net.n_layers - 1 and model.temperature is not None:  # calibrated: softmax(Z / T)
                A = self.node("Div", [A, self.const("temperature", np.float32(model.temperature))], "calibrated")
            if name not in _ACTIVATION_OPS:
                raise InputError(f"layer {i + 1}: activation '{name}' has no ONNX export yet")
            op = _ACTIVATION_OPS[name]
            if op == "LeakyRelu":
                A = self.node(op, [A], f"layers.{i}.{name}", alpha=LeakyReLU.alpha)
            elif op == "Softmax":
                A = self.node(op, [A], f"layers.{i}.{name}", axis=-1)
            elif op == "Exp":  # nnctl clips Z first, so a large Z gives the same finite rate
                limit = self.const(f"layers.{i}.exp_limit", np.float32(Exp.limit))
                A = self.node(op, [self.node("Min", [A, limit], f"layers.{i}.clipped")], f"layers.{i}.{name}")
            elif op is not None:
                A = self.node(op, [A], f"layers.{i}.{name}")
        return A

    def outputs(self, model: Model, A: str) -> None:
        """Probabilities and labels (TargetEncoder.probabilities, class_indices) or values (.values)."""
        from onnx import TensorProto

        target = model.target
        if target.task != "classification":
            values = self.node("Add", [self.node("Mul", [A, self.const("target_scale", np.float32(target.scale))],
                                                 "target_scaled"),
                                       self.const("target_center", np.float32(target.center))], "target_values")
            column = self.const("axis_1", np.array([1], np.int64))
            self.output("prediction", self.node("Squeeze", [values, column], "values"), TensorProto.FLOAT, ["N"],
                        f"'{target.name}' on its own scale")
            return
        n = len(target.classes)
        if target.binary or model.threshold is not None:
            # one sigmoid unit p: probabilities [1 - p, p]; the second class when its probability >= the threshold
            P = A if not target.binary else self.node(
                "Concat", [self.node("Sub", [self.const("one", np.float32(1)), A], "complement"), A],
                "probabilities_binary", axis=1)
            column = self.const("axis_1", np.array([1], np.int64))
            p = A if target.binary else self.node("Gather", [A, column], "second_class", axis=1)
            cut = ("half", np.float32(0.5)) if model.threshold is None else ("threshold", np.float32(model.threshold))
            positive = self.node("GreaterOrEqual", [p, self.const(*cut)], "positive")
            index = self.node("Cast", [self.node("Squeeze", [positive, column], "positive_rows")], "class_index",
                              to=TensorProto.INT64)
        else:
            P = A
            index = self.node("ArgMax", [A], "class_index", axis=1, keepdims=0)  # first maximum, as NumPy
        self.output("probabilities", P, TensorProto.FLOAT, ["N", n],
                    f"one column per class: {', '.join(map(str, target.classes))}")
        if label_type(model) == "int64":
            labels = self.const("classes", np.array(target.classes, np.int64))
            elem = TensorProto.INT64
        else:
            labels = self.const("classes", [str(c) for c in target.classes])
            elem = TensorProto.STRING
        self.output("label", self.node("Gather", [labels, index], "labels", axis=0), elem, ["N"],
                    "the predicted class")


def _feature_order(features: list[FeatureSpec]) -> list[int]:
    """For each network input (model order), its column in [numeric block, categorical blocks...]."""
    n_numeric = sum(1 for s in features if s.kind == "numeric")
    order: list[int] = []
    numeric, offset = 0, n_numeric
    for spec in features:
        if spec.kind == "numeric":
            order.append(numeric)
            numeric += 1
        else:
            order += range(offset, offset + spec.width)
            offset += spec.width
    return order


def _category_codes(spec: FeatureSpec, impute: bool) -> dict[str, int]:
    """Input text -> category index, as FeatureSpec.texts then the lookup in Preprocessor._one_hot: missing
    markers first, then the boolean spellings pandas reads as True/False, then the categories themselves."""
    codes = {category: j for j, category in enumerate(spec.categories)}
    if spec.categories and set(spec.categories) <= {"True", "False", MISSING}:
        codes.update({text: codes[word] for text, word in BOOL_TEXT.items() if word in codes})
    missing = codes.get(MISSING, -1) if impute else _MISSING_CODE
    codes.update(dict.fromkeys(sorted(NA_VALUES | {MISSING}), missing))
    return {text: code for text, code in codes.items() if code != -1}  # -1 is the LabelEncoder's default
