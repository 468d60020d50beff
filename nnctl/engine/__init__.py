"""The engine: a dense network, its math and how it learns. NumPy only; imports nothing of nnctl but the ground
floor (errors, registry).

    activations    in-place activation functions; derivatives from the output A
    initializers   He and Glorot weight initialisation
    losses         value, gradient, and the fused output delta (a multiple of A - Y)
    network        W and b as views of one flat buffer; forward and backprop into preallocated buffers
    passes         the workspace, and the training pass: forward and backprop with their calls bound once
    optimizers     SGD, Adam, AdamW, RMSprop: one in-place step over the flat buffers, block by block
    schedules      the learning rate per epoch
    metrics        confusion matrix, precision/recall/F1, MAE/RMSE/R², running and chunked scores
    trace          one row through the network in float64: every Z, A, delta, dW and db (`nnctl explain`)
    weighted       per-row sample weights for the metrics: weighted totals, spread and median
"""
