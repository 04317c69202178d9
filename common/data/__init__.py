"""Data loaders shared by the studies: images (`common.data.images`) and NER corpora."""
