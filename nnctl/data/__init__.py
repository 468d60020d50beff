"""Data: from CSV files to the rows a model trains on. Imports config, model and engine; pandas lives here.

    load        the one way in: `load_dataset(config, ...)`, in memory or streaming
    memory      a whole CSV in memory (and the data cache, `cache`)
    streaming   pass 1 over a CSV larger than memory: fit the preprocessing chunk by chunk
    spill       pass 2: the preprocessed rows written to temporary files
    rows        `Rows`, the one interface the loop and the model read rows through; in memory or spilled
    dataset     `Dataset` and `Sources`: what a load returns
    rules       what every load applies: columns, missing values, splits' errors, class weights, warnings
    fit         fitting the preprocessing on a frame, and encoding frames with it
    reader      reading CSVs with pandas, whole or in chunks, and the line of each row
    chunks      what both streaming passes share: progress, the chunked split, class keys
    cache       parsed arrays of big CSVs, kept between runs
    folds       cross-validation folds: stratified, grouped or plain, per repeat
    starter     `nnctl init`: a starter config from one look at a CSV
    starter_recipe  the starter's network and training (width, init, optimizer, epochs, early stopping) from the
                rows alone, as benchmarks/starter_results.py chose them
"""
