"""Optional views of a model (and of a range test), each behind its extra. Imports training, inference and below.

    export   the network and its preprocessing as one ONNX graph (`onnx` extra)
    plot     training curves, confusion matrix, reliability diagram, predicted against actual (`plot` extra)
    importance_plot   `importance --plot`'s bar chart, drawn and written with plot's helpers (`plot` extra)
    lr_plot  loss against learning rate, for `lr-find --plot` (`plot` extra)
"""
