"""postlab.tools.data: training sets in TRL's formats (dedup, decontamination) and Hub datasets."""
